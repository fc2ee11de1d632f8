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
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.common import load_wordlist

# OWASP Password Storage Cheat Sheet, argon2id: equivalent (memory KiB, iterations) minimums.
OWASP_ARGON2ID = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
SAMPLES = 16  # per side, for the timing comparison
MARGIN_FLOOR = 0.005  # seconds: timing differences below this are never called a leak
MARGIN_SHARE = 0.25  # ...nor those below this share of the slower side's cost
WEAK_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)  # below OWASP


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
    """Log in; with ``xff``, claim to be a new client in every header a client can write."""
    headers = {}
    if xff:
        ip = xff.split(",")[0]
        headers = {
            "X-Forwarded-For": xff,
            "X-Real-IP": ip,
            "True-Client-IP": ip,
            "Forwarded": f"for={ip}",
            "User-Agent": f"grader/{secrets.token_hex(3)}",
        }
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


def _insert(lab: Any, stored_for: Any, prefix: str) -> tuple[str, str]:
    """An account from before the defense, with a hash made by ``stored_for(password)``."""
    username, password = f"{prefix}-{secrets.token_hex(5)}", secrets.token_urlsafe(12)
    lab.store.add_secret(password)
    lab.store.execute(
        "INSERT INTO accounts VALUES (?, ?, 'customer', '2016-01-01')",
        (username, stored_for(password)),
    )
    return username, password


def _sha1(password: str) -> str:
    return "sha1$" + hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest()


def _stored(lab: Any, username: str) -> str:
    row = lab.store.one("SELECT password_hash FROM accounts WHERE username = ?", (username,))
    return row["password_hash"] if row else ""


def attack_crack_dump(lab: Any, http: httpx.Client) -> Observed:
    """Two accounts, one common password: would a dump of their hashes crack or match?"""
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


def _cost(http: httpx.Client, usernames: list[str]) -> tuple[float, httpx.Response]:
    """Median time of a wrong-password login, beyond the round trip, cycling the names."""
    spent, base = [], []
    for i in range(SAMPLES):
        response, elapsed = _timed(
            _login, http, usernames[i % len(usernames)], "Guess-1234", xff=_ip()
        )
        _, trip = _timed(http.post, "/login", json={"username": "x"})  # 422 before any hook
        if response.status_code >= 500 or response.status_code == 429:
            return -1.0, response
        spent.append(elapsed)
        base.append(trip)
    return max(0.0, statistics.median(spent) - statistics.median(base)), response


def attack_enumerate_users(lab: Any, http: httpx.Client) -> Observed:
    """Unknown user vs known user with a wrong password: any difference names accounts.

    Known users of both kinds: new (argon2id) and from before the defense (sha1): an old
    account that answers fast gives itself away as surely as a message does.
    """
    kinds = {
        "unknown user": [f"nobody-{secrets.token_hex(5)}" for _ in range(SAMPLES)],
        "new account, wrong password": [_register(http)[0] for _ in range(2)],
        "old sha1 account, wrong password": [_insert(lab, _sha1, "old")[0] for _ in range(2)],
    }  # at most 8 failures per account: under the throttle's limit
    costs, answers = {}, {}
    for kind, names in kinds.items():
        costs[kind], answers[kind] = _cost(http, names)
        if costs[kind] < 0:
            status = answers[kind].status_code
            if status >= 500:
                return Observed(False, status, f"{kind}: a server error")
            why = "429 after at most 8 failures per account (a throttle key everyone shares?)"
            return Observed(True, status, f"{kind}: {why}, so enumeration was not ruled out")
    unknown = answers["unknown user"]
    for kind, response in answers.items():
        if (response.status_code, response.content) != (unknown.status_code, unknown.content):
            return Observed(
                True,
                response.status_code,
                f"unknown user: {unknown.status_code} {unknown.text[:60]}; "
                f"{kind}: {response.status_code} {response.text[:60]}",
            )
    slowest = max(costs.values())
    allowed = max(MARGIN_FLOOR, MARGIN_SHARE * slowest)
    spread = slowest - min(costs.values())
    shown = ", ".join(f"{kind} {cost * 1000:.1f} ms" for kind, cost in costs.items())
    detail = (
        f"same status and body; median time beyond the round trip: {shown} "
        f"(a spread of {allowed * 1000:.1f} ms or more gives accounts away)"
    )
    return Observed(spread >= allowed, unknown.status_code, detail)


def _guesses(http: httpx.Client, username: str, route: str, rotate: bool) -> httpx.Response | None:
    """20 wrong guesses; the first response that let a wrong guess in, if any."""
    for i in range(20):
        response = _login(http, username, f"Guess-{i:02d}!", route, _ip() if rotate else "")
        if _accepted(response):
            return response
    return None


def attack_brute_force(lab: Any, http: httpx.Client) -> Observed:
    """20 wrong guesses on the old /v1/login, then the right password; and 6 + 6 guesses
    split across both routes (one budget per account, not per route)."""
    username, password = _register(http)
    if _guesses(http, username, "/v1/login", rotate=False):
        return Observed(True, 200, "a wrong password was accepted")
    final = _login(http, username, password, "/v1/login")
    if final.status_code >= 500:
        return Observed(False, final.status_code)
    if _accepted(final):
        return Observed(True, 200, "after 20 wrong guesses on /v1/login the right one still got in")
    username, password = _register(http)
    for i in range(12):
        _login(http, username, f"Guess-{i:02d}!", ("/login", "/v1/login")[i % 2])
    final = _login(http, username, password, "/login")
    if _accepted(final):
        return Observed(
            True,
            200,
            "6 guesses on each route, then the right one got in: each route has its own budget",
        )
    return Observed(False, final.status_code, "the right password was refused after the guesses")


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
    """Users with an old 'sha1$...' hash, and with a too-cheap argon2id one, log in: both
    hashes must be replaced by argon2id with today's parameters."""
    for label, make in (("a sha1", _sha1), ("a cheap argon2id", WEAK_ARGON2.hash)):
        username, password = _insert(lab, make, "legacy")
        response = _login(http, username, password)
        if not _accepted(response):
            why = " (429: is your throttle key shared by everyone?)" * (response.status_code == 429)
            return Observed(
                True, response.status_code, f"a user with {label} hash could not log in{why}"
            )
        problem = hash_problem(_stored(lab, username))
        if problem:
            return Observed(
                True, 200, f"after logging in, a user with {label} hash is still {problem}"
            )
    return Observed(False, 200, "both upgraded to argon2id with OWASP parameters at login")


def _logs_in(http: httpx.Client, who: tuple[str, str], route: str = "/login") -> Observed:
    response = _login(http, *who, route)
    return Observed(_accepted(response), response.status_code, f"{who[0]} on {route}")


# Legitimate checks use fresh accounts too: a failed grade that locked a seeded user out
# would otherwise fail every later grade, however right the defense had become.


def check_customer(lab: Any, http: httpx.Client) -> Observed:
    who = _register(http)
    response = _login(http, *who)
    if not _accepted(response):
        return Observed(False, response.status_code, "a customer's login")
    me = http.get("/me", headers={"Authorization": f"Bearer {response.json()['token']}"})
    worked = me.status_code == 200 and me.json().get("username") == who[0]
    return Observed(worked, me.status_code, "GET /me with the new token")


def check_wrong_password(lab: Any, http: httpx.Client) -> Observed:
    who = _register(http)
    wrong = _login(http, who[0], who[1] + "x")
    if wrong.status_code in (200, 429) or wrong.status_code >= 500:
        return Observed(False, wrong.status_code, "a wrong password must get a 4xx, not this")
    return _logs_in(http, who)  # and the right one right after (which resets the count)


def check_old_account(lab: Any, http: httpx.Client) -> Observed:
    who = _insert(lab, _sha1, "since2016")
    seen = _logs_in(http, who)
    return _logs_in(http, who, "/v1/login") if seen.succeeded else seen


def check_register(lab: Any, http: httpx.Client) -> Observed:
    return _logs_in(http, _register(http))


def check_other_account(lab: Any, http: httpx.Client) -> Observed:
    """Someone hammers one account until it is throttled; another must not notice."""
    victim, _ = _register(http)
    bystander = _register(http)
    for i in range(12):
        _login(http, victim, f"Guess-{i:02d}!")
    seen = _logs_in(http, bystander)
    return _logs_in(http, bystander, "/v1/login") if seen.succeeded else seen


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
        "20 wrong guesses on the old /v1/login, and 6 + 6 across both routes, then the right one",
        (
            "/login says 429 after 10 failures. Does /v1/login ever say it?",
            "Loop over load_wordlist() against /v1/login for frank; stop at the first 200.",
        ),
        attack_brute_force,
        fix="throttle_key: the username on every route, /v1/login included; never None.",
    ),
    Attack(
        "throttle-bypass",
        "20 wrong guesses on /login, each from a 'new client' (X-Forwarded-For, X-Real-IP, "
        "User-Agent...), then the right one",
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
        "users with a sha1 and a cheap argon2id hash log in: both must become OWASP argon2id",
        ("needs_rehash says False for everything.",),
        attack_legacy_upgrade,
        fix="verify_password must still accept 'sha1$' hashes; needs_rehash: True for "
        "anything that is not argon2id (or when PasswordHasher.check_needs_rehash says so).",
        flag=False,
    ),
)

CHECKS = (
    Check("customer-login", "a customer logs in and the token works on GET /me", check_customer),
    Check(
        "wrong-password-refused",
        "a wrong password is refused (a 4xx, not 429), then the right one works",
        check_wrong_password,
    ),
    Check(
        "old-account-login",
        "an account from 2016 (a sha1 hash) logs in on both routes",
        check_old_account,
    ),
    Check("register-then-login", "a new customer registers, then logs in", check_register),
    Check(
        "other-account-unaffected",
        "after one account is throttled, another still logs in on both routes",
        check_other_account,
    ),
)
