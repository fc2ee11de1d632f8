"""Lesson 03: passwords and login. A shop's login that is weak in four ways at once.

It stores one fast, unsalted SHA-1 per password (and a careless backup leaks them), tells an
unknown user from a wrong password, never throttles its old ``/v1/login``, and counts failed
logins per ``X-Forwarded-For``, a header the client writes. The defense is argon2id with
OWASP's parameters, upgrade on login, one uniform failure, and a per-account throttle
(OWASP Password Storage and Authentication cheat sheets; ASVS 5 V6 and 11.4.2; OWASP API
Security Top 10 2023: API2 Broken Authentication, API9 Improper Inventory Management).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import re
import secrets
import sqlite3
import time
from inspect import signature
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import Hook, LabState
from labapp.lessons.common import bearer_token, challenge, load_wordlist
from labapp.lessons.l03_passwords.attempts import LIMIT, WINDOW, Attempts
from labapp.lessons.l03_passwords.attempts import SCHEMA as ATTEMPTS_SCHEMA

REALM = "shop"
BACKUP_DATE = "2024-01-15"
HIDDEN = "ops-oncall"
# username, role, created; passwords are drawn at every lab start. frank, grace and the
# shared staff account HIDDEN joined after the backup, so they are not in the dump.
ACCOUNTS = (
    ("henry", "customer", "2016-05-23"), ("dave", "customer", "2019-08-11"),
    ("alice", "customer", "2021-03-04"), ("bob", "customer", "2022-07-19"),
    ("erin", "customer", "2023-02-14"), ("frank", "customer", "2024-04-08"),
    ("grace", "customer", "2024-06-30"), (HIDDEN, "operator", "2024-09-02"),
)  # fmt: skip
LEGITIMATE = ("alice", "bob", "henry")  # lab.users: the only passwords a learner is given
# Usernames an attacker might try; exactly one of them (HIDDEN) exists in the lab.
CANDIDATES = (
    "admin", "administrator", "root", "test", "testuser", "guest", "demo", "support",
    "helpdesk", "info", "contact", "webmaster", "postmaster", "sysadmin", "devops", "ops",
    "operations", "oncall", "sre", "noc", "deploy", "backup", HIDDEN, "jenkins", "ci",
    "monitoring", "grafana", "billing", "finance", "payroll", "sales", "marketing", "hr",
    "security", "audit", "it", "staging", "service", "api", "shop",
)  # fmt: skip
SCHEMA = """
CREATE TABLE accounts (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
                       role TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE sessions (token TEXT PRIMARY KEY, username TEXT NOT NULL);
"""


# -- the hooks, weak by default ------------------------------------------------------------


def weak_hash_password(password: str) -> str:
    """What the server stores for a password.

    WEAK on purpose: one fast, unsalted SHA-1. Invites cracking a leaked dump offline.
    """
    return "sha1$" + hashlib.sha1(password.encode()).hexdigest()  # noqa: S324 - the lesson's flaw


def weak_verify_password(stored_hash: str | None, password: str) -> bool:
    """True only for the right password (and nothing but True or False); ``stored_hash`` is
    None for an unknown username.

    WEAK on purpose: an unknown user fails at once, faster than a wrong password does.
    Invites user enumeration by timing.
    """
    if stored_hash is None:
        return False
    return stored_hash == weak_hash_password(password)


def weak_needs_rehash(stored_hash: str) -> bool:
    """After a successful login, True makes the server store ``hash_password(password)``
    (True or False, nothing else).

    WEAK on purpose: never upgrades, so old fast hashes stay in the database for good.
    """
    return False


def weak_failure_response(reason: str) -> tuple[int, str]:
    """(4xx status, detail) for 'unknown-user', 'wrong-password' or 'throttled'.

    WEAK on purpose: says which half was wrong. Invites user enumeration.
    """
    if reason == "unknown-user":
        return 404, "no such user"
    if reason == "wrong-password":
        return 401, "wrong password"
    return 429, "too many failed logins; try again later"


def weak_throttle_key(username: str, headers: dict[str, str], route: str) -> str | None:
    """What failed logins are counted under (10 in 15 minutes mean 429); None: not counted.

    ``headers`` has lower-case names; ``route`` is '/login' or '/v1/login'. WEAK on purpose:
    counts per claimed client address (X-Forwarded-For, which the client writes), and not at
    all on the old /v1/login. Invites online brute force and the throttle bypass.
    """
    if route == "/v1/login":
        return None  # "only the 2019 mobile app still calls v1"
    return headers.get("x-forwarded-for", "unknown")


DECISIONS = ("verify_password", "needs_rehash")  # allow/deny: a bool, never "something truthy"


def _hook(weak: Any) -> Hook:
    name = weak.__name__.removeprefix("weak_")
    params = tuple(signature(weak).parameters)
    return Hook(name, params, weak.__doc__ or "", weak, bool if name in DECISIONS else None)


HOOKS = tuple(
    _hook(weak)
    for weak in (
        weak_hash_password, weak_verify_password, weak_needs_rehash, weak_failure_response,
        weak_throttle_key,
    )
)  # fmt: skip


# -- seed data -----------------------------------------------------------------------------


def seed(state: LabState) -> None:
    words = load_wordlist()

    def pick(low: int, high: int, taken: dict[str, str]) -> str:
        """A wordlist password with letters and digits (never a word the audit log uses)."""
        return secrets.choice(
            [w for w in words[low:high] if len(w) >= 8 and w not in taken.values()
             and re.search(r"\d", w) and re.search("[a-z]", w) and "pass" not in w]
        )  # fmt: skip

    passwords = {name: secrets.token_urlsafe(12) for name in (*LEGITIMATE, HIDDEN)}
    passwords["frank"] = pick(100, 300, passwords)  # far enough down the list to need a loop
    passwords["grace"] = pick(40, 200, passwords)  # past the 10th guess: the limit must bite
    passwords["dave"] = pick(0, len(words), passwords)
    passwords["erin"] = pick(0, len(words), passwords)
    state.store.add_secret(*passwords.values())
    state.store.executescript(SCHEMA + ATTEMPTS_SCHEMA)
    rows = [(u, weak_hash_password(passwords[u]), role, made) for u, role, made in ACCOUNTS]
    state.store.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?)", rows)
    # A nightly export someone once put on the web server "just for a minute".
    lines = ["username,password_hash"] + [f"{u},{h}" for u, h, _, d in rows if d < BACKUP_DATE]
    (state.workdir / "accounts-backup.csv").write_text("\n".join(lines) + "\n")
    role = {name: role for name, role, _ in ACCOUNTS}
    state.users += [{"username": u, "password": passwords[u], "role": role[u]} for u in LEGITIMATE]


# -- the app -------------------------------------------------------------------------------


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class NewAccount(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{2,31}$")
    password: str = Field(min_length=8, max_length=1024)  # ASVS 5 6.2.1 and 6.2.9


def create_app(state: LabState) -> FastAPI:
    store = state.store
    app = FastAPI(title="Lesson 03 shop login")

    # argon2 is slow and memory-hard on purpose: thirty logins at once would each get a
    # sliver of two cores (and miss the hooks' deadline on a busy machine). A server bounds
    # its password checks to its cores and queues the rest; the queue is not the hook's time.
    argon2_slots = asyncio.Semaphore(2)

    async def slow(hook: str, *args: Any) -> Any:
        async with argon2_slots:
            return await state.call(hook, *args)

    async def hashed(password: str) -> str:
        stored = await slow("hash_password", password)
        if not isinstance(stored, str) or not stored:
            raise state.guard.bad_result("hash_password", f"must return a str, not {stored!r:.40}")
        return stored

    async def failure(reason: str) -> tuple[int, str]:
        answer = await state.call("failure_response", reason)
        status, detail = answer if isinstance(answer, tuple) and len(answer) == 2 else (0, 0)
        if not (isinstance(status, int) and 400 <= status < 500 and isinstance(detail, str)):
            problem = f"must return (4xx status, str), not {answer!r:.40}"
            raise state.guard.bad_result("failure_response", problem)
        return status, detail

    attempts = Attempts(store)

    def earned(route: str, username: str) -> str | None:
        """The flag a login earns, from the true account data: only victims' logins earn one."""
        if username == "grace" and route != "/login":
            return None  # the bypass is of /login's limit
        if username in ("grace", "frank"):  # online guessing: only past the limit counts
            failed = store.query(
                "SELECT id FROM login_attempts WHERE username = ? AND outcome = 'failure' "
                "AND at > ? AND (? = 'frank' OR route = '/login')",
                (username, time.time() - WINDOW, username),
            )
            if len(failed) < LIMIT:
                return None  # e.g. frank's hash cracked from lab.store: not this exercise
            return "throttle-bypass" if username == "grace" else "brute-force"
        return {"dave": "crack-dump", "erin": "crack-dump"}.get(username)

    async def login(route: str, creds: Credentials, request: Request) -> JSONResponse:
        """Both login routes share this: one policy, whatever the hooks say."""
        username, action, resource = creds.username, f"POST {route}", f"account {creds.username}"
        headers = {name.lower(): value for name, value in request.headers.items()}
        attempt = None
        try:
            key = await state.call("throttle_key", username, headers, route)
            key = None if key is None else str(key)
            attempt = attempts.begin(route, username, key)  # counted before the slow check
            if attempt is None:
                assert key is not None  # only a counted key runs out
                counted, retry = attempts.refuse(route, username, key)
                why = f"throttled: {counted} failures under key {key!r}; retry in {retry} s"
                store.audit(username, action, resource, "deny", why)
                status, detail = await failure("throttled")
                return JSONResponse({"detail": detail}, status, {"Retry-After": str(retry)})
            row = store.one("SELECT password_hash FROM accounts WHERE username = ?", (username,))
            stored = row["password_hash"] if row else None
            ok = await slow("verify_password", stored, creds.password)  # a bool
            if row is None or not ok:
                reason = "unknown-user" if row is None else "wrong-password"
                attempts.finish(attempt, "failure")
                n = attempt.slot
                tally = f"{n}/{LIMIT} under key {key!r}" if key is not None else "not counted"
                store.audit(username, action, resource, "deny", f"{reason} ({tally})")
                if n == LIMIT:
                    why = f"{LIMIT} failures in {WINDOW // 60} min: 429 for logins under it"
                    store.audit(username, "lockout", f"throttle key {key}", "deny", why)
                status, detail = await failure(reason)
                body: dict[str, Any] = {"detail": detail}
                if (username, reason) == (HIDDEN, "wrong-password") and (
                    (status, detail) != await failure("unknown-user")  # it told them apart
                ):
                    body["support_ref"] = state.flag("enumerate-users")
                return JSONResponse(body, status)
            upgraded = await state.call("needs_rehash", stored)  # a bool
            if upgraded:  # e.g. a legacy hash: replace it now, while we know the password
                new = (await hashed(creds.password), username)
                store.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", new)
            attempts.finish(attempt, "success")
            token = secrets.token_urlsafe(24)
            store.add_secret(token)
            store.execute("INSERT INTO sessions VALUES (?, ?)", (token, username))
            why = "password verified" + ("; stored hash upgraded" if upgraded else "")
            store.audit(username, action, resource, "allow", why)
            answer: dict[str, Any] = {"username": username, "token": token}
            flag = earned(route, username)
            if flag:
                answer["flag"] = state.flag(flag)
            return JSONResponse(answer)
        except (HookFailed, HookTimeout) as exc:
            if attempt is not None:  # a check that crashed still used up a guess
                attempts.finish(attempt, "error")
            store.audit(username, action, resource, "error", str(exc))
            raise

    @app.post("/login", summary="Log in: a bearer token for the right password")
    async def login_now(creds: Credentials, request: Request) -> JSONResponse:
        return await login("/login", creds, request)

    @app.post("/v1/login", summary="Log in (API v1, kept for the 2019 mobile app)")
    async def login_v1(creds: Credentials, request: Request) -> JSONResponse:
        return await login("/v1/login", creds, request)

    @app.post("/register", status_code=201, summary="Create a customer account")
    async def register(new: NewAccount) -> dict[str, str]:
        store.add_secret(new.password)
        row = (new.username, await hashed(new.password), datetime.date.today().isoformat())
        try:
            store.execute("INSERT INTO accounts VALUES (?, ?, 'customer', ?)", row)
        except sqlite3.IntegrityError:
            raise HTTPException(409, "that username is taken") from None
        store.audit(new.username, "POST /register", f"account {new.username}", "allow", "created")
        return {"username": new.username}

    @app.get("/me", summary="The signed-in user")
    def me(request: Request) -> dict[str, Any]:
        token = bearer_token(request)
        row = token and store.one(
            "SELECT a.username, a.role, a.created FROM sessions s JOIN accounts a "
            "ON a.username = s.username WHERE s.token = ?",
            (token,),
        )
        if not row:
            headers = challenge(REALM, invalid_token=token is not None)
            raise HTTPException(401, "authentication required", headers=headers)
        return row

    @app.get("/backup/accounts.csv", summary=f"Account export of {BACKUP_DATE}")
    def backup() -> PlainTextResponse:
        """Left here after a migration; nobody remembers who needs it."""
        csv_text = (state.workdir / "accounts-backup.csv").read_text()
        return PlainTextResponse(csv_text, media_type="text/csv")

    return app
