"""Lesson 08: OAuth 2.0 and OpenID Connect. An authorization server weak in six places.

The lab's app (``lab.url``) is the authorization server (:mod:`authserver`, on Authlib);
``lab.net`` holds the photos API it issues tokens for and the client app's address. Every
decision the lesson's attacks target is a hook whose default below is the deliberately
weak one; the sound versions are the solution notebook's (and tests/lessons/l08_policy.py).
References: RFC 9700 §2.1, §2.1.1, §2.1.2, §2.3, §4.1, §4.5; RFC 6749 §4.1.2; RFC 7636;
RFC 9068 §4.
"""

from __future__ import annotations

import json
import posixpath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
from authlib.oauth2.rfc6749.util import scope_to_list
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from labapp.engine.spec import Hook, LabState
from labapp.lessons.common import bearer_token
from labapp.lessons.l08_oauth import authserver, people, verifier
from labapp.lessons.l08_oauth.client import CLIENT_HOOKS
from labapp.lessons.l08_oauth.client import create_app as create_shop_app
from labapp.lessons.l08_oauth.network import Network
from labapp.lessons.l08_oauth.photos import create_photos_app
from labapp.lessons.l08_oauth.records import User
from labapp.lessons.l08_oauth.verifier import Verifier

if TYPE_CHECKING:
    from labapp.engine.lab import Lab


# -- the weak defaults ----------------------------------------------------------------------


def weak_check_redirect_uri(registered: list[str], redirect_uri: str) -> bool:
    """WEAK on purpose: a prefix match, "so clients can add a path or a query"."""
    return any(redirect_uri.startswith(uri) for uri in registered)


def weak_check_pkce(public: bool, code_challenge: str | None, method: str | None) -> str | None:
    """WEAK on purpose: PKCE optional, even for the public client, and plain allowed."""
    return None


def weak_check_response_type(registered: list[str], response_type: str) -> bool:
    """WEAK on purpose: whatever the registration lists, the implicit flow of the old
    single-page app included."""
    return response_type in registered


def weak_check_grant_type(registered: list[str], grant_type: str) -> bool:
    """WEAK on purpose: whatever the registration lists, the password grant included."""
    return grant_type in registered


def weak_allowed_scope(registered: str, requested: str, consented: str | None) -> str:
    """WEAK on purpose: whatever the client asks for, registered or consented or not."""
    return requested


def weak_code_single_use(already_used: bool) -> bool:
    """WEAK on purpose: "a client may retry the token request if the network failed"."""
    return True


def weak_validate_access_token(token: str, required_scope: str) -> dict[str, Any] | None:
    """WEAK on purpose: checks the signature and expiry, not the audience nor ``typ``, and
    the scope only when the token has one. An ID token signed by the same issuer passes."""
    known = verifier.current()
    try:
        claims = jwt.decode(
            token, known.signing_key(token), algorithms=["RS256"], options={"verify_aud": False}
        )
    except (jwt.PyJWTError, KeyError):
        return None
    if "scope" in claims and required_scope not in str(claims["scope"]).split():
        return None
    return claims


HOOKS = (
    Hook(
        "check_redirect_uri",
        ("registered", "redirect_uri"),
        "check_redirect_uri(registered, redirect_uri) -> bool: may the code go to this URI?",
        weak_check_redirect_uri,
        returns=bool,
    ),
    Hook(
        "check_pkce",
        ("public", "code_challenge", "method"),
        "check_pkce(public, code_challenge, method) -> str | None: why this authorization "
        "request's PKCE is refused, or None to accept it",
        weak_check_pkce,
        returns=(str, type(None)),
    ),
    Hook(
        "check_response_type",
        ("registered", "response_type"),
        "check_response_type(registered, response_type) -> bool: allow this flow?",
        weak_check_response_type,
        returns=bool,
    ),
    Hook(
        "check_grant_type",
        ("registered", "grant_type"),
        "check_grant_type(registered, grant_type) -> bool: may this client use this grant "
        "at /token?",
        weak_check_grant_type,
        returns=bool,
    ),
    Hook(
        "allowed_scope",
        ("registered", "requested", "consented"),
        "allowed_scope(registered, requested, consented) -> str: the scope to grant "
        "(consented is None before the user has answered)",
        weak_allowed_scope,
        returns=str,
    ),
    Hook(
        "code_single_use",
        ("already_used",),
        "code_single_use(already_used) -> bool: may this authorization code be redeemed?",
        weak_code_single_use,
        returns=bool,
    ),
    Hook(
        "validate_access_token",
        ("token", "required_scope"),
        "validate_access_token(token, required_scope) -> dict | None: the photos API's "
        "check; the claims of a token it accepts, or None (the key: lab.net.signing_key of "
        "the token; the issuer: lab.net.issuer; this API: lab.net.audience)",
        weak_validate_access_token,
        returns=(dict, type(None)),
    ),
    *CLIENT_HOOKS,  # PrintShop's: check_state, allow_next, implicit_user
)


def seed(state: LabState) -> None:
    for user in people.users():
        state.store.add_secret(user.password)
        state.users.append(
            {"username": user.id, "name": user.name, "email": user.email, "password": user.password}
        )


def create_app(state: LabState) -> FastAPI:
    """The authorization server; its clients are registered by :func:`network`."""
    users = [User(u["username"], u["name"], u["email"], u["password"]) for u in state.users]
    auth = authserver.AuthServer(users, [], call=state.call, audit=state.store.audit)
    _reveal_token_flags(state, auth)
    app = authserver.create_app(auth)
    app.state.auth = auth
    return app


def network(lab: Lab) -> Network:
    """The photos API and the client app's address, as ``lab.net``."""
    return Network(lab, _photos_with_flags, create_shop_app)


# -- flags: only in the answer a working exploit earns ----------------------------------------


def _token_flags(auth: authserver.AuthServer, token: dict[str, Any], request: Any) -> list[str]:
    """The exploits this token response rewards (called before it is recorded)."""
    earned = []
    client, code = request.client, request.authorization_code
    if code is not None and any(t.from_code == code.code for t in auth.records.tokens):
        earned.append("code-reuse")  # the same code, redeemed once more
    registered = set(scope_to_list(client.scope) or [])
    if set(scope_to_list(token.get("scope", "")) or []) - registered:
        earned.append("scope-escalation")  # more than the client was registered for
    if code is not None and client.public and code.code_challenge_method in (None, "plain"):
        earned.append("pkce-missing")  # a public client's code redeemed without S256 PKCE
    redirect_uri = code.redirect_uri if code is not None else request.payload.redirect_uri
    if redirect_uri and redirect_uri not in client.redirect_uris:  # sent elsewhere
        path = posixpath.normpath(urlsplit(redirect_uri).path)
        earned.insert(0, "open-redirect" if path == "/next" else "redirect-uri")
    return earned


def _reveal_token_flags(state: LabState, auth: authserver.AuthServer) -> None:
    """Authlib answers /token with the dict it saved: a flag put in it reaches the caller."""
    save = auth.save_token

    def save_token(token: dict[str, Any], request: Any) -> None:
        earned = _token_flags(auth, token, request)
        save(token, request)
        if earned:
            token["flag"] = state.flag(earned[0])
            if len(earned) > 1:  # a string: the implicit grant puts it in a URL fragment
                token["flags"] = " ".join(state.flag(name) for name in earned)

    auth.save_token = save_token  # type: ignore[method-assign]


def _foreign_token(token: str, known: Verifier) -> bool:
    """Not an access token for this API: an ID token, or one minted for another audience."""
    try:
        header = jwt.get_unverified_header(token)
        aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
    except jwt.PyJWTError:
        return False
    audiences = aud if isinstance(aud, list) else [aud]
    kind = str(header.get("typ", "")).lower()
    return kind not in ("at+jwt", "application/at+jwt") or known.audience not in audiences


def _photos_with_flags(state: LabState, known: Verifier) -> FastAPI:
    """The photos API, whose answer to a token not meant for it carries the flag."""
    app = create_photos_app(state, known)

    @app.middleware("http")
    async def reveal(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        token = bearer_token(request)
        if response.status_code != 200 or token is None or not _foreign_token(token, known):
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        return JSONResponse({**json.loads(body), "flag": state.flag("token-audience")})

    return app
