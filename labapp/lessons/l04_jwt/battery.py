"""Lesson 04's battery: replay every forged token against the service it breaks.

Each attack sends its tokens to the service whose weak default it breaches (the learner's
validator is the same for every service, so that route stands for all of them). A forged
token must get a 4xx; the legitimate checks log in for real, or use tokens the lab's own
issuer mints, and must get a 2xx on every service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.l04_jwt.forge import (
    forge_alg_none,
    forge_audience,
    forge_confusion,
    forge_expired,
    forge_jku,
    forge_jwk,
    forge_kid_sqli,
    forge_kid_traversal,
    forge_malformed,
    forge_missing,
    forge_unverified,
    forge_weak_secret,
    forge_wrong_typ,
    login_as_alice,
)
from labapp.lessons.l04_jwt.jose import SERVICES, Material, load_material


def _route(service: str, admin: bool) -> str:
    return f"/svc/{service}/{'admin' if admin else 'me'}"


def _send(http: httpx.Client, url: str, token: str) -> httpx.Response:
    return http.get(url, headers={"Authorization": f"Bearer {token}".strip()})


def _replay(
    http: httpx.Client, service: str, tokens: dict[str, str], admin: bool = True
) -> Observed:
    """Send each named token; the attack got through if any was answered 2xx."""
    status = None
    for name, token in tokens.items():
        response = _send(http, _route(service, admin), token)
        status = response.status_code
        if response.is_success:
            return Observed(True, status, f"{name} was accepted by {service}")
    return Observed(False, status)


def _attack(
    service: str,
    forge: Callable[[Any, httpx.Client, Material], dict[str, str]],
    admin: bool = True,
) -> Callable[[Any, httpx.Client], Observed]:
    """Replay the forged tokens at the service's admin route (or /me: admin=False)."""

    def run(lab: Any, http: httpx.Client) -> Observed:
        return _replay(http, service, forge(lab, http, load_material(lab.store)), admin)

    return run


def _everywhere(lab: Any, http: httpx.Client, token: str, admin: bool) -> Observed:
    """2xx on every service, and never a flag for a legitimate token."""
    for service in SERVICES:
        response = _send(http, _route(service, admin), token)
        if not response.is_success:
            return Observed(False, response.status_code, f"refused by {service}")
        if "flag" in response.json():
            return Observed(False, response.status_code, f"{service} gave a flag to a real user")
    return Observed(True, 200, f"accepted by all {len(SERVICES)} services")


def check_login(lab: Any, http: httpx.Client) -> Observed:
    return _everywhere(lab, http, login_as_alice(http, lab), admin=False)


def check_admin(lab: Any, http: httpx.Client) -> Observed:
    m = load_material(lab.store)
    return _everywhere(lab, http, m.mint(m.claims("carol", "admin")), admin=True)


def check_leeway(lab: Any, http: httpx.Client) -> Observed:
    m, now = load_material(lab.store), int(time.time())
    token = m.mint(m.claims("alice", "customer", iat=now - 905, exp=now - 5))
    response = _send(http, _route("reports", False), token)
    return Observed(response.is_success, response.status_code, "a token 5 s past exp")


ATTACKS = (
    Attack(
        "unverified-signature",
        "alice's token with role admin, signature kept (profile)",
        (
            "Log in as alice, split the token at the dots, base64url-decode the middle part.",
            "Set role to admin, re-encode the middle part, keep header and signature as they are.",
        ),
        _attack("profile", forge_unverified),
        fix="always verify the signature: jwt.decode with a key and algorithms=['RS256'], "
        "never verify_signature=False.",
    ),
    Attack(
        "alg-none",
        "alg none, None, NONE and nOnE with an empty signature (widgets)",
        (
            "The header is JSON too. What if it said the token is not signed at all?",
            "Header {'alg': 'none'}, your admin claims, and nothing after the last dot.",
        ),
        _attack("widgets", forge_alg_none),
        fix="pin algorithms=['RS256']; never take the algorithm from the token.",
    ),
    Attack(
        "weak-secret",
        "an admin token signed HS256 with the legacy service's dictionary word (legacy)",
        (
            "The token log holds an HS256 token of the legacy service. Its key is a word.",
            "For each word of load_wordlist(): hs256(header.payload, word) == signature?",
        ),
        _attack("legacy", forge_weak_secret),
        fix="accept no HS256 at all here: RS256 only, keys from your own key map.",
    ),
    Attack(
        "jwk-injection",
        "a token signed with the attacker's key, that key in the jwk header (partners)",
        ("Make your own RSA key; put its public JWK in the header as 'jwk'.",),
        _attack("partners", forge_jwk),
        fix="keys come from your configured map by kid, never from the token (RFC 8725 §3.8).",
    ),
    Attack(
        "jku-injection",
        "a token whose jku points at the attacker's JWKS (integrations)",
        (
            "lab.attacker_server({'/jwks.json': {'keys': [your_jwk]}}) serves your JWKS.",
            "Header: alg RS256, kid of your JWK, jku = that URL + '/jwks.json'.",
        ),
        _attack("integrations", forge_jku),
        fix="never fetch keys from a URL the token names; use your own pinned JWKS.",
    ),
    Attack(
        "kid-traversal",
        "kid ../static/robots.txt (and its absolute path), HS256 keyed with that file (files)",
        (
            "The files service reads the key from keys/<kid>. Which file's content do you know?",
            "GET /robots.txt; kid '../static/robots.txt'; sign HS256 with the file's bytes.",
        ),
        _attack("files", forge_kid_traversal),
        fix="look kid up in a dict of known keys; a kid is never a path.",
    ),
    Attack(
        "kid-sqli",
        "kid with a UNION SELECT of a secret the attacker chose (inventory)",
        (
            "The key is found with SELECT secret FROM jwt_keys WHERE kid = '<kid>'.",
            "kid = \"x' UNION SELECT 'my-secret' --\", then sign HS256 with my-secret.",
        ),
        _attack("inventory", forge_kid_sqli),
        fix="look kid up in a dict of known keys (or bind it as a SQL parameter).",
    ),
    Attack(
        "alg-confusion",
        "HS256 keyed with the server's RSA public key PEM, kid of the RSA key; and genuine "
        "PS256 and RS512 tokens from the RS256 key (reports)",
        (
            "The JWKS is public. jwt.PyJWK(jwk).key.public_bytes(...) gives its PEM.",
            "Sign header {'alg': 'HS256', 'kid': <RSA kid>} and admin claims with hmac, "
            "using those PEM bytes as the secret.",
        ),
        _attack("reports", forge_confusion),
        fix="one key, one algorithm (RFC 8725 §3.1): algorithms=['RS256'] only, and catch "
        "jwt.PyJWTError (InvalidKeyError is not an InvalidTokenError).",
    ),
    Attack(
        "expired",
        "the captured expired token, a batch token without exp, tokens 10 min and 90 s past "
        "exp, nbf and iat in the future (archive)",
        ("The token log was kept. Are old tokens still good anywhere?",),
        _attack("archive", forge_expired, admin=False),
        fix="require exp (options={'require': [...]}), keep exp, nbf and iat checks on, and "
        "the leeway small (30 s).",
    ),
    Attack(
        "audience",
        "a billing token, a sandbox issuer's token, aud orders-api-staging, "
        "iss .../issuer-staging (search)",
        (
            "POST /billing/login gives a token for another API, signed by the same key.",
            "The token log has a token from another issuer, too.",
        ),
        _attack("search", forge_audience, admin=False),
        fix="pass audience='orders-api' and issuer='https://lab.example/issuer'.",
    ),
    Attack(
        "malformed",
        "empty, two or four segments, not base64, an 8 KB header, a non-JSON payload...",
        (),
        _attack("reports", forge_malformed, admin=False),
        fix="catch jwt.PyJWTError around everything you parse, and return None.",
        flag=False,
    ),
    Attack(
        "wrong-typ",
        "genuine tokens with typ JWT, no typ, or typ 7 (not an access token)",
        (),
        _attack("reports", forge_wrong_typ, admin=False),
        fix="accept only typ 'at+jwt' (or 'application/at+jwt'), RFC 9068 §4.",
        flag=False,
    ),
    Attack(
        "missing-claims",
        "genuine tokens without jti, iat, sub, iss or aud",
        (),
        _attack("reports", forge_missing, admin=False),
        fix="options={'require': ['exp', 'iat', 'iss', 'aud', 'sub', 'jti']}.",
        flag=False,
    ),
)

CHECKS = (
    Check("fresh-login", "alice logs in: her token works on all 10 services", check_login),
    Check("admin-token", "a genuine admin token opens every admin report", check_admin),
    Check("within-leeway", "a token 5 s past exp is still accepted (clock skew)", check_leeway),
)
