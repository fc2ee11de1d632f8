"""The notes API's data: one SQLite file per served build, seeded the same way every time.

Every build (the sound API and each mutant) gets its own file, so a test that edits a note
on one build cannot change what another build answers; the seed is deterministic, so the
same ids, users and passwords hold on every build.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from labapp.engine.store import Store

ISSUER = "https://notes.lab"
AUDIENCE = "notes-api"
ALGORITHM = "HS256"
ACCESS_SECONDS = 300
ALL_SCOPES = "notes:read notes:write"
ALLOWED_ORIGIN = "https://notes.example"  # the API's own web front end

SCHEMA = """
CREATE TABLE accounts (
    username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, active INTEGER NOT NULL
);
CREATE TABLE notes (
    id INTEGER PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE refresh (
    hash TEXT PRIMARY KEY, username TEXT NOT NULL, family TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0
);
"""

# (username, role, password). dave's account was deleted after his token was issued.
PEOPLE = (
    ("alice", "customer", "correct horse battery"),
    ("bob", "customer", "hunter2-but-longer"),
    ("carol", "admin", "admin-carol-passphrase"),
    ("sam", "support", "support-sam-passphrase"),
    ("dave", "customer", "dave-was-here-once"),
)
DELETED = "dave"
NOTES = (
    ("alice", "Groceries", "eggs, flour, coffee"),
    ("alice", "Draft", "a letter I have not sent"),
    ("bob", "Passwords", "do not keep passwords in notes"),
    ("carol", "Admin runbook", "rotate the signing key quarterly"),
    ("sam", "Ticket 4411", "customer asked about exports"),
    ("dave", "Old note", "left behind by a deleted account"),
)


def password_hash(password: str) -> str:
    # A fast hash on purpose: eighteen builds answer thousands of logins while a suite is
    # graded. Lesson 03 teaches what a real one uses (argon2id); this lab is about tests.
    return hashlib.sha256(b"notes-lab:" + password.encode("utf-8", "surrogatepass")).hexdigest()


def password_matches(stored: str, password: str) -> bool:
    return hmac.compare_digest(stored, password_hash(password))


def seed_store(store: Store) -> None:
    """A build's data: this lab's people (in the store's users table), notes, refresh tokens."""
    store.executescript(SCHEMA)
    reset_store(store)


def reset_store(store: Store) -> None:
    """Back to the seed: every grading run starts from the same data on every build."""
    for table in ("users", "accounts", "notes", "refresh"):
        store.execute(f"DELETE FROM {table}")
    for number, (name, role, password) in enumerate(PEOPLE, start=1):
        store.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?)", (number, name, name.capitalize(), role)
        )
        active = 0 if name == DELETED else 1
        store.execute(
            "INSERT INTO accounts VALUES (?, ?, ?)", (name, password_hash(password), active)
        )
    store.executemany("INSERT INTO notes (owner, title, body) VALUES (?, ?, ?)", NOTES)


def first_note_ids(store: Store) -> dict[str, int]:
    rows = store.query("SELECT owner, MIN(id) AS id FROM notes GROUP BY owner")
    return {row["owner"]: row["id"] for row in rows}


def claims_for(username: str, **changes: Any) -> dict[str, Any]:
    """An access token's claims; the role is not among them: the API reads it per request."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": username,
        "scope": ALL_SCOPES,
        "iat": now,
        "exp": now + ACCESS_SECONDS,
        "jti": secrets.token_hex(8),
    }
    claims.update(changes)
    return claims
