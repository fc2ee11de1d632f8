"""Lesson 08's security decisions, one named function each: the SOUND versions (the answer).

They live with the tests, not in the package: they are the defend exercise's answer, and the
learner release must not ship it. The lab starts with the weak defaults of ``app.py`` in their
place (a hook each, of the same name); ``lab.defend(name=fn)`` plugs in a learner's, and the
tests plug in these. An :class:`~labapp.lessons.l08_oauth.authserver.AuthServer` made outside
a lab is given :data:`SOUND` as its ``decisions``. Each attack of the lesson targets one of them:

Each battery row (the notebook's row ids) that targets one of them:

- :func:`check_redirect_uri`: ``redirect-uri``, ``open-redirect`` (RFC 9700 §4.1);
- :func:`check_pkce`: ``pkce-missing`` (RFC 9700 §2.1.1, ASVS 5.0 V10.4.6);
- :func:`check_response_type`: ``implicit-token`` (RFC 9700 §2.1.2, ASVS 5.0 V10.4.4);
- :func:`check_grant_type`: ``password-grant`` (RFC 9700 §2.4);
- :func:`allowed_scope`: ``scope-escalation`` (RFC 9700 §2.3);
- :func:`code_single_use`: ``code-reuse`` (RFC 6749 §4.1.2, RFC 9700 §4.2.4);
- :func:`validate_access_token`: ``token-audience`` (RFC 9068 §4, RFC 9700 §2.3).

PrintShop's (the client's) own decisions:

- :func:`check_state`: ``login-csrf`` (RFC 9700 §4.7);
- :func:`allow_next`: ``open-redirect`` (RFC 9700 §4.11.1);
- :func:`implicit_user`: ``implicit-flow`` (OIDC Core §5.3);
- :func:`validate_id_token`: ``nonce``, ``id-token-audience`` (OIDC Core §3.1.3.7).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import jwt
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list

from labapp.lessons.l08_oauth import verifier

PKCE_METHODS = ("S256",)  # plain shows the verifier to whoever sees the challenge
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")  # RFC 9068 §2.1, §4
# RFC 9068 §2.2: the claims every access token carries
ACCESS_TOKEN_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "client_id", "jti"]


def check_redirect_uri(registered: list[str], redirect_uri: str) -> bool:
    """Exact string comparison with a registered URI (RFC 9700 §2.1, RFC 3986 §6.2.1).

    A prefix or substring match lets ``https://shop/callback.attacker.test`` through, and the
    victim's code lands on the attacker's server.
    """
    return redirect_uri in registered


def check_pkce(public: bool, code_challenge: str | None, method: str | None) -> str | None:
    """Why this authorization request's PKCE is refused, or None when it is acceptable.

    Every client must send an S256 challenge (RFC 9700 §2.1.1: public clients MUST, and we
    ask confidential ones too, as the BCP recommends). ``plain`` is refused: the challenge
    travels through the browser, so it would hand the verifier to anyone who reads the URL.
    """
    if not code_challenge:
        return "PKCE is required: send code_challenge and code_challenge_method=S256"
    if method not in PKCE_METHODS:
        return "code_challenge_method must be S256"
    return None


def check_response_type(registered: list[str], response_type: str) -> bool:
    """Only the authorization code flow, and only if registered: no implicit flow (RFC 9700
    §2.1.2: clients SHOULD NOT use it; ASVS 5.0 V10.4.4: 'token' must no longer be used)."""
    return response_type == "code" and response_type in registered


def check_grant_type(registered: list[str], grant_type: str) -> bool:
    """A registered grant, never the password grant (RFC 9700 §2.4: MUST NOT be used; the
    client would see the user's password, and no second factor or consent fits in it)."""
    return grant_type in registered and grant_type != "password"


def allowed_scope(registered: str, requested: str, consented: str | None = None) -> str:
    """Registered ∩ requested (∩ consented, once the user has answered), in request order.

    A union, or the requested scope unfiltered, lets a client obtain what it was never
    registered for or what the user never approved (RFC 9700 §2.3).
    """
    keep = set(scope_to_list(registered) or [])
    if consented is not None:
        keep &= set(scope_to_list(consented) or [])
    return list_to_scope([s for s in scope_to_list(requested) or [] if s in keep])


def code_single_use(already_used: bool) -> bool:
    """May this code be redeemed? Only once (RFC 6749 §4.1.2); the caller then marks it used
    atomically and, on a second attempt, revokes what the first redemption issued."""
    return not already_used


def validate_access_token(token: str, required_scope: str) -> dict[str, Any] | None:
    """The claims of an access token minted for *this* API and carrying the scope, or None.

    RFC 9068 §4: the header's ``typ`` is ``at+jwt`` (an ID token's is ``JWT``: refused), the
    signature is the issuer's, ``iss`` is the issuer, ``aud`` names this API (a token for
    another API or a client is refused), ``exp`` not passed; the claims RFC 9068 §2.2 lists
    are all there; RS256 only (the lab's allowlist, RFC 8725 §3.1); the route's scope is
    among the granted ones (RFC 9700 §2.3).
    """
    known = verifier.current()
    try:
        typ = str(jwt.get_unverified_header(token).get("typ", "")).lower()
        if typ not in ACCESS_TOKEN_TYPES:
            return None
        claims = jwt.decode(
            token,
            known.signing_key(token),
            algorithms=["RS256"],
            audience=known.audience,
            issuer=known.issuer,
            options={"require": ACCESS_TOKEN_CLAIMS},
        )
    except (jwt.PyJWTError, KeyError):
        return None
    if required_scope not in str(claims.get("scope", "")).split():
        return None
    return claims


def check_state(expected: str | None, received: str | None) -> bool:
    """The callback's state is the one *this* browser's session sent (RFC 9700 §4.7.1,
    RFC 6749 §10.12). Required on both sides: a session that started no flow accepts no
    callback, which is exactly the login-CSRF victim's case."""
    return bool(expected and received) and secrets.compare_digest(
        str(expected).encode(), str(received).encode()
    )


def allow_next(url: str) -> bool:
    """Only a path on PrintShop itself: one slash, then a path (no ``//host``, no
    backslash, no scheme). RFC 9700 §4.11.1: a client must not be an open redirector."""
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


def implicit_user(claimed: str | None, userinfo: dict[str, Any] | None) -> str | None:
    """Who the token belongs to, as the authorization server says; never what the page
    posts (PortSwigger's "authentication bypass via OAuth implicit flow")."""
    return str(userinfo["sub"]) if userinfo and userinfo.get("sub") else None


def validate_id_token(claims: dict[str, Any], nonce: str | None, client_id: str) -> bool:
    """The checks OIDC Core §3.1.3.7 leaves to the client after the signature and expiry:
    ``iss`` is the issuer (step 2); ``aud`` names this client and no one else (step 3: an
    ID token minted for another app, even by the same issuer, is refused); ``azp``, where
    present, is this client; the ``nonce`` is this flow's, required and equal (step 11: an
    ID token of another flow is refused)."""
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    got = claims.get("nonce")
    return (
        claims.get("iss") == verifier.current().issuer
        and audiences == [client_id]
        and claims.get("azp", client_id) == client_id
        and bool(nonce and isinstance(got, str))
        and secrets.compare_digest(str(got).encode(), str(nonce).encode())
    )


SOUND: dict[str, Callable[..., Any]] = {
    fn.__name__: fn
    for fn in (
        check_redirect_uri,
        check_pkce,
        check_response_type,
        check_grant_type,
        allowed_scope,
        code_single_use,
        validate_access_token,
        check_state,
        allow_next,
        implicit_user,
        validate_id_token,
    )
}
