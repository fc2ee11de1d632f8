"""Lesson 02: API keys. A partner API that issues, stores and checks keys badly.

An API key identifies an *application* (a partner's integration), not a person. The weak
hooks accept keys in the URL, keep them in plaintext, mint guessable ones, compare them
with an early-exit loop and ignore their scopes and revocation. The defense follows the
OWASP API Security Top 10 2023 (API2 Broken Authentication, API5 for scopes) and the
shape GitHub uses for its tokens: prefix, 128+ random bits, checksum; stored as a hash.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import Hook, LabState
from labapp.lessons.common import identify, issue_session_tokens

# A compare that takes this long per matching character: exaggerated, so that the leak is
# measurable over loopback in seconds. Real leaks are nanoseconds and need many samples.
DELAY_PER_CHAR = 0.003
KEY_FORMAT = "ak_<8 hex key id>_<32 hex secret>_<8 hex crc32 of everything before it>"


@dataclass
class KeyRequest:
    """What ``extract_key`` sees: the request's headers and query parameters (lower-case)."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]


class KeyStore:
    """What ``find_key`` may search: the keys table, by key id or whole."""

    def __init__(self, state: LabState) -> None:
        self._store = state.store

    def by_id(self, key_id: str) -> dict[str, Any] | None:
        return _record(self._store.one("SELECT * FROM api_keys WHERE key_id = ?", (key_id,)))

    def all(self) -> list[dict[str, Any]]:
        return [_record(row) for row in self._store.query("SELECT * FROM api_keys ORDER BY rowid")]


def _record(row: dict[str, Any] | None) -> Any:
    if row is None:
        return None
    return {**row, "scopes": row["scopes"].split(), "revoked": bool(row["revoked"])}


# -- the weak defaults: each says which attack it invites -----------------------------------


def weak_extract_key(req: KeyRequest) -> str | None:
    """WEAK: takes the key from the URL too, where proxies and logs keep it (key-in-url)."""
    return req.query.get("api_key") or req.headers.get("x-api-key")


_sequence = [20000]  # above the seeded pk_ keys, so the lab's own keys never collide


def weak_mint_key() -> str:
    """WEAK: short and sequential, so neighbours are one guess away (guessable-key)."""
    _sequence[0] += 1
    return f"pk_{_sequence[0]}"


def weak_store_key(key: str) -> dict[str, str]:
    """WEAK: keeps the key itself at rest, so any copy of the table works (plaintext-at-rest)."""
    return {"key_id": key, "stored": key}


def weak_equals(presented: str, stored: str) -> bool:
    """WEAK: stops at the first wrong character, so time reveals the right ones (timing-leak)."""
    if len(presented) != len(stored):
        return False
    for a, b in zip(presented, stored, strict=True):
        if a != b:
            return False
        time.sleep(DELAY_PER_CHAR)  # "slow hardware": the exaggerated part
    return True


def weak_find_key(presented: str, keys: KeyStore) -> dict[str, Any] | None:
    """WEAK: compares against every stored key in the clear and ignores revocation."""
    for record in keys.all():
        if weak_equals(presented, record["stored"]):
            return record
    return None


def weak_allowed(record: dict[str, Any], method: str, route: str) -> bool:
    """WEAK: any valid key may do anything, whatever its scopes say (over-broad-key)."""
    return True


HOOKS = (
    Hook(
        "extract_key", ("req",), "extract_key(req) -> the presented key or None", weak_extract_key
    ),
    Hook("mint_key", (), "mint_key() -> a new key string", weak_mint_key),
    Hook(
        "store_key", ("key",), "store_key(key) -> {'key_id', 'stored'} kept at rest", weak_store_key
    ),
    Hook(
        "find_key",
        ("presented", "keys"),
        "find_key(presented, keys) -> record or None",
        weak_find_key,
    ),
    Hook(
        "allowed",
        ("record", "method", "route"),
        "allowed(record, method, route) -> bool",
        weak_allowed,
    ),
)

# -- the partners and their keys ------------------------------------------------------------

LEARNER = "initech"  # the learner's own integration: read-only, its key is shown in the card
READ, WRITE = "shipments:read", "shipments:write"


class NewKey(BaseModel):
    partner: str
    scopes: list[str] = [READ]


class NewShipment(BaseModel):
    destination: str


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
    store.executemany(
        "INSERT INTO shipments (partner, destination) VALUES (?, ?)",
        [(p, city) for p in legacy for city in ("Lyon", "Lagos", "Lima")],
    )
    # A careless proxy logged full URLs, query strings and all.
    gx = legacy["globex"][0]
    lines = [
        '198.51.100.4 "GET /shipments HTTP/1.1" 200',
        f'203.0.113.7 "GET /shipments?api_key={gx}&page=2 HTTP/1.1" 200',
        '198.51.100.4 "POST /shipments HTTP/1.1" 201',
        f'203.0.113.7 "GET /shipments?api_key={gx}&page=3 HTTP/1.1" 200',
    ]
    store.executemany("INSERT INTO access_log (line) VALUES (?)", [(line,) for line in lines])
    store.executemany(  # exported before globex, umbrella and wayne-iot joined
        "INSERT INTO keys_backup VALUES (?, ?, ?)",
        [(p, key, scopes) for p, (key, scopes, in_backup) in legacy.items() if in_backup],
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
RECORD_FIELDS = {"key_id", "partner", "stored", "scopes", "revoked"}


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
        store.execute(
            "INSERT INTO access_log (line) VALUES (?)",
            (
                f'127.0.0.1 "{request.method} {request.url.path}'
                f'{"?" + request.url.query if request.url.query else ""} HTTP/1.1"',
            ),
        )
        try:
            presented = await state.call("extract_key", req)
            if presented is not None and not isinstance(presented, str):
                raise state.guard.bad_result("extract_key", "must return a string or None")
            record = await state.call("find_key", presented, keys) if presented else None
            if record is not None and not (
                isinstance(record, dict) and set(record) >= RECORD_FIELDS
            ):
                raise state.guard.bad_result(
                    "find_key", f"must return a record from keys, or None; not {record!r:.40}"
                )
            if record is None:
                store.audit("unknown", action, req.path, "deny", "no valid API key")
                raise HTTPException(401, "a valid API key is required in the X-API-Key header")
            route = request.scope["route"].path
            verdict = await state.call("allowed", record, request.method, route)
            if verdict is not True:  # anything but True denies: fail closed
                reason = "scope does not allow"
                if verdict is not False:
                    reason = f"allowed() returned {verdict!r:.20}, not True"
                store.audit(record["partner"], action, req.path, "deny", reason)
                raise HTTPException(403, "this key's scopes do not allow that")
        except (HookFailed, HookTimeout) as exc:
            store.audit("?", action, req.path, "error", str(exc))
            raise
        store.audit(
            record["partner"],
            action,
            req.path,
            "allow",
            f"key id {record['key_id'][:8]}… scopes {' '.join(record['scopes'])}",
        )
        return record

    async def admin(request: Request) -> None:
        user = identify(state, request)
        if user is None or user["role"] != "admin":
            raise HTTPException(401 if user is None else 403, "an admin bearer token is required")

    app = FastAPI(title="Lesson 02 partner API")

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
    def cancel(shipment_id: int, record: dict[str, Any] = Depends(partner)) -> dict[str, Any]:
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
        if not isinstance(key, str) or not key:
            raise state.guard.bad_result(
                "mint_key", f"must return a non-empty str, not {key!r:.30}"
            )
        record = await state.call("store_key", key)
        if not (
            isinstance(record, dict)
            and isinstance(record.get("key_id"), str)
            and isinstance(record.get("stored"), str)
        ):
            raise state.guard.bad_result("store_key", "must return {'key_id': str, 'stored': str}")
        store.add_secret(key)
        try:
            store.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, 0)",
                (record["key_id"], new.partner, record["stored"], " ".join(new.scopes)),
            )
        except Exception as exc:  # a duplicate key id: the mint is not unique enough
            raise HTTPException(409, f"key id already exists: {exc}") from None
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
