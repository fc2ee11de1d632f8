"""Lesson 03's failed-login counter: count and decide in one step.

A login that reads the count, awaits the slow password check, then writes the failure
lets a burst overrun its limit: thirty guesses sent at once all read "none so far", and all
thirty get checked. So an attempt takes its place in the count *before* the check, in one
SQL statement (an INSERT that happens only while the count is under the limit), and is
resolved afterwards. A pending attempt counts as a failure until then, and so does one
whose check crashed: when in doubt, the budget shrinks (OWASP Authentication Cheat Sheet,
"Protect Against Automated Attacks"; ASVS 5.0 6.3.1).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from labapp.engine.store import Store

LIMIT = 10  # failed logins per throttle key...
WINDOW = 15 * 60  # ...within this many seconds, then 429 until the oldest of them expires
SCHEMA = """
CREATE TABLE login_attempts (id INTEGER PRIMARY KEY, at REAL NOT NULL, route TEXT NOT NULL,
                             username TEXT NOT NULL, throttle_key TEXT, outcome TEXT NOT NULL,
                             slot INTEGER);
CREATE INDEX attempts_by_key ON login_attempts (throttle_key, outcome, at);
"""
COUNTED = "('pending', 'failure', 'error')"  # what uses up a key's budget
# The attempts under ?1 that count: in the window (after ?2) and since the key's last success.
_RECENT = (
    f"FROM login_attempts WHERE throttle_key = ?1 AND outcome IN {COUNTED} AND at > ?2 "
    "AND at > (SELECT COALESCE(MAX(at), 0) FROM login_attempts "
    "WHERE throttle_key = ?1 AND outcome = 'success')"
)


@dataclass(frozen=True)
class Attempt:
    id: int
    slot: int | None  # its place in its key's count (1..limit); None when not counted


class Attempts:
    """Failed logins per throttle key: ``limit`` within ``window`` seconds, then 429."""

    def __init__(self, store: Store, limit: int = LIMIT, window: int = WINDOW) -> None:
        self.store, self.limit, self.window = store, limit, window

    def begin(self, route: str, username: str, key: str | None) -> Attempt | None:
        """Take a place in ``key``'s count, or None when the key has used up its budget."""
        now = time.time()
        if key is None:  # not counted: the weak default's gap
            row = (now, route, username)
            sql = "INSERT INTO login_attempts VALUES (NULL, ?, ?, ?, NULL, 'pending', NULL)"
            return Attempt(self.store.execute(sql, row), None)
        # One statement: the count and the decision cannot be split by another request.
        rows = self.store.query(
            "INSERT INTO login_attempts (at, route, username, throttle_key, outcome, slot) "
            f"SELECT ?3, ?4, ?5, ?1, 'pending', n + 1 FROM (SELECT COUNT(*) AS n {_RECENT}) "
            "WHERE n < ?6 RETURNING id, slot",
            (key, now - self.window, now, route, username, self.limit),
        )
        return Attempt(rows[0]["id"], rows[0]["slot"]) if rows else None

    def finish(self, attempt: Attempt, outcome: str) -> None:
        """'success' (which resets the key's count), 'failure' or 'error'."""
        self.store.execute(
            "UPDATE login_attempts SET outcome = ? WHERE id = ?", (outcome, attempt.id)
        )

    def refuse(self, route: str, username: str, key: str) -> tuple[int, int]:
        """Record a throttled attempt; (failures counted under the key, seconds to wait)."""
        now = time.time()
        rows = self.store.query(f"SELECT at {_RECENT} ORDER BY at", (key, now - self.window))
        recent = [row["at"] for row in rows]
        row = (now, route, username, key)
        self.store.execute(
            "INSERT INTO login_attempts VALUES (NULL, ?, ?, ?, ?, 'throttled', NULL)", row
        )
        # Until the oldest of the last `limit` failures leaves the window.
        oldest = recent[-self.limit] if len(recent) >= self.limit else now
        return len(recent), max(1, math.ceil(oldest + self.window - now))
