"""Lesson 05's token plumbing: the signing key and the refresh-token table.

:class:`TokenStore` is what the learner's hooks get: the refresh-token table (one row per
token, grouped in families), an atomic single-use primitive, family revocation, and a
``jti`` denylist. The server's own record of what really happened is in ``ledger.py``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import secrets
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from labapp.engine.store import Store

ISSUER = "https://lab.example/issuer"
AUDIENCE = "notes-api"
CLIENT_ID = "notes-app"
ACCESS_TYP = "at+jwt"  # RFC 9068 §2.1
# find() answers from a database across the network: by the time a hook acts on what it
# read, this long has passed (exaggerated, so that a check-then-act race shows every time).
READ_LATENCY = 0.04

SCHEMA = """
CREATE TABLE signing_key (kid TEXT PRIMARY KEY, private_pem TEXT NOT NULL);
CREATE TABLE accounts (username TEXT PRIMARY KEY, password_sha256 TEXT NOT NULL);
CREATE TABLE families (id TEXT PRIMARY KEY, username TEXT NOT NULL, started REAL NOT NULL,
                       revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE refresh_tokens (hash TEXT PRIMARY KEY, family TEXT NOT NULL,
                             username TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0,
                             created REAL NOT NULL);
CREATE TABLE denylist (jti TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE app_log (id INTEGER PRIMARY KEY, line TEXT NOT NULL);
"""
# The hashes tokens.claim() won during the current refresh request. The server sets a fresh
# set before it calls rotate (the guard carries the request's context into the hook's thread),
# so it can tell a token consumed atomically from one a hook let through some other way.
CLAIMED: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("claimed", default=None)
RECORD_FIELDS = {"hash", "family", "username", "used", "revoked", "family_started", "created"}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_signing_key(store: Store) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    store.execute("INSERT INTO signing_key VALUES (?, ?)", (f"rsa-{secrets.token_hex(4)}", pem))


class TokenStore:
    """What the hooks may use: the signing key, refresh-token records and the jti denylist.

    A record is a dict: ``hash`` (the value ``save`` was given), ``family``, ``username``,
    ``used`` and ``revoked`` (bools; ``revoked`` is the family's), ``family_started`` and
    ``created`` (Unix times).
    """

    ISSUER, AUDIENCE, ACCESS_TYP = ISSUER, AUDIENCE, ACCESS_TYP

    def __init__(self, store: Store) -> None:
        self._store = store
        row = store.one("SELECT kid, private_pem FROM signing_key")
        if row is None:
            raise LookupError("the lab's signing key is missing from its store")
        self.kid = row["kid"]
        self._private = serialization.load_pem_private_key(row["private_pem"].encode(), None)
        self.public_key = self._private.public_key()
        self._meeting: threading.Barrier | None = None

    @contextlib.contextmanager
    def racing(self, parties: int, wait: float = 0.5) -> Any:
        """While this block runs, find() calls wait for each other after reading, up to
        ``wait`` s: every racer of a burst reads the record before any of them acts on it.

        An attacker times requests as tightly as they can; a busy machine spreads them out.
        The grader's burst should not depend on the scheduler: this makes it the widest race
        a check-then-act rotate can meet. A rotate that serialises itself (a lock) only
        delays the barrier's timeout, once.
        """
        self._meeting = threading.Barrier(parties, timeout=wait)
        try:
            yield
        finally:
            self._meeting = None

    def mint(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        """Sign claims with the lab's one RS256 key (the issuer's own code path)."""
        return jwt.encode(
            claims, self._private, algorithm="RS256", headers={"typ": typ, "kid": self.kid}
        )

    # -- refresh tokens -------------------------------------------------------------------

    def save(self, token_hash: str, username: str, family: str) -> None:
        """Keep a refresh token's record at rest, under ``token_hash`` (what you pass)."""
        self._store.execute(
            "INSERT INTO refresh_tokens (hash, family, username, created) VALUES (?, ?, ?, ?)",
            (token_hash, family, username, time.time()),
        )

    def find(self, token_hash: str) -> dict[str, Any] | None:
        """The record saved under ``token_hash``, or None. ~40 ms old by the time you use it."""
        row = self._store.one(
            "SELECT t.hash, t.family, t.username, t.used, f.revoked, "
            "f.started AS family_started, t.created FROM refresh_tokens t "
            "JOIN families f ON f.id = t.family WHERE t.hash = ?",
            (token_hash,),
        )
        meeting = self._meeting
        if meeting is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                meeting.wait()
        time.sleep(READ_LATENCY)
        if row is None:
            return None
        return {**row, "used": bool(row["used"]), "revoked": bool(row["revoked"])}

    def claim(self, token_hash: str) -> bool:
        """Mark the token used, atomically: True for the one call that won, False otherwise.

        One statement, ``UPDATE ... SET used = 1 WHERE hash = ? AND used = 0``: of any
        number of concurrent calls, exactly one sees its row change.
        """
        won = bool(
            self._store.query(
                "UPDATE refresh_tokens SET used = 1 WHERE hash = ? AND used = 0 RETURNING hash",
                (token_hash,),
            )
        )
        claimed = CLAIMED.get()
        if won and claimed is not None:
            claimed.add(token_hash)
        return won

    def mark_used(self, token_hash: str) -> None:
        """Set ``used`` whatever it was (no check: deciding is up to what you read before)."""
        self._store.execute("UPDATE refresh_tokens SET used = 1 WHERE hash = ?", (token_hash,))

    def delete(self, token_hash: str) -> None:
        self._store.execute("DELETE FROM refresh_tokens WHERE hash = ?", (token_hash,))

    def revoke_family(self, family: str, reason: str = "refresh token reuse detected") -> None:
        """Revoke every refresh token of a family (one login's chain), and audit it."""
        row = self._store.one("SELECT username FROM families WHERE id = ?", (family,))
        self._store.execute("UPDATE families SET revoked = 1 WHERE id = ?", (family,))
        who = row["username"] if row else "?"
        self._store.audit(who, "revoke family", f"family {family[:8]}", "deny", reason)

    def session_ended(self, family: str) -> bool:
        """True once a family (one login's session) was revoked: logout, reuse, lifetime."""
        row = self._store.one("SELECT revoked FROM families WHERE id = ?", (family,))
        return row is None or bool(row["revoked"])

    # -- access tokens --------------------------------------------------------------------

    def deny(self, jti: str, until: float) -> None:
        """Refuse the access token ``jti`` from now on (until it would expire anyway)."""
        self._store.execute("INSERT OR REPLACE INTO denylist VALUES (?, ?)", (jti, until))

    def is_denied(self, jti: str) -> bool:
        return self._store.one("SELECT 1 AS x FROM denylist WHERE jti = ?", (jti,)) is not None
