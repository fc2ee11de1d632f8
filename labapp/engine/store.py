"""The lab's SQLite database: schema, deterministic seed data, and the audit log.

One file per lab, in the lab's own temp folder. The audit table records every
authentication and authorization decision (who, what, allowed or denied, why) and never
a secret: anything registered with :meth:`Store.add_secret` is redacted on the way in.
"""

from __future__ import annotations

import html
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT UNIQUE NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'error')),
    reason TEXT NOT NULL
);
"""

# Deterministic seed: the same people in every lab, so notebooks can name them.
SEED_USERS = (
    (1, "alice", "Alice Martin", "customer"),
    (2, "bob", "Bob Okafor", "customer"),
    (3, "carol", "Carol Diaz", "admin"),
    (4, "svc-frontend", "Web frontend (service account)", "service"),
)
REDACTED = "[redacted]"


class Store:
    """A small, thread-safe wrapper around the lab's SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        # The server thread and hook threads share this connection, under the lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # A lab database is throwaway: no fsync per audit row.
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(SCHEMA)
        self._db.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", SEED_USERS)

    def executescript(self, script: str) -> None:
        with self._lock:
            self._db.executescript(script)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the last row id."""
        with self._lock:
            return self._db.execute(sql, params).lastrowid or 0

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._db.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, params).fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def add_secret(self, *values: str) -> None:
        """Never let these strings reach the audit log (tokens, keys, passwords, flags)."""
        self._secrets.update(v for v in values if v)

    def _redact(self, text: str) -> str:
        # Longest first: a secret may contain another (a token and its signature).
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def audit(self, actor: str, action: str, resource: str, decision: str, reason: str) -> None:
        """Record one authentication or authorization decision."""
        fields = [self._redact(_printable(v))[:200] for v in (actor, action, resource, reason)]
        self.execute(
            "INSERT INTO audit (at, actor, action, resource, decision, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), fields[0], fields[1], fields[2], decision, fields[3]),
        )

    def audit_rows(self) -> AuditLog:
        rows = self.query(
            "SELECT id, at, actor, action, resource, decision, reason FROM audit ORDER BY id"
        )
        return AuditLog(rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _printable(value: object) -> str:
    """Text SQLite and JSON can hold: an attacker's lone surrogate becomes '?'."""
    return str(value).encode("utf-8", "replace").decode("utf-8")


class AuditLog(list):
    """The audit table as a list of dicts; renders as a table in JupyterLab."""

    COLUMNS = ("id", "time", "actor", "action", "resource", "decision", "reason")

    def tail(self, n: int = 5) -> AuditLog:
        """The last ``n`` events."""
        return AuditLog(self[-n:])

    def _cells(self, row: dict[str, Any]) -> list[str]:
        when = time.strftime("%H:%M:%S", time.localtime(row["at"]))
        return [str(row["id"]), when] + [str(row[c]) for c in self.COLUMNS[2:]]

    def __str__(self) -> str:
        if not self:
            return "(no audit events yet)"
        table = [list(self.COLUMNS)] + [self._cells(row) for row in self]
        widths = [max(len(line[i]) for line in table) for i in range(len(self.COLUMNS))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in table
        )

    __repr__ = __str__

    def _repr_html_(self) -> str:
        if not self:
            return "<p><em>No audit events yet.</em></p>"
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in self._cells(row)) + "</tr>"
            for row in self
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
