"""Lesson 05's hooks and their deliberately weak defaults, each naming the attack it invites."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

from labapp.engine.spec import Hook
from labapp.lessons.l05_refresh.tokens import AUDIENCE, ISSUER, TokenStore

# -- the weak defaults: each says which attack it invites -----------------------------------


def weak_issue_refresh(username: str, family: str, tokens: TokenStore) -> str:
    """WEAK: a 30-day JWT signed with the access tokens' key, no distinct typ
    (type-confusion), and kept at rest as-is."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": username, "sid": family}
    claims.update(iat=now, exp=now + 30 * 24 * 3600, jti=secrets.token_hex(8))
    token = tokens.mint(claims)
    tokens.save(token, username, family)
    return token


def weak_rotate(presented: str, tokens: TokenStore) -> dict[str, Any] | None:
    """WEAK: accepts any known token of a live family and never consumes it
    (refresh-replay, race); a reused token goes unnoticed (reuse-unnoticed)."""
    record = tokens.find(presented)
    if record is None or record["revoked"]:
        return None
    return record


def weak_validate_access(token: str, tokens: TokenStore) -> dict[str, Any] | None:
    """WEAK: checks signature, issuer, audience and expiry, but not the token's type
    (type-confusion) nor whether its session logged out (after-logout)."""
    try:
        return jwt.decode(
            token, tokens.public_key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER
        )
    except jwt.PyJWTError:
        return None


def weak_logout(claims: dict[str, Any], refresh_token: str | None, tokens: TokenStore) -> None:
    """WEAK: deletes the refresh token only; the access token works on (after-logout)."""
    if refresh_token:
        tokens.delete(refresh_token)


def weak_access_lifetime() -> int:
    """WEAK: twelve hours, so a stolen or logged-out access token lives all day."""
    return 12 * 3600


HOOKS = (
    Hook(
        "issue_refresh",
        ("username", "family", "tokens"),
        "issue_refresh(username, family, tokens) -> a new refresh token (str), saved",
        weak_issue_refresh,
        returns=str,
    ),
    Hook(
        "rotate",
        ("presented", "tokens"),
        "rotate(presented, tokens) -> the presented token's record if it may be exchanged, or None",
        weak_rotate,
    ),
    Hook(
        "validate_access",
        ("token", "tokens"),
        "validate_access(token, tokens) -> the access token's claims, or None to refuse",
        weak_validate_access,
    ),
    Hook(
        "logout",
        ("claims", "refresh_token", "tokens"),
        "logout(claims, refresh_token, tokens) -> None: end this session",
        weak_logout,
    ),
    Hook(
        "access_lifetime",
        (),
        "access_lifetime() -> seconds an access token lives",
        weak_access_lifetime,
    ),
)
