"""How lesson 04's battery sends tokens: one route per service, and the rows that need a
sequence rather than a list (a verdict cache to warm first, the JWKS fetches to count).
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from labapp.engine.grading import Observed
from labapp.lessons.l04_jwt.forge import attacker_key, login_as_alice
from labapp.lessons.l04_jwt.jose import (
    LEEWAY,
    LIFETIME,
    SERVICES,
    TYP,
    Material,
    b64url,
    load_material,
    segment,
    unb64url,
)

Forge = Callable[[Any, httpx.Client, Material], dict[str, str]]


def route(service: str, admin: bool) -> str:
    return f"/svc/{service}/{'admin' if admin else 'me'}"


def send(http: httpx.Client, url: str, token: str) -> httpx.Response:
    return http.get(url, headers={"Authorization": f"Bearer {token}".strip()})


def replay(
    http: httpx.Client,
    service: str,
    tokens: dict[str, str],
    admin: bool = True,
) -> Observed:
    """Send each named token; the attack got through if any was answered 2xx.

    A 5xx is never a pass: the row then says which token crashed the validator (the engine
    adds the learner's own line and the row's fix).
    """
    status, crashed = None, None
    for name, token in tokens.items():
        response = send(http, route(service, admin), token)
        status = response.status_code
        if response.is_success:
            return Observed(True, status, f"validate_token accepted {name} ({service})")
        if status >= 500 and crashed is None:
            crashed = name
    if crashed is not None:
        return Observed(False, 500, f"validate_token crashed on {crashed} ({service})")
    return Observed(False, status)


def attack(
    service: str, forge: Forge, admin: bool = True
) -> Callable[[Any, httpx.Client], Observed]:
    """Replay the forged tokens at the service's admin route (or /me: admin=False)."""

    def run(lab: Any, http: httpx.Client) -> Observed:
        tokens = forge(lab, http, load_material(lab.store))
        return replay(http, service, tokens, admin)

    return run


def combined(*forges: Forge) -> Forge:
    """One row's tokens from several forges."""

    def forge(lab: Any, http: httpx.Client, m: Material) -> dict[str, str]:
        return {name: token for f in forges for name, token in f(lab, http, m).items()}

    return forge


def everywhere(lab: Any, http: httpx.Client, token: str, admin: bool) -> Observed:
    """2xx on every service, and never a flag for a legitimate token."""
    for service in SERVICES:
        response = send(http, route(service, admin), token)
        if not response.is_success:
            verdict = "crashed on" if response.status_code >= 500 else "refused"
            return Observed(False, response.status_code, f"validate_token {verdict} it ({service})")
        if "flag" in response.json():
            return Observed(False, response.status_code, f"{service} gave a flag to a real user")
    return Observed(True, 200, f"accepted by all {len(SERVICES)} services")


def cached_verdict(lab: Any, http: httpx.Client) -> Observed:
    """alice's real token first (a cache learns it), then tokens that share a part of it.

    Each shares with the real token something a cache might be keyed on (its header and
    payload, its payload, its signature, its kid, sub, jti and exp) and differs in what a full
    validation checks, so only a validator that really validates every token refuses all.
    """
    m = load_material(lab.store)
    token = login_as_alice(http, lab)
    send(http, route("profile", False), token)  # not judged here: the legit rows do that
    head, body, signature = token.split(".")
    claims = json.loads(unb64url(body))
    admin = {**claims, "role": "admin"}
    raw = bytearray(unb64url(signature))
    raw[-1] ^= 1
    unsigned_head = segment({"alg": "none", "typ": TYP, "kid": m.kid})
    attacker = jwt.encode(
        admin, attacker_key(), algorithm="RS256", headers={"typ": TYP, "kid": m.kid}
    )
    variants = {
        "her header and payload, one bit of the signature flipped": f"{head}.{body}.{b64url(raw)}",
        "her payload under alg none": f"{unsigned_head}.{body}.",
        "her header and signature, role admin": f"{head}.{segment(admin)}.{signature}",
        "her kid, sub, jti and exp, role admin, the attacker's signature": attacker,
    }
    # /me, not /admin: a cache that answers with her old claims (role customer) has still
    # accepted the forgery, and /admin would hide that behind a 403.
    seen = replay(http, "profile", variants, admin=False)
    return seen if seen.succeeded else _expired_since(http, m) or seen


def _expired_since(http: httpx.Client, m: Material) -> Observed | None:
    """A token accepted now, sent again once it has expired: a verdict cached by the whole
    token accepts it still. None when there is nothing to learn (no clock is judged here).

    Its exp runs out (at the 30 s leeway the notebook asks for) 0.3 to 1.3 s from now. A
    fresh token with the same exp goes first after the wait: if that one is accepted, the
    validator's leeway is just longer, and the row learns nothing; if it is refused, the old
    token, sent after it, can only be refused too by a validator that checks the clock.
    """
    now = time.time()
    exp = math.floor(now) - LEEWAY + (2 if now % 1 > 0.7 else 1)

    def mint() -> str:
        return m.mint(m.claims("alice", "customer", iat=exp - LIFETIME, exp=exp))

    url, token = route("profile", False), mint()
    if not send(http, url, token).is_success:
        return None  # refused already (a slow machine, or a stricter leeway)
    time.sleep(max(0.0, exp + LEEWAY - time.time() + 0.05))
    if send(http, url, mint()).is_success:
        return None  # a longer leeway than 30 s: not this row's question
    again = send(http, url, token)
    if again.is_success:
        detail = "alice's token, accepted a second earlier and expired since, was accepted again"
        return Observed(True, again.status_code, detail)
    return None


def jwks_flood(lab: Any, http: httpx.Client) -> Observed:
    """Tokens with made-up kids: count how often the service fetches the issuer's JWKS."""
    m = load_material(lab.store)
    before = _jwks_fetches(lab)
    status = None
    tokens = 4
    for _ in range(tokens):
        kid = f"rotated-{secrets.token_hex(4)}"
        forged = jwt.encode(
            m.claims("mallory", "admin"), attacker_key(), algorithm="RS256",
            headers={"typ": TYP, "kid": kid},
        )  # fmt: skip
        response = send(http, route("integrations", True), forged)
        status = response.status_code
        if response.is_success:
            return Observed(True, status, f"validate_token accepted a token with kid {kid!r}")
    fetches = _jwks_fetches(lab) - before
    detail = f"{tokens} tokens with made-up kids made validate_token fetch the JWKS {fetches} times"
    return Observed(fetches > 1, None if fetches > 1 else status, detail)


def _jwks_fetches(lab: Any) -> int:
    row = lab.store.one("SELECT n FROM jwks_fetches")
    return 0 if row is None else int(row["n"])
