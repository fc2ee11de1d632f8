"""What the learner's ``build_app(kit)`` gets from the lab: its data, its keys, its log.

The capstone's app is the learner's own FastAPI code; the lab keeps the state (a real SQLite
file with the seeded people, partners, documents and token tables), so a grade can reset it
and read what really happened. uvicorn runs labs with ``lifespan="off"``: everything the
app needs at start comes through the kit, not through startup handlers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

ISSUER, AUDIENCE = "https://docs.capstone.test", "documents-api"
# OWASP Password Storage Cheat Sheet's argon2id minimum (lesson 03): about 16 ms a hash here.
HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
PEOPLE = {"alice": "customer", "bob": "customer", "sam": "support", "ada": "admin"}
DOCUMENTS = (
    ("alice", "alice's plan", "support: late payer, handle gently"),
    ("alice", "alice's notes", ""),
    ("bob", "bob's draft", "support: asked for a refund twice"),
)
SCHEMA = """
CREATE TABLE users (username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
                    active INTEGER NOT NULL DEFAULT 1);
CREATE TABLE partners (name TEXT PRIMARY KEY, prefix TEXT UNIQUE NOT NULL,
                       key_hash TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE documents (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL,
                        body TEXT NOT NULL, internal_note TEXT NOT NULL DEFAULT '');
CREATE TABLE refresh_tokens (digest TEXT PRIMARY KEY, family TEXT NOT NULL,
                             username TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE revoked_families (family TEXT PRIMARY KEY);
CREATE TABLE revoked_jti (jti TEXT PRIMARY KEY);
"""


@dataclass
class Kit:
    """Handed to ``build_app(kit)``. Use ``kit.connect()`` for the data (one connection per
    request), ``kit.signing_key`` for tokens, ``kit.audit(kind, **fields)`` for events."""

    db_path: Path
    signing_key: bytes
    issuer: str = ISSUER
    audience: str = AUDIENCE
    events: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def connect(self) -> sqlite3.Connection:
        """A new connection to the lab's database, rows as ``sqlite3.Row``, autocommit.

        ``check_same_thread=False``: FastAPI may run a request's dependencies and route in
        different worker threads, one after another; never share one connection between
        requests.
        """
        db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        return db

    def audit(self, kind: str, **fields: Any) -> None:
        """Write one security event (lesson 10): a JSON line in the lab's log."""
        event = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "kind": kind}
        event.update(fields)
        line = json.dumps(event, default=str)
        with self._lock:
            self.events.append(json.loads(line))
            with self.db_path.with_name("audit.jsonl").open("a", encoding="utf-8") as out:
                out.write(line + "\n")


def reset(db_path: Path) -> None:
    """Put the documents back and forget every token: each grade starts from the seed
    (the people, their passwords and the partner's key stay)."""
    db = sqlite3.connect(db_path)
    with db:
        db.execute("DELETE FROM documents")
        db.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
            [(n, o, t, f"{t}, in full", note) for n, (o, t, note) in enumerate(DOCUMENTS, 1)],
        )
        for table in ("refresh_tokens", "revoked_families", "revoked_jti"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - the lab's own table names
        db.execute("UPDATE users SET active = 1")
    db.close()


def seed(db_path: Path) -> dict[str, str]:
    """Create and fill the lab's database; return the secrets a grader (and the card) needs."""
    db_path.unlink(missing_ok=True)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the one writer
    db.executescript(SCHEMA)
    known: dict[str, str] = {}
    for name, role in PEOPLE.items():
        known[name] = secrets.token_urlsafe(12)
        db.execute("INSERT INTO users VALUES (?, ?, ?, 1)", (name, role, HASHER.hash(known[name])))
    for number, (owner, title, note) in enumerate(DOCUMENTS, start=1):
        db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
            (number, owner, title, f"{title}, in full", note),
        )
    prefix = secrets.token_hex(4)
    key_text = f"{prefix}_{secrets.token_urlsafe(24)}"
    db.execute(
        "INSERT INTO partners VALUES (?, ?, ?, 0)",
        ("acme", prefix, hashlib.sha256(key_text.encode()).hexdigest()),
    )
    db.commit()
    db.close()
    return {**known, "partner_key": key_text}
