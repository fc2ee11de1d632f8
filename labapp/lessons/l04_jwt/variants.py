"""Lesson 04's genuine-but-wrong tokens: the issuer's own signature over claims or headers
that no validator of this API may accept.

The attacks of ``forge.py`` are what an attacker makes. These are what the lessons do not
name: a token signed by the issuer's real key (as a buggy or compromised issuer, a sandbox
sharing the key, or a leaked batch job would sign it) whose ``exp`` is a string, whose
lifetime is ten years, whose ``iss`` is the issuer's with a trailing slash, whose ``aud`` is
a list of other services, whose ``kid`` the JWKS does not list. PyJWT accepts some of them
(it ``int()``s the time claims and accepts any future ``exp``); the validator must not.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from labapp.lessons.l04_jwt.jose import ISSUER, LIFETIME, TYP, Material, b64url


def _raw(m: Material, claims: dict[str, Any], **header: Any) -> str:
    """Genuinely signed, over exactly these claims and header (json.dumps writes NaN too)."""
    head = {"alg": "RS256", "typ": TYP, "kid": m.kid, **header}
    return m.sign_raw(json.dumps(head), json.dumps(claims))


def _alice(m: Material, **overrides: Any) -> dict[str, Any]:
    return m.claims("alice", "customer", **overrides)


def forge_claim_types(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    """exp, iat and nbf that are not JSON numbers (RFC 7519 §2 NumericDate; RFC 8259 §6)."""
    now = int(time.time())
    return {
        "exp a numeric string": _raw(m, _alice(m, exp=str(now + 600))),
        "iat a numeric string": _raw(m, _alice(m, iat=str(now))),
        "nbf a numeric string": _raw(m, _alice(m, nbf=str(now - 60))),
        "nbf true": _raw(m, _alice(m, nbf=True)),
        "nbf null": _raw(m, {**_alice(m), "nbf": None}),
        "exp a list": _raw(m, _alice(m, exp=[now + 600])),
        "exp NaN": _raw(m, _alice(m, exp=float("nan"))),
        "exp Infinity": _raw(m, _alice(m, exp=float("inf"))),
    }


def forge_lifetime(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    """Numbers of absurd magnitude, or a lifetime this issuer never grants (15 minutes)."""
    now = int(time.time())
    return {
        "a token that lives 20 minutes": _raw(m, _alice(m, exp=now + LIFETIME + 300)),
        "exp ten years away": _raw(m, _alice(m, exp=now + 10 * 365 * 24 * 3600)),
        "exp 2**70": _raw(m, _alice(m, exp=2**70)),
        "exp 1e308": _raw(m, _alice(m, exp=1e308)),
        # A float minus this int overflows: a validator that subtracts raises, and a 500
        # is never a pass.
        "exp a 400-digit integer, iat a float": _raw(
            m, _alice(m, exp=10**400, iat=time.time() - 1)
        ),
        "iat -2**70 (issued before time began)": _raw(m, _alice(m, iat=-(2**70))),
    }


def forge_issuer_variants(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    """Issuers that are not ours, however alike (RFC 9068 §4: iss MUST exactly match)."""
    variants = (
        ISSUER + "/",
        "HTTPS://LAB.EXAMPLE/issuer",
        "https://LAB.EXAMPLE/issuer",
        f" {ISSUER} ",
        ISSUER + "\n",
        "https://lab.example:443/issuer",
        ISSUER + "#staging",
        "https://lab.example/\uff49ssuer",  # a fullwidth i: equal only after NFKC
        "https://lab.example/%69ssuer",  # equal only after percent-decoding
        ISSUER + "/.",  # equal only after path normalisation
        "https://lab.example/",
        f"https://attacker.example/?next={ISSUER}",
    )
    return {f"iss {iss!r}": _raw(m, _alice(m, iss=iss)) for iss in variants}


def forge_audience_list(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    """aud in its other forms (RFC 7519 §4.1.3), none of which names orders-api exactly."""
    variants: tuple[Any, ...] = (
        ["other"],
        ["billing", "orders-api-staging"],
        [],
        [["orders-api"]],
        ["ORDERS-API"],
        ["orders-api "],
        "orders-api billing",
        {"orders-api": True},
    )
    return {f"aud {json.dumps(aud)}": _raw(m, _alice(m, aud=aud)) for aud in variants}


def forge_kid_unknown(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    """Signed with the issuer's key, but under no kid the JWKS lists (or none at all)."""
    claims = _alice(m)
    tokens = {"no kid": m.sign_raw(json.dumps({"alg": "RS256", "typ": TYP}), json.dumps(claims))}
    for kid in ("rsa-retired", "", f"{m.kid} ", m.kid.upper(), None, 7, [m.kid]):
        tokens[f"kid {json.dumps(kid)}"] = _raw(m, claims, kid=kid)
    return tokens


def forge_hostile_header(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    """Headers that are JSON, but not the object a validator expects (and a deep payload)."""
    body = json.dumps(_alice(m))
    deep = "[" * 3000 + "]" * 3000
    headers = {
        "a header that is a JSON array": '["RS256"]',
        "a header that is a number": "7",
        "a header that is null": "null",
        "a header nested 3000 deep": f'{{"alg":"RS256","kid":"{m.kid}","x":{deep}}}',
        "a header with alg twice": f'{{"alg":"none","alg":"RS256","kid":"{m.kid}"}}',
        "a kid with a lone surrogate": '{"alg":"RS256","kid":"\\ud800"}',
        "a kid beyond 64 bits": f'{{"alg":"RS256","kid":{2**70}}}',
    }
    tokens = {name: _unsigned(text, body) for name, text in headers.items()}
    head = json.dumps({"alg": "RS256", "typ": TYP, "kid": m.kid})
    tokens["a payload nested 3000 deep"] = _unsigned(head, f'{{"sub":"alice","x":{deep}}}')
    tokens["a header that is not UTF-8"] = _unsigned(head, body, prefix=b"\xff\xfe")
    return tokens


def _unsigned(header: str, payload: str, prefix: bytes = b"") -> str:
    """header.payload with a signature nobody made (these must fail before any key is used)."""
    return f"{b64url(prefix + header.encode())}.{b64url(payload.encode())}.c2ln"
