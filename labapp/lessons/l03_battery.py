"""Lesson 03's battery: the attacks the grader replays and the checks real users need.

Attack rows work on accounts the grader registers for itself (fresh names every run), so a
grade locks nobody a learner or a later grade needs. Timing is measured only where the
attack *is* timing (enumerate-users): medians of 16 alternating samples, net of the round
trip of a request the server rejects before any hook runs, with a generous margin.
"""

from __future__ import annotations

import hashlib
import secrets
import statistics
import time
from typing import Any

import httpx
from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError

from labapp.grading import Attack, Check, Observed

# OWASP Password Storage Cheat Sheet, argon2id: equivalent (memory KiB, iterations) minimums.
OWASP_ARGON2ID = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
SAMPLES = 16  # per side, for the timing comparison
MARGIN_FLOOR = 0.008  # seconds: timing differences below this are never called a leak


def hash_problem(stored: str) -> str | None:
    """Why ``stored`` is not an adequate password hash today, or None when it is."""
    if not stored.startswith("$argon2id$"):
        return f"stored as {stored.split('$')[0] or stored[:9]!r}..., not argon2id"
    try:
        p = extract_parameters(stored)
    except InvalidHashError:
        return "an argon2id string the library cannot read"
    if p.parallelism < 1 or not any(
        p.memory_cost >= m and p.time_cost >= t for m, t in OWASP_ARGON2ID
    ):
        return (
            f"argon2id with m={p.memory_cost} KiB, t={p.time_cost}: below every OWASP "
            "configuration (m=19456, t=2 is the usual minimum)"
        )
    return None


def _ip() -> str:
    """A made-up client address, as any client can claim in X-Forwarded-For."""
    return f"203.0.113.{secrets.randbelow(254) + 1}, 10.{secrets.randbelow(256)}.0.7"


def _login(
    http: httpx.Client, username: str, password: str, route: str = "/login", xff: str = ""
) -> httpx.Response:
    headers = {"X-Forwarded-For": xff} if xff else {}
    return http.post(route, json={"username": username, "password": password}, headers=headers)


def _accepted(response: httpx.Response) -> bool:
    return response.status_code == 200 and "token" in response.json()


def _register(http: httpx.Client, password: str = "") -> tuple[str, str]:
    """A fresh account of the grader's own, registered through the API (hash_password)."""
    username, password = f"grader-{secrets.token_hex(5)}", password or secrets.token_urlsafe(12)
    response = http.post("/register", json={"username": username, "password": password})
    if response.status_code != 201:
        raise RuntimeError(f"POST /register answered {response.status_code}: {response.text}")
    return username, password


def _stored(lab: Any, username: str) -> str:
    row = lab.store.one("SELECT password_hash FROM accounts WHERE username = ?", (username,))
    return row["password_hash"] if row else ""


def attack_crack_dump(lab: Any, http: httpx.Client) -> Observed:
    """Two accounts, one common password: would a dump of their hashes crack or match?"""
    from labapp.lessons.l03_passwords import load_wordlist  # (that module imports this one)

    common = next(w for w in load_wordlist() if len(w) >= 9 and w.isalpha())  # "qwertyuiop"
    users = [_register(http, common)[0] for _ in range(2)]
    hashes = [_stored(lab, user) for user in users]
    if hashes[0] == hashes[1]:
        return Observed(True, 201, "two accounts, same password, same stored hash: no salt")
    for stored in hashes:
        for name in ("md5", "sha1", "sha256"):
            digest = hashlib.new(name, common.encode(), usedforsecurity=False).hexdigest()
            if digest in stored:
                return Observed(True, 201, f"the stored hash holds the unsalted {name} of it")
        problem = hash_problem(stored)
        if problem:
            return Observed(True, 201, f"a wordlist password is {problem}")
    return Observed(False, 201, "salted argon2id with OWASP parameters")


def _timed(send: Any, *args: Any, **kwargs: Any) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    response = send(*args, **kwargs)
    return response, time.perf_counter() - start


def attack_enumerate_users(lab: Any, http: httpx.Client) -> Observed:
    """Unknown user vs known user with a wrong password: any difference names accounts."""
    known = [_register(http)[0] for _ in range(2)]  # 8 failures each: under the limit
    base: list[float] = []
    unknown: list[float] = []
    wrong: list[float] = []
    for i in range(SAMPLES):
        nobody = f"nobody-{secrets.token_hex(5)}"
        r_unknown, t_unknown = _timed(_login, http, nobody, "Guess-1234", xff=_ip())
        r_wrong, t_wrong = _timed(_login, http, known[i % 2], "Guess-1234", xff=_ip())
        _, t_base = _timed(http.post, "/login", json={"username": "x"})  # 422 before any hook
        for response in (r_unknown, r_wrong):
            if response.status_code >= 500:
                return Observed(False, response.status_code)
        if (r_unknown.status_code, r_unknown.content) != (r_wrong.status_code, r_wrong.content):
            return Observed(
                True,
                r_wrong.status_code,
                f"unknown user: {r_unknown.status_code} {r_unknown.text[:60]}; "
                f"wrong password: {r_wrong.status_code} {r_wrong.text[:60]}",
            )
        unknown.append(t_unknown)
        wrong.append(t_wrong)
        base.append(t_base)
    trip = statistics.median(base)
    cost_unknown = max(0.0, statistics.median(unknown) - trip)
    cost_wrong = max(0.0, statistics.median(wrong) - trip)
    allowed = max(MARGIN_FLOOR, 0.5 * max(cost_unknown, cost_wrong))
    leak = abs(cost_unknown - cost_wrong) >= allowed
    detail = (
        f"same status and body; median time beyond the round trip: unknown user "
        f"{cost_unknown * 1000:.1f} ms, wrong password {cost_wrong * 1000:.1f} ms "
        f"(a difference of {allowed * 1000:.1f} ms or more gives accounts away)"
    )
    return Observed(leak, r_wrong.status_code, detail)


def _guesses(http: httpx.Client, username: str, route: str, rotate: bool) -> httpx.Response | None:
    """20 wrong guesses; the first response that let a wrong guess in, if any."""
    for i in range(20):
        response = _login(http, username, f"Guess-{i:02d}!", route, _ip() if rotate else "")
        if _accepted(response):
            return response
    return None


def attack_brute_force(lab: Any, http: httpx.Client) -> Observed:
    """20 wrong guesses on the old /v1/login, then the right password."""
    username, password = _register(http)
    if _guesses(http, username, "/v1/login", rotate=False):
        return Observed(True, 200, "a wrong password was accepted")
    final = _login(http, username, password, "/v1/login")
    if final.status_code >= 500:
        return Observed(False, final.status_code)
    if _accepted(final):
        return Observed(True, 200, "after 20 wrong guesses on /v1/login the right one still got in")
    return Observed(False, final.status_code, "the right password was refused after 20 failures")


def attack_throttle_bypass(lab: Any, http: httpx.Client) -> Observed:
    """20 wrong guesses on /login, each from a 'different' X-Forwarded-For, then the right one."""
    username, password = _register(http)
    if _guesses(http, username, "/login", rotate=True):
        return Observed(True, 200, "a wrong password was accepted")
    final = _login(http, username, password, "/login", _ip())
    if final.status_code >= 500:
        return Observed(False, final.status_code)
    if _accepted(final):
        return Observed(True, 200, "a new X-Forwarded-For per guess reset the limit every time")
    if final.status_code != 429 or not final.headers.get("retry-after", "").isdigit():
        return Observed(True, final.status_code, "refused, but not with 429 and Retry-After")
    return Observed(False, 429, f"429, Retry-After: {final.headers['retry-after']} s")


def attack_legacy_upgrade(lab: Any, http: httpx.Client) -> Observed:
    """A user with an old 'sha1$...' hash (like henry) logs in: it must become argon2id."""
    username, password = f"legacy-{secrets.token_hex(5)}", secrets.token_urlsafe(12)
    lab.store.add_secret(password)
    old = "sha1$" + hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest()
    lab.store.execute(
        "INSERT INTO accounts VALUES (?, ?, 'customer', '2016-01-01')", (username, old)
    )
    response = _login(http, username, password)
    if not _accepted(response):
        why = " (429: is your throttle key shared by everyone?)" * (response.status_code == 429)
        return Observed(True, response.status_code, f"a legacy user could not log in{why}")
    problem = hash_problem(_stored(lab, username))
    if problem:
        return Observed(True, 200, f"after the login, the hash is still {problem}")
    return Observed(False, 200, "upgraded to argon2id at login")


def _user(lab: Any, username: str) -> tuple[str, str]:
    user = next(u for u in lab.users if u["username"] == username)
    return user["username"], user["password"]


def _logs_in(http: httpx.Client, who: tuple[str, str], route: str = "/login") -> Observed:
    response = _login(http, *who, route)
    return Observed(_accepted(response), response.status_code, f"{who[0]} on {route}")


def check_alice(lab: Any, http: httpx.Client) -> Observed:
    response = _login(http, *_user(lab, "alice"))
    if not _accepted(response):
        return Observed(False, response.status_code, "alice's login")
    me = http.get("/me", headers={"Authorization": f"Bearer {response.json()['token']}"})
    worked = me.status_code == 200 and me.json().get("username") == "alice"
    return Observed(worked, me.status_code, "GET /me with alice's new token")


def check_wrong_password(lab: Any, http: httpx.Client) -> Observed:
    alice = _user(lab, "alice")
    wrong = _login(http, alice[0], alice[1] + "x")
    if wrong.status_code in (200, 429) or wrong.status_code >= 500:
        return Observed(False, wrong.status_code, "a wrong password must get a 4xx, not this")
    return _logs_in(http, alice)  # and the right one right after (which resets her count)


def check_henry(lab: Any, http: httpx.Client) -> Observed:
    henry = _user(lab, "henry")
    seen = _logs_in(http, henry)
    return _logs_in(http, henry, "/v1/login") if seen.succeeded else seen


def check_register(lab: Any, http: httpx.Client) -> Observed:
    return _logs_in(http, _register(http))


def check_other_account(lab: Any, http: httpx.Client) -> Observed:
    """Someone hammers one account until it is throttled; bob must not notice."""
    victim, _ = _register(http)
    for i in range(12):
        _login(http, victim, f"Guess-{i:02d}!")
    bob = _user(lab, "bob")
    seen = _logs_in(http, bob)
    return _logs_in(http, bob, "/v1/login") if seen.succeeded else seen


ATTACKS = (
    Attack(
        "crack-dump",
        "two accounts with one common password: are their stored hashes crackable or equal?",
        (
            "GET /backup/accounts.csv: what does each hash look like? What is 'sha1$'?",
            "SHA-1 every word of load_wordlist() and look the dump's hashes up in the result.",
        ),
        attack_crack_dump,
        fix="hash_password: argon2id with OWASP's parameters (PasswordHasher(time_cost=2, "
        "memory_cost=19456, parallelism=1)); it salts every hash for you.",
    ),
    Attack(
        "enumerate-users",
        "unknown user vs wrong password: status, body, and median response time",
        (
            "Log in as a made-up user, then as alice with a wrong password: compare the answers.",
            "Try every name in CANDIDATES on /v1/login; the one that answers differently exists.",
        ),
        attack_enumerate_users,
        fix="failure_response: one (401, message) for both reasons; verify_password: for None, "
        "verify against a DUMMY_HASH so an unknown user costs the same time.",
    ),
    Attack(
        "brute-force",
        "20 wrong guesses for one account on the old /v1/login, then the right password",
        (
            "/login says 429 after 10 failures. Does /v1/login ever say it?",
            "Loop over load_wordlist() against /v1/login for frank; stop at the first 200.",
        ),
        attack_brute_force,
        fix="throttle_key: the username on every route, /v1/login included; never None.",
    ),
    Attack(
        "throttle-bypass",
        "20 wrong guesses on /login, each with a new X-Forwarded-For, then the right one",
        (
            "What does throttle_key count failures under? Who writes that header?",
            "Send X-Forwarded-For: 203.0.113.<n> with a new n for every guess at grace.",
        ),
        attack_throttle_bypass,
        fix="throttle_key: count failures per account (the username), not per a header the "
        "client writes.",
    ),
    Attack(
        "legacy-upgrade",
        "a user with an old sha1 hash logs in: the stored hash must become argon2id",
        ("needs_rehash says False for everything.",),
        attack_legacy_upgrade,
        fix="verify_password must still accept 'sha1$' hashes; needs_rehash: True for "
        "anything that is not argon2id (or when PasswordHasher.check_needs_rehash says so).",
        flag=False,
    ),
)

CHECKS = (
    Check("alice-login", "alice logs in and her token works on GET /me", check_alice),
    Check(
        "wrong-password-refused",
        "a wrong password is refused (a 4xx, not 429), then the right one works",
        check_wrong_password,
    ),
    Check("henry-login", "henry (an account from 2016) logs in on both routes", check_henry),
    Check("register-then-login", "a new customer registers, then logs in", check_register),
    Check(
        "other-account-unaffected",
        "after one account is throttled, bob still logs in on both routes",
        check_other_account,
    ),
)
