"""Lesson 05: short trust, not permanent trust. Refresh-token rotation and revocation.

Login returns a short-lived access JWT (RFC 9068, ``typ: at+jwt``) and a refresh token whose
state lives in the lab's SQLite. The weak hooks never consume a refresh token, never notice
its reuse, mint it as a JWT with the access tokens' key, forget the access token at logout
and look before they leap. The defense follows RFC 9700 §4.14 (refresh token protection,
§4.14.2 rotation with reuse detection), RFC 8725 §3.11–3.12 (explicit typing, mutually
exclusive validation), RFC 9068 §4 (``typ``), OWASP API2:2023 and ASVS 5.0 (V10.4.5 rotation
and reuse, V10.4.8 absolute lifetime, V7.4.1 session termination, V9.2.2 token type).

``/login`` and ``/refresh`` are the notes app's own JSON routes, not an OAuth token endpoint:
the OAuth documents are cited for their refresh-token rules, which hold for any refresh token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import LabState
from labapp.lessons.common import bearer_token, challenge
from labapp.lessons.l05_refresh.ledger import Ledger
from labapp.lessons.l05_refresh.tokens import (
    AUDIENCE,
    CLAIMED,
    CLIENT_ID,
    ISSUER,
    RECORD_FIELDS,
    SCHEMA,
    TokenStore,
    new_signing_key,
)

REALM = "notes"
VICTIM = "bob"
# A refresh token is 1*VSCHAR, printable ASCII (RFC 6749 §A.17): anything else is refused
# with a 422 before any hook sees it, so no hook has to survive a lone surrogate or a NUL.
VSCHAR = r"^[\x20-\x7e]+$"
TOKEN_CHARS = 4096
RefreshToken = Annotated[str, Field(min_length=1, max_length=TOKEN_CHARS, pattern=VSCHAR)]
LONGEST_LIFETIME = 10 * 365 * 24 * 3600  # past this, an access_lifetime() is a mistake


def seed(state: LabState) -> None:
    store = state.store
    store.executescript(SCHEMA)
    new_signing_key(store)
    passwords = {name: secrets.token_urlsafe(12) for name in ("alice", VICTIM)}
    store.executemany(
        "INSERT INTO accounts VALUES (?, ?)",
        [(u, hashlib.sha256(p.encode()).hexdigest()) for u, p in passwords.items()],
    )
    store.add_secret(*passwords.values())
    store.execute("INSERT INTO app_log (line) VALUES (?)", (_log("app started, signed out"),))
    state.users.append({"username": "alice", "password": passwords["alice"]})
    state.workdir.joinpath("victim.json").write_text(json.dumps({"password": passwords[VICTIM]}))


def _log(message: str) -> str:
    return f"{time.strftime('%H:%M:%S')} bob-notes-app DEBUG {message}"


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Refresh(BaseModel):
    refresh_token: RefreshToken


class Logout(BaseModel):
    refresh_token: RefreshToken | None = None


def _session(claims: dict[str, Any]) -> str:
    """The audit log's name for the session an access token belongs to."""
    return f"family {str(claims.get('sid', '?'))[:8]}"


def _token_problem(token: str) -> str | None:
    """Why a token from issue_refresh() could never come back to POST /refresh, if it could not."""
    if not token or len(token) > TOKEN_CHARS or not all(" " <= c <= "~" for c in token):
        return (
            f"must return 1 to {TOKEN_CHARS} printable ASCII characters (RFC 6749 §A.17), "
            "for instance secrets.token_urlsafe(32)"
        )
    return None


def _lifetime_problem(lifetime: object) -> str | None:
    # bool is an int, and 10**400 overflows a float: the type first, then the size.
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
        return f"must return seconds (a number), not {lifetime!r:.40}"
    if not (0 < lifetime <= LONGEST_LIFETIME) or not math.isfinite(lifetime):
        return f"must return a positive, finite number of seconds, not {lifetime!r:.40}"
    return None


def _record_problem(record: object) -> str | None:
    if record is None:
        return None
    if not isinstance(record, dict) or not set(record) >= RECORD_FIELDS:
        return f"must return a record from tokens.find(), or None; not {record!r:.40}"
    if not isinstance(record["username"], str) or not isinstance(record["family"], str):
        return "must return the record tokens.find() gave, unchanged"
    return None


def create_app(state: LabState) -> FastAPI:
    store, tokens, ledger = state.store, TokenStore(state.store), Ledger()
    app = FastAPI(title="Lesson 05 notes API")
    app.state.ledger = ledger  # the battery reads what really happened from here
    app.state.tokens = tokens  # and times its race with it (TokenStore.racing)
    victim: dict[str, Any] = {"refresh": None}

    def _family_of(presented: str) -> tuple[str, str, str]:
        """Who, what and which family a refresh request is about, for the audit log."""
        family = ledger.family_of(presented)
        row = store.one("SELECT username FROM families WHERE id = ?", (family,))
        if row is None:
            return "?", "refresh", "unknown token"
        return row["username"], "refresh", f"family {family[:8]}"

    async def issue(username: str, family: str) -> dict[str, Any]:
        refresh = await state.call("issue_refresh", username, family, tokens)  # a str (Hook)
        problem = _token_problem(refresh)
        if problem:
            raise state.guard.bad_result("issue_refresh", problem)
        lifetime = await state.call("access_lifetime")
        problem = _lifetime_problem(lifetime)
        if problem:
            raise state.guard.bad_result("access_lifetime", problem)
        # Whole seconds, rounded up: a token of 900.5 s lives 901, never passes for 900.
        iat, lasts = int(time.time()), math.ceil(lifetime)
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": username, "client_id": CLIENT_ID}
        claims.update(iat=iat, exp=iat + lasts, jti=secrets.token_hex(8))
        access = tokens.mint({**claims, "sid": family}, typ="at+jwt")
        store.add_secret(refresh, access)
        ledger.issued(refresh, access, family, time.monotonic())
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lasts,
            "refresh_token": refresh,
        }

    async def log_in(creds: Credentials) -> dict[str, Any]:
        row = store.one("SELECT * FROM accounts WHERE username = ?", (creds.username,))
        hashed = hashlib.sha256(creds.password.encode()).hexdigest()
        if row is None or not hmac.compare_digest(hashed, row["password_sha256"]):
            store.audit(creds.username, "login", "session", "deny", "wrong username or password")
            raise HTTPException(401, "wrong username or password")
        family = secrets.token_hex(8)
        store.execute(
            "INSERT INTO families VALUES (?, ?, ?, 0)", (family, row["username"], time.time())
        )
        answer = await issue(row["username"], family)
        store.audit(row["username"], "login", f"family {family[:8]}", "allow", "tokens issued")
        return answer

    async def refresh(
        presented: str, *, by_victim: bool = False
    ) -> tuple[dict[str, Any], str | None]:
        start = time.monotonic()
        reuse = ledger.arrive(presented)
        claimed: set[str] = set()
        CLAIMED.set(claimed)  # tokens.claim() records its wins here (see tokens.CLAIMED)
        try:
            record = await state.call("rotate", presented, tokens)
            problem = _record_problem(record)
            if problem:
                raise state.guard.bad_result("rotate", problem)
            if record is None:
                # The server knows which family every token it issued belongs to (RFC 9700
                # §4.14.2: "information about the relationship is retained"), so a refusal is
                # audited against that family; a token it never issued has none.
                store.audit(*_family_of(presented), "deny", "refresh token refused")
                raise HTTPException(
                    401, "invalid refresh token", headers=challenge(REALM, invalid_token=True)
                )
            answer = await issue(record["username"], record["family"])
        except (HookFailed, HookTimeout) as exc:
            store.audit(*_family_of(presented), "error", str(exc))
            raise
        finally:
            ledger.leave(presented, start, time.monotonic(), reuse=reuse, victim=by_victim)
        won = record["hash"] in claimed
        attack = ledger.exchanged(presented, start, time.monotonic(), claimed=won)
        family = f"family {record['family'][:8]}"
        store.audit(record["username"], "refresh", family, "allow", "rotated")
        return answer, attack

    async def current_claims(request: Request, action: str) -> tuple[dict[str, Any], str]:
        token = bearer_token(request)
        if token is None:
            store.audit("anonymous", action, "api", "deny", "no bearer token")
            raise HTTPException(401, "a bearer token is required", headers=challenge(REALM))
        try:
            claims = await state.call("validate_access", token, tokens)
        except (HookFailed, HookTimeout) as exc:
            store.audit("?", action, "api", "error", str(exc))
            raise
        if claims is not None and not isinstance(claims, dict):
            problem = f"must return the claims dict or None, not {claims!r:.40}"
            raise state.guard.bad_result("validate_access", problem)
        if not claims or not isinstance(claims.get("sub"), str):
            store.audit("?", action, "api", "deny", "validate_access refused it")
            headers = challenge(REALM, invalid_token=True)
            raise HTTPException(401, "invalid or expired access token", headers=headers)
        return claims, token

    @app.post("/login", summary="Log in: a short-lived access JWT and a refresh token")
    async def login(creds: Credentials) -> dict[str, Any]:
        return await log_in(creds)

    @app.post("/refresh", summary="Exchange a refresh token for new tokens (rotation)")
    async def refresh_route(body: Refresh) -> dict[str, Any]:
        answer, attack = await refresh(body.refresh_token)
        return {**answer, "flag": state.flag(attack)} if attack else answer

    @app.post("/logout", summary="Log out: end this session (bearer access token)")
    async def logout(request: Request, body: Logout | None = None) -> dict[str, str]:
        claims, _ = await current_claims(request, "POST /logout")
        begun = time.monotonic()
        refresh_token = body.refresh_token if body is not None else None
        try:
            await state.call("logout", claims, refresh_token, tokens)
        except (HookFailed, HookTimeout) as exc:
            store.audit(claims["sub"], "logout", _session(claims), "error", str(exc))
            raise
        ledger.logged_out(str(claims.get("sid")), begun, time.monotonic())
        store.audit(claims["sub"], "logout", _session(claims), "allow", "logged out")
        return {"logged_out": claims["sub"]}

    @app.get("/api/me", summary="Who you are (any valid access token)")
    async def me(request: Request) -> dict[str, Any]:
        start = time.monotonic()
        claims, token = await current_claims(request, "GET /api/me")
        attack = ledger.accepted(token, start)
        store.audit(claims["sub"], "GET /api/me", "api", "allow", attack or "access token")
        body = {"user": claims["sub"], "session": str(claims.get("sid", ""))[:8]}
        return {**body, "flag": state.flag(attack)} if attack else body

    async def victim_refreshes() -> str:
        """bob's app: refresh with the token it holds; if refused, bob signs in again."""
        outcome = "refreshed"
        try:
            if victim["refresh"] is None:
                raise HTTPException(401)
            answer, _ = await refresh(victim["refresh"], by_victim=True)
        except HTTPException:
            password = json.loads(state.workdir.joinpath("victim.json").read_text())["password"]
            answer = await log_in(Credentials(username=VICTIM, password=password))
            outcome = "refresh refused: bob signed in again" if victim["refresh"] else "signed in"
        victim["refresh"] = answer["refresh_token"]
        persisted = json.dumps({"user": VICTIM, "refresh_token": answer["refresh_token"]})
        store.execute(
            "INSERT INTO app_log (line) VALUES (?)", (_log(f"{outcome}; persisted {persisted}"),)
        )
        return outcome

    @app.get("/debug/app-log", summary="bob's app debug log (synced to a public bucket)")
    async def app_log() -> list[str]:
        if victim["refresh"] is None:  # bob opens the app: it signs in
            await victim_refreshes()
        return [row["line"] for row in store.query("SELECT line FROM app_log ORDER BY id")]

    @app.post("/simulate/victim-refresh", summary="bob's app refreshes its tokens now")
    async def victim_refresh() -> dict[str, str]:
        return {"victim": VICTIM, "outcome": await victim_refreshes()}

    return app
