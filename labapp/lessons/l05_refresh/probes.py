"""What lesson 05's battery is made of: HTTP steps, probe tokens, and two looks at issue_refresh.

Probe tokens are signed with the lab's own key, as the issuer would have signed them (an old
refresh format, an expired access token...), and carry a *live* session and a fresh ``jti``:
each probe differs from a good access token in one property only, so a defense that refuses
it refuses it for that property and not by luck.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
import os
import random
import secrets
import string
import time
import types
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from labapp.lessons.l05_refresh.tokens import TokenStore

ENOUGH_BITS = 128  # RFC 6749 §10.10: guessing a token must have odds of at most 2^-128
# The estimate reads 16 samples: a column of a 128-bit token_urlsafe(16) that holds 2 bits
# may show only 2 of its 4 values. A margin keeps that from failing a right answer, and
# still fails a UUID4 (122 bits) or 15 random bytes (120).
ESTIMATE_MARGIN = 4
SAMPLES = 16  # refresh tokens the entropy look draws (one login each)


# -- HTTP steps ---------------------------------------------------------------------------


class LoginFailed(Exception):
    """A row could not even log in: the row fails, and the report says so plainly."""


def login(lab: Any, http: httpx.Client, username: str = "alice") -> dict[str, Any]:
    password = (
        lab.users[0]["password"]
        if username == "alice"
        else json.loads(lab.workdir.joinpath("victim.json").read_text())["password"]
    )
    response = http.post("/login", json={"username": username, "password": password})
    if not response.is_success:  # never a pass: the row "could not complete"
        raise LoginFailed(f"POST /login as {username} answered {response.status_code}")
    return response.json()


def refresh(http: httpx.Client, token: str) -> httpx.Response:
    return http.post("/refresh", json={"refresh_token": token})


def me(http: httpx.Client, token: str) -> httpx.Response:
    return http.get("/api/me", headers={"Authorization": f"Bearer {token}"})


def log_out(http: httpx.Client, access: str, refresh_token: str | None) -> httpx.Response:
    body = {} if refresh_token is None else {"refresh_token": refresh_token}
    return http.post("/logout", headers={"Authorization": f"Bearer {access}"}, json=body)


def chain(http: httpx.Client, tokens: dict[str, Any], steps: int) -> list[dict[str, Any]]:
    """Refresh ``steps`` times in a row; the token sets of each step (the login's first)."""
    sets = [tokens]
    for _ in range(steps):
        response = refresh(http, sets[-1]["refresh_token"])
        if not response.is_success:
            break
        sets.append(response.json())
    return sets


def claims_of(access_token: str) -> dict[str, Any]:
    """An access token's claims, unverified: the grader reads its own lab's tokens."""
    return jwt.decode(access_token, options={"verify_signature": False})


def family_revoked(lab: Any, family: str) -> bool:
    row = lab.store.one("SELECT revoked FROM families WHERE id = ?", (family,))
    return row is not None and bool(row["revoked"])


# -- probe tokens -------------------------------------------------------------------------


@functools.cache
def _stranger_key() -> rsa.RSAPrivateKey:
    """Someone else's RSA key (made once per process: 2048-bit keys take a while)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def probe(
    issuer: TokenStore,
    like: dict[str, Any],
    *,
    typ: str | None = "at+jwt",
    stranger: bool = False,
    **changes: Any,
) -> str:
    """A token like the access token ``like`` (its claims), with a fresh jti and ``changes``.

    A change to None drops the claim; ``typ=None`` drops the header; ``stranger`` signs
    with a key that is not the lab's (under the lab's kid).
    """
    now = int(time.time())
    claims = {**like, "jti": secrets.token_hex(8), "iat": now - 5, "exp": now + 300, **changes}
    claims = {name: value for name, value in claims.items() if value is not None}
    if not stranger:
        return issuer.mint(claims, typ=typ)  # type: ignore[arg-type]  # None drops the header
    headers = {"typ": typ, "kid": issuer.kid}
    return jwt.encode(claims, _stranger_key(), algorithm="RS256", headers=headers)


def hs256_probe(like: dict[str, Any]) -> str:
    """An access token signed HS256 with a random secret: an algorithm the API must refuse."""
    claims = {**like, "jti": secrets.token_hex(8)}
    return jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256", headers={"typ": "at+jwt"})


# -- looking at issue_refresh -------------------------------------------------------------


def _decodings(text: str) -> list[bytes]:
    found = []
    for decode in (
        lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)),
        lambda t: base64.b64decode(t + "=" * (-len(t) % 4)),
        bytes.fromhex,
    ):
        try:
            found.append(decode(text))
        except (ValueError, binascii.Error):
            continue
    return found


def readable_parts(token: str, *secrets_of_the_session: str) -> str | None:
    """What a refresh token gives away, as it is or decoded, or None if it is opaque.

    Opaque means nothing to read: no JSON (a JWT's header and claims), and none of
    ``secrets_of_the_session`` (the username, the family id), plain or base64 or hex.
    """
    for part in (token, *token.replace(":", ".").split(".")):
        for decoded in _decodings(part):
            try:
                value = json.loads(decoded)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return f"it decodes to JSON ({', '.join(sorted(map(str, value))[:4])}...)"
            text = decoded.decode("latin-1")
            if any(word in text for word in secrets_of_the_session):
                return "it decodes to text that names the user or the session"
    if any(word in token for word in secrets_of_the_session):
        return "it carries the user's name or the session id"
    return None


_CLASSES = (
    string.digits,
    string.digits + "abcdef",
    string.digits + "ABCDEF",
    string.ascii_letters + string.digits,
    string.ascii_letters + string.digits + "-_=",
    string.ascii_letters + string.digits + "+/=",
)


def estimated_bits(tokens: list[str]) -> float:
    """A generous estimate of the random bits in each of ``tokens`` (all drawn the same way).

    Each position counts the bits of the alphabet the tokens use (hex 4, base64url 6...)
    if it varies across the samples, nothing if it never changes, and less if it takes only
    a handful of values (a UUID's version and variant). A token made of a hash of guessable
    input looks random here: that is what :func:`draws_from_csprng` is for.
    """
    width = min(len(t) for t in tokens)
    columns = [{t[i] for t in tokens} for i in range(width)]
    # The alphabet of the positions that vary: a UUID's dashes do not make it base64.
    alphabet = set().union(*(column for column in columns if len(column) > 1))
    size = next((len(c) for c in _CLASSES if alphabet <= set(c)), len(string.printable))
    bits = 0.0
    for column in columns:
        if len(column) > 4:
            bits += math.log2(size)
        elif len(column) > 1:  # a UUID's variant: 4 values at most, 2 bits
            bits += math.ceil(math.log2(len(column)))
    return bits


_CSPRNG_NAMES = {"secrets", "token_bytes", "token_hex", "token_urlsafe", "randbits", "urandom"}
_CSPRNG_NAMES |= {"SystemRandom", "getrandom"}


def _codes(code: types.CodeType) -> list[types.CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found += _codes(const)
    return found


def draws_from_csprng(fn: Callable[..., Any], depth: int = 0) -> bool | None:
    """Does ``fn`` (or a function it calls) take its randomness from the OS's CSPRNG?

    It looks at the names the code uses (``secrets``, ``os.urandom``, ``SystemRandom``),
    and follows the helpers it calls, closures and ``functools.partial`` included. None when
    ``fn`` is not Python code at all (nothing to look at: the row then judges the tokens).
    """
    if _from_secrets(fn) or fn is os.urandom:
        return True
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        inner = getattr(fn, "func", None) or vars(type(fn)).get("__call__")  # a partial, an object
        if inner is None or depth >= 3:
            return None
        return draws_from_csprng(inner, depth + 1)
    scope = dict(getattr(fn, "__globals__", {}))
    for cell, name in zip(fn.__closure__ or (), code.co_freevars, strict=False):
        try:
            scope[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    for inner in _codes(code):
        for name in inner.co_names + inner.co_freevars:
            value = scope.get(name)
            if name in _CSPRNG_NAMES or value is secrets or value is os.urandom:
                return True
            callee = isinstance(value, types.FunctionType | functools.partial)
            if callee and value is not fn and depth < 3 and draws_from_csprng(value, depth + 1):
                return True
    return False


def _from_secrets(value: object) -> bool:
    bound = getattr(value, "__self__", None)
    return getattr(value, "__module__", None) == "secrets" or isinstance(bound, random.SystemRandom)


def sha256_forms(token: str) -> set[str | bytes]:
    """sha256(token) as a table may hold it: hex (either case), raw bytes, or base64."""
    raw = hashlib.sha256(token.encode()).digest()
    hexed = raw.hex()
    return {
        hexed,
        hexed.upper(),
        raw,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
