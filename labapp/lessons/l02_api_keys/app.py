"""Lesson 02: API keys. A partner API that issues, stores and checks keys badly.

An API key identifies an *application* (a partner's integration), not a person. The weak
hooks accept keys in the URL, keep them in plaintext, mint guessable ones, compare them
with an early-exit loop and ignore their scopes and revocation. The defense follows the
OWASP API Security Top 10 2023 (API2 Broken Authentication, API5 for scopes) and the
shape GitHub uses for its tokens: prefix, 128+ random bits, checksum; stored as a hash.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from pydantic import AfterValidator, BaseModel, Field

from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import LabState
from labapp.lessons.common import identify, issue_session_tokens
from labapp.lessons.l02_api_keys.keystore import KeyRequest, KeyStore, storable

# -- the partners and their keys ------------------------------------------------------------

LEARNER = "initech"  # the learner's own integration: read-only, its key is shown in the card
READ, WRITE = "shipments:read", "shipments:write"


def _text(value: str) -> str:
    if not storable(value):
        raise ValueError("must be valid Unicode text (no lone surrogates)")
    return value


# What clients send is bounded and storable: a 4xx for hostile input, never a 500.
Text = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_text)]
Scope = Literal["shipments:read", "shipments:write"]
INT64_MAX = 2**63 - 1  # what an SQLite INTEGER holds
CITIES = (
    "Lyon", "Lagos", "Lima", "Osaka", "Rotterdam", "Porto", "Denver", "Nairobi",
    "Hanoi", "Tallinn", "Quebec", "Valparaiso", "Gdansk", "Chennai",
)  # fmt: skip


class NewKey(BaseModel):
    partner: Text
    scopes: list[Scope] = Field(default=[READ], max_length=2)


class NewShipment(BaseModel):
    destination: Text


def seed(state: LabState) -> None:
    store = state.store
    store.executescript(
        "CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, partner TEXT NOT NULL, "
        "stored TEXT NOT NULL, scopes TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE shipments (id INTEGER PRIMARY KEY, partner TEXT, destination TEXT);"
        "CREATE TABLE access_log (id INTEGER PRIMARY KEY, line TEXT);"
        "CREATE TABLE keys_backup (partner TEXT, key TEXT, scopes TEXT);"
    )
    base = 1000 + secrets.randbelow(8000)
    legacy = {  # partner -> (key, scopes, in the leaked backup?)
        "acme": (f"acme-live-{secrets.token_hex(4)}", f"{READ} {WRITE}", True),
        "hooli": (f"hooli-live-{secrets.token_hex(4)}", READ, True),
        LEARNER: (f"pk_{base + 1}", READ, True),
        "umbrella": (f"pk_{base}", READ, False),  # minted just before the learner's
        "globex": (f"gx-live-{secrets.token_hex(4)}", READ, False),
        "wayne-iot": (f"iot-{secrets.token_hex(2)}", READ, False),  # 16 bits: a device PIN
    }
    for partner, (key, scopes, _) in legacy.items():
        store.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, 0)", (key, partner, key, scopes))
        store.add_secret(key)
    state.users.append({"partner": LEARNER, "api_key": legacy[LEARNER][0], "scopes": READ})
    draw = secrets.SystemRandom()
    store.executemany(
        "INSERT INTO shipments (partner, destination) VALUES (?, ?)",
        [(p, city) for p in legacy for city in draw.sample(CITIES, 2 + draw.randrange(3))],
    )
    # A careless proxy logged full URLs, query strings and all (Combined Log Format).
    gx = legacy["globex"][0]
    day = time.strftime("%d/%b/%Y", time.gmtime(time.time() - 86400))
    lines = [
        f'198.51.100.4 - - [{day}:09:12:03 +0000] "GET /shipments HTTP/1.1" 200 812 "-" '
        '"acme-shop/4.2 (+https://shop.acme.example)"',
        f'203.0.113.7 - - [{day}:09:12:41 +0000] "GET /shipments?api_key={gx}&page=2 HTTP/1.1" '
        '200 1024 "-" "python-requests/2.32.3"',
        f'198.51.100.4 - - [{day}:09:13:10 +0000] "POST /shipments HTTP/1.1" 201 18 "-" '
        '"acme-shop/4.2 (+https://shop.acme.example)"',
        f'192.0.2.44 - - [{day}:09:13:52 +0000] "GET /shipments HTTP/1.1" 200 655 "-" '
        '"hooli-sync/1.9.0"',
        f'203.0.113.7 - - [{day}:09:14:05 +0000] "GET /shipments?api_key={gx}&page=3 HTTP/1.1" '
        '200 977 "-" "python-requests/2.32.3"',
    ]
    store.executemany("INSERT INTO access_log (line) VALUES (?)", [(line,) for line in lines])
    store.executemany(  # exported before globex, umbrella and wayne-iot joined
        "INSERT INTO keys_backup VALUES (?, ?, ?)",
        [(p, key, scopes) for p, (key, scopes, in_backup) in legacy.items() if in_backup],
    )
    # The grader checks that every one of these old-format keys stops working.
    store.executescript("CREATE TABLE legacy_keys (partner TEXT, key TEXT);")
    store.executemany(
        "INSERT INTO legacy_keys VALUES (?, ?)", [(p, key) for p, (key, _, _) in legacy.items()]
    )
    # Only the victims' original keys earn flags, never a key minted later for them.
    store.executescript("CREATE TABLE victim_keys (key_id TEXT PRIMARY KEY, flag TEXT);")
    store.executemany(
        "INSERT INTO victim_keys VALUES (?, ?)",
        [(legacy[p][0], flag) for p, flag in VICTIM_FLAGS.items()],
    )
    issue_session_tokens(state, listed=False)  # carol (admin) mints keys; you are a partner


VICTIM_FLAGS = {
    "globex": "key-in-url",
    "hooli": "plaintext-at-rest",
    "umbrella": "guessable-key",
    "wayne-iot": "timing-leak",
}
FIELDS = ("key_id", "stored")  # what store_key returns


def _shown(value: object) -> str:
    """A hook's answer, short, for its failure message (even one whose repr() fails)."""
    try:
        text = repr(value)
    except Exception:
        text = f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def create_app(state: LabState) -> FastAPI:
    store, keys = state.store, KeyStore(state)

    async def partner(request: Request) -> dict[str, Any]:
        """Every partner call: extract the key, find its record, check its scopes."""
        req = KeyRequest(
            request.method,
            request.url.path,
            {k.lower(): v for k, v in request.headers.items()},
            dict(request.query_params),
        )
        action = f"{request.method} {request.scope['route'].path}"
        query = f"?{request.url.query}" if request.url.query else ""
        agent = request.headers.get("user-agent", "-").replace('"', "'")[:100]
        when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        store.execute(  # the status is not known yet: "-", as a proxy logging requests writes
            "INSERT INTO access_log (line) VALUES (?)",
            (
                f'127.0.0.1 - - [{when}] "{request.method} {request.url.path}{query} HTTP/1.1" '
                f'- - "-" "{agent}"',
            ),
        )
        try:
            presented = await state.call("extract_key", req)
            if presented is not None and not isinstance(presented, str):
                raise state.guard.bad_result("extract_key", "must return a string or None")
            record = await state.call("find_key", presented, keys) if presented else None
            if record is not None and not keys.gave(record):
                raise state.guard.bad_result(
                    "find_key",
                    "must return a record from keys, or None (as keys gives it now: not made "
                    f"up, edited or cached); not {_shown(record)}",
                )
            if record is None:
                store.audit("unknown", action, req.path, "deny", "no valid API key")
                raise HTTPException(401, "a valid API key is required in the X-API-Key header")
            route = request.scope["route"].path
            # returns=bool: anything but True or False is allowed()'s failure, a 500 naming it
            if not await state.call("allowed", record, request.method, route):
                store.audit(record["partner"], action, req.path, "deny", "scope does not allow")
                raise HTTPException(403, "this key's scopes do not allow that")
        except (HookFailed, HookTimeout) as exc:
            store.audit("?", action, req.path, "error", str(exc))
            raise
        store.audit(
            record["partner"],
            action,
            req.path,
            "allow",
            # The key's id, whole: public in the course's format. In the weak app the id IS
            # the key, so this line would log it (CWE-532); the lab's store redacts every key
            # it has issued, which is why the notebook shows "[redacted]" there.
            f"key id {record['key_id']} scopes {' '.join(record['scopes'])}",
        )
        return record

    async def admin(request: Request) -> None:
        user = identify(state, request)
        if user is None or user["role"] != "admin":
            raise HTTPException(401 if user is None else 403, "an admin bearer token is required")

    app = FastAPI(title="Lesson 02 partner API")
    app.state.keys = keys  # the grader counts its lookups

    def with_flag(record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        victim = store.one("SELECT flag FROM victim_keys WHERE key_id = ?", (record["key_id"],))
        return {**body, "flag": state.flag(victim["flag"])} if victim else body

    @app.get("/shipments", summary="Your shipments")
    def shipments(record: dict[str, Any] = Depends(partner)) -> dict[str, Any]:
        rows = store.query("SELECT * FROM shipments WHERE partner = ?", (record["partner"],))
        return with_flag(record, {"partner": record["partner"], "shipments": rows})

    def write_flag(record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if WRITE not in record["scopes"]:
            body["flag"] = state.flag("over-broad-key")
        return body

    @app.post("/shipments", status_code=201, summary="Book a shipment")
    def book(new: NewShipment, record: dict[str, Any] = Depends(partner)) -> dict[str, Any]:
        new_id = store.execute(
            "INSERT INTO shipments (partner, destination) VALUES (?, ?)",
            (record["partner"], new.destination),
        )
        return write_flag(record, {"id": new_id})

    @app.delete("/shipments/{shipment_id}", summary="Cancel a shipment")
    def cancel(
        shipment_id: Annotated[int, Path(ge=0, le=INT64_MAX)],
        record: dict[str, Any] = Depends(partner),
    ) -> dict[str, Any]:
        store.execute(
            "DELETE FROM shipments WHERE id = ? AND partner = ?", (shipment_id, record["partner"])
        )
        return write_flag(record, {"cancelled": shipment_id})

    @app.get("/ops/access-log", summary="Proxy access log (left open by mistake)")
    def access_log() -> list[str]:
        return [row["line"] for row in store.query("SELECT line FROM access_log ORDER BY id")]

    @app.get("/backup/keys.json", summary="Last quarter's backup of the keys table (leaked)")
    def backup() -> list[dict[str, Any]]:
        return store.query("SELECT * FROM keys_backup")

    @app.post(
        "/admin/keys",
        status_code=201,
        dependencies=[Depends(admin)],
        summary="Admin: mint a key for a partner",
    )
    async def mint(new: NewKey) -> dict[str, Any]:
        key = await state.call("mint_key")
        if not isinstance(key, str) or not key or not storable(key):
            raise state.guard.bad_result(
                "mint_key", f"must return a non-empty str of text, not {_shown(key)}"
            )
        record = await state.call("store_key", key)
        if not (
            isinstance(record, dict)
            and all(isinstance(record.get(f), str) and storable(record[f]) for f in FIELDS)
        ):
            raise state.guard.bad_result("store_key", "must return {'key_id': str, 'stored': str}")
        store.add_secret(key)
        try:
            store.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, 0)",
                (record["key_id"], new.partner, record["stored"], " ".join(new.scopes)),
            )
        except sqlite3.IntegrityError:  # a duplicate key id: the mint is not unique enough
            raise HTTPException(409, "key id already exists: mint again") from None
        store.audit("carol", "POST /admin/keys", new.partner, "allow", "key minted")
        return {"partner": new.partner, "key": key, "key_id": record["key_id"]}

    @app.post(
        "/admin/keys/{key_id}/revoke", dependencies=[Depends(admin)], summary="Admin: revoke a key"
    )
    def revoke(key_id: str) -> dict[str, str]:
        store.execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,))
        store.audit("carol", "POST /admin/keys/{key_id}/revoke", key_id[:12], "allow", "revoked")
        return {"revoked": key_id}

    return app
