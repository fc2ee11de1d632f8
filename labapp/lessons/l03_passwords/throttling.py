"""Lesson 03's rows about online guessing: every route, every claimed client, all at once.

The server's policy is fixed (10 failures under one throttle key in 15 minutes, then 429
with Retry-After); the learner's ``throttle_key`` decides what is counted together. These
rows judge consequences: how many wrong guesses were actually checked, and whether the
right password still got in after the guessing.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from labapp.engine.grading import Observed
from labapp.lessons.l03_passwords.attempts import LIMIT
from labapp.lessons.l03_passwords.traffic import accepted, burst, login, new_client, register

BURST = 30


def _guesses(
    http: httpx.Client, username: str, route: str, rotate: tuple[str, ...] | None
) -> httpx.Response | None:
    """20 wrong guesses of varied lengths; the first response that let one in, if any.

    ``rotate``: claim a new client every time, in every header a client writes (and these).
    """
    for i in range(20):
        headers = new_client(rotate) if rotate is not None else None
        response = login(http, username, f"Guess-{i:02d}{'!' * (i % 4)}", route, headers)
        if accepted(response):
            return response
    return None


def keys_by_route(lab: Any, username: str) -> str:
    """What the current throttle_key gives ``username`` on each route, for a row's detail."""
    hook = lab.state.hooks["throttle_key"]
    headers = {"host": "127.0.0.1", "user-agent": "python-httpx", "accept": "*/*"}
    shown = []
    for route in ("/login", "/v1/login"):
        try:
            key = lab.guard.call_blocking("throttle_key", hook, username, dict(headers), route)
        except Exception:  # noqa: BLE001 - the HTTP rows show (and judge) a hook that fails
            return ""
        shown.append(f"{key!r} on {route}")
    return f" (throttle_key gives {' and '.join(shown)})"


def attack_brute_force(lab: Any, http: httpx.Client) -> Observed:
    """20 wrong guesses on the old /v1/login, then the right password; and 6 + 6 guesses
    split across both routes (one budget per account, not per route)."""
    username, password = register(http)
    if _guesses(http, username, "/v1/login", rotate=None):
        return Observed(True, 200, "a wrong password was accepted")
    final = login(http, username, password, "/v1/login")
    if final.status_code >= 500:
        return Observed(False, final.status_code)
    if accepted(final):
        why = "after 20 wrong guesses on /v1/login the right one still got in"
        return Observed(True, 200, why + keys_by_route(lab, username))
    username, password = register(http)
    for i in range(12):
        login(http, username, f"Guess-{i:02d}!", ("/login", "/v1/login")[i % 2])
    final = login(http, username, password, "/login")
    if accepted(final):
        why = "6 guesses on each route, then the right one got in: each route has its own budget"
        return Observed(True, 200, why + keys_by_route(lab, username))
    return Observed(False, final.status_code, "the right password was refused after the guesses")


class _Watched(dict):  # type: ignore[type-arg]
    """Request headers that remember which names a throttle_key read ('*': all of them)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def _saw(self, name: object) -> None:
        self.read.add(str(name).lower())

    def __getitem__(self, name: Any) -> Any:
        self._saw(name)
        return super().__getitem__(name)

    def get(self, name: Any, default: Any = None) -> Any:
        self._saw(name)
        return super().get(name, default)

    def __contains__(self, name: object) -> bool:
        self._saw(name)
        return super().__contains__(name)

    def __iter__(self) -> Any:
        self._saw("*")
        return super().__iter__()

    def keys(self) -> Any:
        self._saw("*")
        return super().keys()

    def items(self) -> Any:
        self._saw("*")
        return super().items()

    def values(self) -> Any:
        self._saw("*")
        return super().values()


def headers_read(lab: Any) -> tuple[str, ...]:
    """The header names the current throttle_key reads, found by calling it once.

    A key built from a header the grader did not think of (X-Device, X-Api-Client...) is as
    rotatable as X-Forwarded-For: the attack then rotates that header too.
    """
    headers = _Watched({"host": "127.0.0.1", "user-agent": "python-httpx", "accept": "*/*"})
    hook = lab.state.hooks["throttle_key"]
    try:
        lab.guard.call_blocking("throttle_key", hook, "grader-probe", headers, "/login")
    except Exception:  # noqa: BLE001 - the HTTP rows show (and judge) a hook that fails
        return ()
    return tuple(sorted(name for name in headers.read if name != "*"))


def attack_throttle_bypass(lab: Any, http: httpx.Client) -> Observed:
    """20 wrong guesses on /login, each from a 'new client', then the right one."""
    username, password = register(http)
    rotate = headers_read(lab)
    if _guesses(http, username, "/login", rotate=rotate):
        return Observed(True, 200, "a wrong password was accepted")
    final = login(http, username, password, "/login", new_client(rotate))
    if final.status_code >= 500:
        return Observed(False, final.status_code)
    if accepted(final):
        read = f" (your throttle_key reads {', '.join(rotate)})" if rotate else ""
        return Observed(True, 200, f"a new client per guess reset the limit every time{read}")
    if final.status_code != 429 or not final.headers.get("retry-after", "").isdigit():
        why = (
            f"refused with {final.status_code}, not 429 with Retry-After: "
            "failure_response('throttled') must return (429, message), or a client cannot "
            "tell 'wait' from 'wrong password'"
        )
        return Observed(True, final.status_code, why)
    return Observed(False, 429, f"429, Retry-After: {final.headers['retry-after']} s")


def attack_login_burst(lab: Any, http: httpx.Client) -> Observed:
    """30 wrong guesses at one account sent at once, each from a 'new client', on both
    routes: no more than the limit may be checked, and then the right one gets 429."""
    username, password = register(http)
    before = lab.store.one("SELECT COALESCE(MAX(id), 0) AS id FROM login_attempts")["id"]
    sent = [
        {
            "username": username,
            "password": f"Burst-{secrets.token_hex(2 + i % 3)}",
            "route": ("/login", "/v1/login")[i % 2],
            "headers": new_client(),
        }
        for i in range(BURST)
    ]
    answers = burst(http, sent)
    if any(accepted(answer) for answer in answers):
        return Observed(True, 200, "a wrong password was accepted")
    checked = lab.store.one(
        "SELECT COUNT(*) AS n FROM login_attempts WHERE id > ? AND username = ? "
        "AND outcome != 'throttled'",
        (before, username),
    )["n"]
    final = login(http, username, password, "/login", new_client())
    statuses = sorted({answer.status_code for answer in answers})
    shown = f"{checked} of {BURST} guesses sent at once were checked (statuses {statuses})"
    split = "throttle_key must give every guess at one account the same key"
    read = headers_read(lab)
    split += f" (yours reads {', '.join(read)})" if read else ""
    if checked > LIMIT:
        return Observed(True, final.status_code, f"{shown}; the limit is {LIMIT}: {split}")
    if accepted(final):
        return Observed(True, 200, f"{shown}, and then the right password got in: {split}")
    if final.status_code != 429:
        why = "then not 429 with Retry-After: failure_response('throttled') must give 429"
        return Observed(True, final.status_code, f"{shown}; {why}")
    return Observed(False, 429, f"{shown}; then 429")


def check_other_account(lab: Any, http: httpx.Client) -> Observed:
    """Someone hammers one account until it is throttled; another must not notice."""
    victim, _ = register(http)
    bystander = register(http)
    for i in range(12):
        login(http, victim, f"Guess-{i:02d}!")
    for route in ("/login", "/v1/login"):
        response = login(http, *bystander, route)
        if not accepted(response):
            return Observed(False, response.status_code, f"{bystander[0]} on {route}")
    return Observed(True, 200, f"{bystander[0]} on both routes")
