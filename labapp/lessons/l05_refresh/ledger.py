"""Lesson 05's truth ledger: what the server really issued, exchanged and logged out.

It is kept apart from the hooks, so that flags are decided from facts, never from what a
hook claims. Every decision is judged by *completion*, not arrival: a reuse or a logout
counts from the moment the server finished handling it (by then a correct defense has
revoked what it must), and only requests that *started* after that moment can earn a flag.
A correct defense racing its own revocation therefore never hands out a flag.
All times are ``time.monotonic()``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from labapp.lessons.l05_refresh.tokens import digest


@dataclass
class Ledger:
    """Issued tokens, successful exchanges, bob's reuses, logouts, and concurrent refreshes."""

    refresh: dict[str, tuple[str, float]] = field(default_factory=dict)  # digest -> family, at
    access: dict[str, tuple[str, float]] = field(default_factory=dict)  # digest -> family, at
    exchanges: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # refresh digest -> (start, end) of each successful exchange
    victim_reuses: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # family -> (presented, completed) of each reuse by bob's app
    logouts: dict[str, tuple[float, float]] = field(default_factory=dict)  # family -> begun, done
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    peak: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # most at once
    unclaimed: int = 0  # exchanges whose rotate() did not win tokens.claim() for the token
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issued(self, refresh: str, access: str, family: str, at: float) -> None:
        with self.lock:
            self.refresh[digest(refresh)] = (family, at)
            self.access[digest(access)] = (family, at)

    def family_of(self, token: str) -> str:
        """The family a refresh token was issued in ('' for a token never issued)."""
        with self.lock:
            return self.refresh.get(digest(token), ("", 0.0))[0]

    def arrive(self, token: str) -> bool:
        """A refresh token is presented; True when it was exchanged before (a reuse)."""
        key = digest(token)
        with self.lock:
            self.in_flight[key] += 1
            self.peak[key] = max(self.peak[key], self.in_flight[key])
            return bool(self.exchanges.get(key))

    def leave(self, token: str, start: float, end: float, *, reuse: bool, victim: bool) -> None:
        """The server finished with a presented refresh token, whatever its answer."""
        key = digest(token)
        with self.lock:
            self.in_flight[key] -= 1
            family = self.refresh.get(key, ("", 0.0))[0]
            if reuse and victim and family:
                self.victim_reuses[family].append((start, end))

    def exchanged(self, token: str, start: float, end: float, *, claimed: bool) -> str | None:
        """Record a successful exchange; name the attack it was, if it was one."""
        key = digest(token)
        with self.lock:
            before = list(self.exchanges[key])
            self.exchanges[key].append((start, end))
            self.unclaimed += not claimed
            family, issued_at = self.refresh.get(key, ("", 0.0))
            reuses = list(self.victim_reuses.get(family, ()))
        if any(finished > start for _, finished in before):
            return "race"  # two exchanges of one token at the same time
        if before:
            return "refresh-replay"
        # bob's app presented a used token after this one was issued, and this one still
        # refreshes once the server had finished with bob's request: the branch outlived it.
        if any(issued_at < presented and done < start for presented, done in reuses):
            return "reuse-unnoticed"
        return None

    def logged_out(self, family: str, begun: float, done: float) -> None:
        with self.lock:
            self.logouts.setdefault(family, (begun, done))

    def accepted(self, token: str, start: float) -> str | None:
        """An access token was accepted by the API; name the attack it was, if one."""
        key = digest(token)
        with self.lock:
            if key in self.refresh:
                return "type-confusion"  # a refresh token the server issued, used on the API
            minted = self.access.get(key)
            if minted is None:
                return None  # not issued by login or refresh (a grader's probe): no flag
            family, issued_at = minted
            logout = self.logouts.get(family)
        if logout is not None and issued_at < logout[0] and logout[1] < start:
            return "after-logout"
        return None
