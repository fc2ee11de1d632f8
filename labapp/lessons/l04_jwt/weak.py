"""Lesson 04's weak default: ten services, each validating tokens one wrong way.

The hook is ``validate_token(token)``: it sees only the token. The weak default also needs to
know which service is asking and the lab's keys, so the route puts both in a context
variable; the guard runs the hook in a copy of the request's context, where it is visible.
Each service is the lab's otherwise reasonable baseline (RS256 only, the lab's key, issuer,
audience and expiry checked) with one flaw, named by the attack it invites.
"""

from __future__ import annotations

import contextvars
import ipaddress
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from labapp.engine.http import lab_client
from labapp.engine.store import Store
from labapp.lessons.l04_jwt.jose import AUDIENCE, ISSUER, LEEWAY, Material, hs256_valid


@dataclass(frozen=True)
class Calling:
    """Which service is validating, and what the lab gives it to validate with."""

    service: str
    material: Material
    store: Store
    workdir: Path
    jwks_url: str  # the issuer's own JWKS, as this lab serves it


CALLING: contextvars.ContextVar[Calling] = contextvars.ContextVar("l04_calling")

Header = dict[str, Any]
Claims = dict[str, Any]


def _baseline(token: str, m: Material, key: Any = None, **options: Any) -> Claims:
    """What every service does unless its flaw says otherwise."""
    return jwt.decode(
        token,
        m.public_key if key is None else key,
        algorithms=["RS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        leeway=LEEWAY,
        options={"require": ["exp"], **options},
    )


def _hs256_claims(token: str, key: bytes) -> Claims:
    """Verify HMAC-SHA-256 by hand (as the real services did), then the usual claim checks."""
    if not hs256_valid(token, key):
        raise jwt.InvalidSignatureError("Signature verification failed")
    return jwt.decode(
        token,
        options={
            "verify_signature": False,
            "verify_exp": True,
            "verify_aud": True,
            "verify_iss": True,
        },
        audience=AUDIENCE,
        issuer=ISSUER,
        leeway=LEEWAY,
    )


def profile(token: str, header: Header, c: Calling) -> Claims:
    """WEAK (unverified-signature): "we only read the name", so it never checks the signature."""
    return jwt.decode(token, options={"verify_signature": False})


def widgets(token: str, header: Header, c: Calling) -> Claims | None:
    """WEAK (alg-none): refuses "none" by name, then matches algorithm names without case,
    so "None" and "NONE" still select "unsigned": a blocklist of one spelling."""
    alg = str(header.get("alg", ""))
    if alg == "none":
        return None  # "we fixed alg none last year"
    if alg.lower() == "none":  # the old internal-token path, still there
        return jwt.decode(token, options={"verify_signature": False})
    return _baseline(token, c.material)


def legacy(token: str, header: Header, c: Calling) -> Claims:
    """WEAK (weak-secret): HS256 with a dictionary word as the key, from 2019."""
    if header.get("alg") == "HS256":
        return _hs256_claims(token, c.material.legacy_secret)
    return _baseline(token, c.material)


def partners(token: str, header: Header, c: Calling) -> Claims:
    """WEAK (jwk-injection): a partner may embed its public key in the token's header."""
    if "jwk" in header:
        key = jwt.algorithms.RSAAlgorithm.from_jwk(header["jwk"])
        return jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, leeway=LEEWAY)
    return _baseline(token, c.material)


def _loopback(url: str) -> bool:
    """The lab fetches nothing beyond this machine (DESIGN: a jku fetch reaches only loopback)."""
    parsed = urlsplit(url)
    if parsed.scheme != "http" or not parsed.hostname:
        return False
    if parsed.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parsed.hostname).is_loopback
    except ValueError:
        return False


def _fetch_keys(url: str) -> list[dict[str, Any]]:
    with lab_client(url) as client:
        return client.get(url, timeout=0.5).json()["keys"]


def integrations(token: str, header: Header, c: Calling) -> Claims:
    """WEAK (jku-injection): fetches the verification keys from the URL the token names.

    With no ``jku`` it fetches the issuer's JWKS instead, afresh for every token ("keys
    rotate"): a flood of tokens with made-up kids is a flood of requests to the issuer.
    """
    url = str(header.get("jku", ""))
    if not url:
        if not _loopback(c.jwks_url):  # served over TLS: the same keys, read directly
            return _baseline(token, c.material)
        keys = _fetch_keys(c.jwks_url)
        jwk = next((k for k in keys if k.get("kid") == header.get("kid")), keys[0])
        return _baseline(token, c.material, jwt.algorithms.RSAAlgorithm.from_jwk(jwk))
    if not _loopback(url):
        raise jwt.InvalidTokenError("jku outside loopback: the lab does not fetch it")
    keys = _fetch_keys(url)
    jwk = next((k for k in keys if k.get("kid") == header.get("kid")), keys[0])
    key = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
    return jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, leeway=LEEWAY)


def files(token: str, header: Header, c: Calling) -> Claims:
    """WEAK (kid-traversal): an HS256 key is read from the file the kid names."""
    kid = str(header.get("kid", ""))
    if kid == c.material.kid:
        return _baseline(token, c.material)
    root = c.workdir.resolve()
    path = (root / "keys" / kid).resolve()
    if not path.is_relative_to(root) or not path.is_file():  # confined to the lab's folder
        raise jwt.InvalidKeyError("no such key file in the lab's folder")
    return _hs256_claims(token, path.read_bytes())


def inventory(token: str, header: Header, c: Calling) -> Claims:
    """WEAK (kid-sqli): an HS256 key is looked up with SQL built from the kid."""
    kid = str(header.get("kid", ""))
    if kid == c.material.kid:
        return _baseline(token, c.material)
    row = c.store.one(f"SELECT secret FROM jwt_keys WHERE kid = '{kid}'")
    if row is None:
        raise jwt.InvalidKeyError("unknown kid")
    return _hs256_claims(token, str(row["secret"]).encode())


def reports(token: str, header: Header, c: Calling) -> Claims:
    """WEAK (alg-confusion): trusts the header's alg, so HS256 is checked with the RSA PEM."""
    if header.get("alg") == "HS256":
        return _hs256_claims(token, c.material.public_pem)
    return _baseline(token, c.material)


def archive(token: str, header: Header, c: Calling) -> Claims:
    """WEAK (expired): "old reports must stay readable", so expiry is not checked."""
    return _baseline(token, c.material, verify_exp=False, require=[])


def search(token: str, header: Header, c: Calling) -> Claims:
    """WEAK (audience): any token the lab's key signed will do, whoever it was for."""
    return _baseline(token, c.material, verify_aud=False, verify_iss=False)


# What the flawed services may meet in a hostile header or a hostile JWKS (a key set that is
# a list, a jwk whose n is a number, a kid too long for a file name...): a refusal, each one.
# Only the deliberate crash above, on a token that is not a JWS at all, is left as a 500.
HOSTILE = (
    jwt.PyJWTError,
    sqlite3.Error,
    httpx.HTTPError,
    httpx.InvalidURL,
    OSError,
    LookupError,
    ValueError,
    TypeError,
    AttributeError,
    RecursionError,
)

FLAWED: dict[str, Callable[[str, Header, Calling], Claims]] = {
    fn.__name__: fn
    for fn in (
        profile, widgets, legacy, partners, integrations, files, inventory, reports, archive,
        search,
    )
}  # fmt: skip


def weak_validate_token(token: str) -> dict[str, Any] | None:
    """The token's claims if this service accepts it, else None.

    WEAK on purpose: each service has its own flaw (see ``GET /svc``), and a token that is not
    even three base64url segments crashes it (a 500 is a finding too).
    """
    calling = CALLING.get()
    header = jwt.get_unverified_header(token)  # WEAK: garbage raises here, outside the try
    try:
        return FLAWED[calling.service](token, header, calling)
    except HOSTILE:
        return None
