"""Lesson 04: JWT validation. One issuer, ten services, ten wrong ways to check a token.

The lab's login issues RS256 access tokens (RFC 9068: ``typ: at+jwt``) and publishes its
public key at ``/.well-known/jwks.json``. Ten services accept those tokens, each through the
same hook, ``validate_token(token)``, whose weak default gives every service its own flaw
(``weak.py``). The defense is one validator for all of them, following RFC 8725 §3, RFC 9068
§4 and OWASP ASVS 5 V9 (Self-contained Tokens).
"""

from __future__ import annotations

import hashlib
import hmac
import reprlib
import secrets
import time
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import Hook, LabState
from labapp.engine.store import _printable
from labapp.lessons.common import bearer_token, challenge, load_wordlist
from labapp.lessons.l04_jwt.jose import (
    AUDIENCE,
    LEGACY_KID,
    SANDBOX_ISSUER,
    SERVICES,
    Material,
    classify,
    hs256_token,
    load_material,
)
from labapp.lessons.l04_jwt.weak import CALLING, Calling, weak_validate_token

REALM = "orders"
BILLING_AUDIENCE = "billing"
ROBOTS = "User-agent: *\nDisallow: /ops/\nDisallow: /svc/\n# orders platform, ops team\n"
ACCEPTED_IS_ENOUGH = ("expired", "audience")  # these flags need no admin role (see /me)


def seed(state: LabState) -> None:
    words = [w for w in load_wordlist()[50:] if len(w) >= 6 and w.isalnum() and "admin" not in w]
    material = Material.generate(secrets.choice(words))
    store = state.store
    store.executescript(
        "CREATE TABLE accounts (username TEXT PRIMARY KEY, password_sha256 TEXT, role TEXT);"
        "CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, alg TEXT, private_pem TEXT, "
        "secret TEXT);"
        "CREATE TABLE jwt_keys (kid TEXT PRIMARY KEY, secret TEXT);"
        "CREATE TABLE token_log (id INTEGER PRIMARY KEY, line TEXT);"
        # How often the JWKS was served: a validator must not refetch it for every token.
        "CREATE TABLE jwks_fetches (n INTEGER NOT NULL); INSERT INTO jwks_fetches VALUES (0);"
        "CREATE TABLE admin_reports (service TEXT PRIMARY KEY, open_incidents INTEGER, "
        "revenue_change_pct REAL, busiest_customer TEXT);"
    )
    names = ("Harbour & Finch", "Okafor Logistics", "Brightwell Dental", "Nordlys AS",
                 "Casa Moreno", "Quill Street Books", "Tanaka Tools", "Lumen Yoga")  # fmt: skip
    store.executemany(  # what an admin report shows: different in every lab, never a secret
        "INSERT INTO admin_reports VALUES (?, ?, ?, ?)",
        [
            (name, secrets.randbelow(9), (secrets.randbelow(181) - 60) / 10, secrets.choice(names))
            for name in SERVICES
        ],
    )
    store.executemany(
        "INSERT INTO signing_keys VALUES (?, ?, ?, ?)",
        [
            (material.kid, "RS256", material.private_pem.decode(), None),
            (LEGACY_KID, "HS256", None, material.legacy_secret.decode()),
        ],
    )
    store.executemany(
        "INSERT INTO jwt_keys VALUES (?, ?)",
        [(f"inventory-{year}", secrets.token_hex(32)) for year in (2021, 2023)],
    )
    passwords = {name: secrets.token_urlsafe(12) for name in ("alice", "bob", "carol")}
    roles = {"alice": "customer", "bob": "customer", "carol": "admin"}
    store.executemany(
        "INSERT INTO accounts VALUES (?, ?, ?)",
        [(u, hashlib.sha256(p.encode()).hexdigest(), roles[u]) for u, p in passwords.items()],
    )
    store.add_secret(*passwords.values())
    # carol is the admin: her password is nobody's to know, so no login gives admin.
    state.users += [
        {"username": u, "password": passwords[u], "role": roles[u]} for u in ("alice", "bob")
    ]
    (state.workdir / "keys").mkdir()
    (state.workdir / "keys" / "files-2019.key").write_text(secrets.token_hex(32))
    (state.workdir / "static").mkdir()
    (state.workdir / "static" / "robots.txt").write_text(ROBOTS)
    now = int(time.time())
    month = now + 30 * 24 * 3600
    captured = {  # what a debug log kept of Authorization headers
        "GET /svc/archive/me": material.mint(
            material.claims("alice", "customer", iat=now - 4500, exp=now - 3600)
        ),
        "GET /svc/archive/admin": material.mint(
            material.claims("svc-export", "service", exp=None)  # a batch job's: never expires
        ),
        "GET /svc/search/me": material.mint(
            material.claims("alice", "customer", iss=SANDBOX_ISSUER, exp=month)
        ),
        "GET /svc/legacy/me": hs256_token(
            {"alg": "HS256", "typ": "JWT", "kid": LEGACY_KID},
            material.claims("bob", "customer", exp=month),
            material.legacy_secret,
        ),
    }
    store.executemany(
        "INSERT INTO token_log (line) VALUES (?)",
        [(f'127.0.0.1 "{action}" authorization="Bearer {t}"',) for action, t in captured.items()],
    )


HOOKS = (
    Hook(
        "validate_token",
        ("token",),
        "validate_token(token) -> the token's claims (a dict with 'sub'), or None to refuse",
        weak_validate_token,
    ),
)


def _shown(value: Any) -> str | None:
    """A claim as text: whatever the validator let through, of any type, size or depth."""
    if value is None:
        return None
    # reprlib bounds depth and length: a role nested 900 lists deep must not crash the route.
    return _printable(value if isinstance(value, str) else reprlib.repr(value))


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def create_app(state: LabState) -> FastAPI:
    store, material = state.store, load_material(state.store)
    app = FastAPI(title="Lesson 04 orders platform")

    def log_in(creds: Credentials, audience: str) -> dict[str, Any]:
        row = store.one("SELECT * FROM accounts WHERE username = ?", (creds.username,))
        digest = hashlib.sha256(creds.password.encode()).hexdigest()
        if row is None or not hmac.compare_digest(digest, row["password_sha256"]):
            store.audit(creds.username, "login", audience, "deny", "wrong username or password")
            raise HTTPException(401, "wrong username or password")
        token = material.mint(material.claims(row["username"], row["role"], aud=audience))
        store.add_secret(token)
        store.audit(row["username"], "login", audience, "allow", "RS256 access token issued")
        return {"access_token": token, "token_type": "Bearer", "expires_in": 15 * 60}

    @app.post("/login", summary="Log in: an RS256 access token for the orders API")
    def login(creds: Credentials) -> dict[str, Any]:
        return log_in(creds, AUDIENCE)

    @app.post("/billing/login", summary="Log in to billing: same issuer and key, aud 'billing'")
    def billing_login(creds: Credentials) -> dict[str, Any]:
        return log_in(creds, BILLING_AUDIENCE)

    @app.get("/.well-known/jwks.json", summary="The issuer's public keys (JWKS, RFC 7517)")
    def jwks() -> dict[str, Any]:
        store.execute("UPDATE jwks_fetches SET n = n + 1")
        return material.jwks()

    @app.get("/svc", summary="The services and what each is for")
    def services() -> dict[str, str]:
        return {name: story for name, (_, story) in SERVICES.items()}

    async def validated(service: str, request: Request, action: str) -> tuple[dict, str]:
        if service not in SERVICES:
            raise HTTPException(404, f"no service {service!r}; GET /svc lists them")
        token = bearer_token(request)
        if token is None:
            store.audit("anonymous", action, service, "deny", "no bearer token")
            raise HTTPException(401, "a bearer token is required", headers=challenge(REALM))
        jwks_url = f"{request.base_url}.well-known/jwks.json"
        CALLING.set(Calling(service, material, store, state.workdir, jwks_url))
        try:
            claims = await state.call("validate_token", token)
        except (HookFailed, HookTimeout) as exc:
            store.audit("?", action, service, "error", str(exc))
            raise
        if claims is not None and not isinstance(claims, dict):
            problem = f"must return the claims dict or None, not {claims!r:.40}"
            raise state.guard.bad_result("validate_token", problem)
        if not claims or not isinstance(claims.get("sub"), str) or not claims["sub"]:
            why = "validate_token refused it" if claims is None else "claims without a sub"
            store.audit("?", action, service, "deny", why)
            headers = challenge(REALM, invalid_token=True)
            raise HTTPException(401, "invalid or expired token", headers=headers)
        return claims, token

    def answer(service: str, claims: dict, token: str, action: str, admin: bool) -> dict:
        flaw = SERVICES[service][0]
        forged = classify(token, material)
        note = f" (forged: {forged})" if forged else ""
        role = _shown(claims.get("role"))
        store.audit(claims["sub"], action, service, "allow", f"role {role}{note}")
        body = {"service": service, "sub": _printable(claims["sub"]), "role": role}
        if forged == flaw and (admin or flaw in ACCEPTED_IS_ENOUGH):
            body["flag"] = state.flag(flaw)
        return body

    @app.get("/svc/{service}/me", summary="Who the service thinks you are (any valid token)")
    async def me(service: str, request: Request) -> dict[str, Any]:
        action = f"GET /svc/{service}/me"
        claims, token = await validated(service, request, action)
        return answer(service, claims, token, action, admin=False)

    @app.get("/svc/{service}/admin", summary="The service's admin report (role admin only)")
    async def admin(service: str, request: Request) -> dict[str, Any]:
        action = f"GET /svc/{service}/admin"
        claims, token = await validated(service, request, action)
        if claims.get("role") != "admin":
            role = _shown(claims.get("role"))
            store.audit(claims["sub"], action, service, "deny", f"role {role!r}")
            raise HTTPException(403, "the admin report needs role admin")
        body = answer(service, claims, token, action, admin=True)
        row = store.one(
            "SELECT open_incidents, revenue_change_pct, busiest_customer FROM admin_reports "
            "WHERE service = ?",
            (service,),
        )
        return {**body, "report": dict(row) if row is not None else {}}

    @app.get("/ops/token-log", summary="Debug log of Authorization headers (left open)")
    def token_log() -> list[str]:
        return [row["line"] for row in store.query("SELECT line FROM token_log ORDER BY id")]

    @app.get("/robots.txt", summary="robots.txt (a file in the lab's static folder)")
    def robots() -> PlainTextResponse:
        return PlainTextResponse((state.workdir / "static" / "robots.txt").read_text())

    return app
