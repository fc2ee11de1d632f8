"""Lesson 08: OAuth 2.0 and OpenID Connect. An authorization server weak in six places.

The lab's app (``lab.url``) is the authorization server (:mod:`authserver`, on Authlib);
``lab.net`` holds the photos API it issues tokens for and the client app's address. Every
decision the lesson's attacks target is a hook whose default below is the deliberately
weak one; the sound versions are in :mod:`policy`. References: RFC 9700 §2.1, §2.1.1,
§2.1.2, §2.3, §4.1, §4.5; RFC 6749 §4.1.2; RFC 7636; RFC 9068 §4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from fastapi import FastAPI

from labapp.engine.spec import Hook, LabState
from labapp.lessons.l08_oauth import authserver, people, verifier
from labapp.lessons.l08_oauth.client import CLIENT_HOOKS
from labapp.lessons.l08_oauth.client import create_app as create_shop_app
from labapp.lessons.l08_oauth.network import Network
from labapp.lessons.l08_oauth.photos import create_photos_app
from labapp.lessons.l08_oauth.records import User

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
    """WEAK on purpose: the implicit flow stays on "for the old single-page app"."""
    return response_type in ("code", "token")


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
        "check; the claims of a token it accepts, or None (lab.net.signing_key(token), "
        "lab.net.issuer, lab.net.audience)",
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
    auth = authserver.AuthServer(users, [], call=state.call)
    app = authserver.create_app(auth)
    app.state.auth = auth
    return app


def network(lab: Lab) -> Network:
    """The photos API and the client app's address, as ``lab.net``."""
    return Network(lab, create_photos_app, create_shop_app)
