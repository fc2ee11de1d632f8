"""Lesson 03's battery: the attacks the grader replays and the checks real users need.

Nothing here reads a clock. What a hash costs is read from the stored hash string (argon2
records its parameters); whether unknown users cost the same as real ones is *counted*
(work.py: the argon2 computations each login does), so a correct defense passes on a busy
machine and a wrong one fails on a quiet one. Online guessing (throttling.py) is judged by
how many wrong guesses were actually checked.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.common import load_wordlist
from labapp.lessons.l03_passwords.attempts import LIMIT
from labapp.lessons.l03_passwords.causes import explained
from labapp.lessons.l03_passwords.enumeration import attack_enumerate_users, attack_legacy_compare
from labapp.lessons.l03_passwords.hashes import (
    OWASP_ARGON2I,
    WEAK_ARGON2,
    hash_problem,
    legacy_sha1,
)
from labapp.lessons.l03_passwords.hints import BRUTE, BYPASS, CRACK, ENUMERATE
from labapp.lessons.l03_passwords.throttling import (
    attack_brute_force,
    attack_login_burst,
    attack_throttle_bypass,
    check_other_account,
)
from labapp.lessons.l03_passwords.traffic import (
    accepted,
    insert,
    login,
    passphrase,
    register,
    stored,
    variants,
)


def attack_crack_dump(lab: Any, http: httpx.Client) -> Observed:
    """Two accounts, one common password: would a dump of their hashes crack or match?"""
    common = next(w for w in load_wordlist() if len(w) >= 9 and w.isalpha())  # "qwertyuiop"
    hashes = [stored(lab, register(http, common)[0]) for _ in range(2)]
    if hashes[0] == hashes[1]:
        return Observed(True, 201, "two accounts, same password, same stored hash: no salt")
    for text in hashes:
        for name in ("md5", "sha1", "sha256"):
            digest = hashlib.new(name, common.encode(), usedforsecurity=False).hexdigest()
            if digest in text:
                return Observed(True, 201, f"the stored hash holds the unsalted {name} of it")
        problem = hash_problem(text)
        if problem:
            return Observed(True, 201, f"a wordlist password is {problem}")
    return Observed(False, 201, "salted argon2id with OWASP parameters")


# This row is an attack (an old hash left in place) that also fails when a real user is
# locked out: say which way it failed.
DENIED = "denied too much: a real user could not log in"


def attack_legacy_upgrade(lab: Any, http: httpx.Client) -> Observed:
    """Users with a sha1, a too-cheap argon2id and an argon2i hash log in: each hash must be
    replaced by argon2id with today's parameters, and the password still work."""
    makers = (("a sha1", legacy_sha1), ("a cheap argon2id", WEAK_ARGON2.hash))
    for label, make in (*makers, ("an argon2i", OWASP_ARGON2I.hash)):
        username, password = insert(lab, make, "legacy")
        before = stored(lab, username)
        response = login(http, username, password)
        if not accepted(response):
            why = (
                " (429: does throttle_key give everyone one key?)"
                if response.status_code == 429
                else ": verify_password refused its right password"
            )
            return Observed(
                True,
                response.status_code,
                f"a user with {label} hash could not log in{why}",
                cause=DENIED,
            )
        upgraded = stored(lab, username)
        problem = hash_problem(upgraded)
        if problem:
            who = (
                "needs_rehash said False for it"
                if upgraded == before
                else "needs_rehash said True, but hash_password stored this"
            )
            return Observed(
                True, 200, f"after logging in, a user with {label} hash is still {problem} ({who})"
            )
        again = login(http, username, password, "/v1/login")
        if not accepted(again):
            return Observed(
                True,
                again.status_code,
                f"after its upgrade, {label} user could not log in: verify_password refused "
                "the password against the new hash",
                cause=DENIED,
            )
        if stored(lab, username) != upgraded:
            return Observed(
                True,
                200,
                "a hash made a moment ago at today's parameters was made again at the "
                "next login: needs_rehash must say False then (each login would hash twice)",
            )
    return Observed(False, 200, "all three upgraded to argon2id with OWASP parameters at login")


def _logs_in(http: httpx.Client, who: tuple[str, str], route: str = "/login") -> Observed:
    response = login(http, *who, route)
    return Observed(accepted(response), response.status_code, f"{who[0]} on {route}")


# Legitimate checks use fresh accounts too: a failed grade that locked a seeded user out
# would otherwise fail every later grade, however right the defense had become.


def check_customer(lab: Any, http: httpx.Client) -> Observed:
    who = register(http)
    response = login(http, *who)
    if not accepted(response):
        return Observed(False, response.status_code, "a customer's login")
    me = http.get("/me", headers={"Authorization": f"Bearer {response.json()['token']}"})
    worked = me.status_code == 200 and me.json().get("username") == who[0]
    return Observed(worked, me.status_code, "GET /me with the new token")


def check_wrong_password(lab: Any, http: httpx.Client) -> Observed:
    who = register(http)
    wrong = login(http, who[0], who[1] + "x")
    if wrong.status_code != 401:
        return Observed(False, wrong.status_code, "a wrong password must get 401, not this")
    return _logs_in(http, who)  # and the right one right after (which resets the count)


def check_old_account(lab: Any, http: httpx.Client) -> Observed:
    who = insert(lab, legacy_sha1, "since2016")
    seen = _logs_in(http, who)
    return _logs_in(http, who, "/v1/login") if seen.succeeded else seen


def check_register(lab: Any, http: httpx.Client) -> Observed:
    return _logs_in(http, register(http))


def _near_misses(http: httpx.Client, username: str, password: str) -> Observed | None:
    """What went wrong trying each near miss of ``password`` and, after every 9 of them
    (under the limit of 10), the password itself (which resets the count); None: nothing."""
    tries = variants(password)
    for start in range(0, len(tries), LIMIT - 1):
        for how, guess in tries[start : start + LIMIT - 1]:
            response = login(http, username, guess)
            if response.status_code == 429:
                why = "429 before 10 failures on one account (one throttle_key for everyone?)"
                return Observed(False, 429, why)
            if response.status_code != 401:
                granted = accepted(response)
                wrong = "logged in too (granted too much)" if granted else "got no 401"
                cause = "granted too much: a near miss logged in" if granted else ""
                return Observed(False, response.status_code, f"the passphrase {how} {wrong}", cause)
        for route in ("/login", "/v1/login"):
            response = login(http, username, password, route)
            if not accepted(response):
                why = f"the passphrase itself, exactly as set, refused on {route} (denied too much)"
                return Observed(False, response.status_code, why)
    return None


def check_exact_password(lab: Any, http: httpx.Client) -> Observed:
    """A long passphrase with a space at each end logs in exactly as set, on a new and an old
    sha1 account, and none of its near misses does (case, spaces, trimming, truncation,
    Unicode forms): ASVS 5.0 6.2.8. Trimming in hash_password, verify_password or both fails."""
    password = passphrase()
    accounts = {
        "a new account": register(http, password)[0],
        "an old sha1 account": insert(lab, legacy_sha1, "old", password)[0],
    }
    for kind, username in accounts.items():
        seen = _near_misses(http, username, password)
        if seen is not None:
            return Observed(False, seen.status, f"{kind}: {seen.detail}", seen.cause)
    misses = 2 * len(variants(password))
    return Observed(True, 200, f"the passphrase logged in; all {misses} near misses were refused")


ATTACKS = (
    Attack(
        "crack-dump",
        "two accounts with one common password: are their stored hashes crackable or equal?",
        CRACK,
        explained(attack_crack_dump),
        fix="hash_password: HASHER.hash(password), argon2id with OWASP's parameters "
        "(PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)) and its default "
        "16-byte salt and 32-byte hash.",
    ),
    Attack(
        "enumerate-users",
        "unknown user vs wrong password (new and old accounts): status, body, and argon2 work",
        ENUMERATE,
        explained(attack_enumerate_users),
        fix="failure_response: one (401, message) for both 'unknown-user' and 'wrong-password'; "
        "verify_password: for None and for old 'sha1$' hashes, one HASHER.verify(DUMMY_HASH, "
        "password), with DUMMY_HASH made once by HASHER: the same argon2 work as a real check.",
    ),
    Attack(
        "legacy-compare",
        "an old sha1 account and a wrong password: digests compared with hmac.compare_digest",
        ("How does the weak verify_password compare an old hash?",),
        explained(attack_legacy_compare),
        fix="verify_password: compare old 'sha1$' hashes with hmac.compare_digest, never ==.",
        flag=False,
    ),
    Attack(
        "brute-force",
        "20 wrong guesses on the old /v1/login, and 6 + 6 across both routes, then the right one",
        BRUTE,
        explained(attack_brute_force),
        fix="throttle_key: the username on every route, /v1/login included; never None.",
    ),
    Attack(
        "throttle-bypass",
        "20 wrong guesses on /login, each from a 'new client' (X-Forwarded-For, Host, "
        "User-Agent, every header a client writes), then the right one",
        BYPASS,
        explained(attack_throttle_bypass),
        fix="throttle_key: count failures per account (the username), never per a header "
        "the client writes; failure_response('throttled'): (429, message).",
    ),
    Attack(
        "login-burst",
        "30 wrong guesses at one account sent at once on both routes: at most 10 are checked",
        ("What if all the guesses arrive before the first failure is counted?",),
        explained(attack_login_burst),
        fix="throttle_key: the username, whatever the route or the headers, so that every "
        "guess at one account draws on one budget.",
        flag=False,
    ),
    Attack(
        "legacy-upgrade",
        "users with a sha1, a cheap argon2id and an argon2i hash log in: each must become "
        "OWASP argon2id, once",
        ("needs_rehash says False for everything.",),
        explained(attack_legacy_upgrade),
        fix="needs_rehash: True for anything that is not argon2id or when "
        "HASHER.check_needs_rehash says so, else False; verify_password must still accept "
        "'sha1$' hashes (and argon2i ones: HASHER.verify reads any argon2).",
        flag=False,
    ),
)

CHECKS = (
    Check(
        "customer-login",
        "a customer logs in and the token works on GET /me",
        explained(check_customer),
        hint="a customer registered through hash_password could not log in with the "
        "right password: verify_password must return True when HASHER.verify(stored_hash, "
        "password) succeeds, and needs_rehash False (not None) for a hash made today.",
    ),
    Check(
        "wrong-password-refused",
        "a wrong password gets 401, then the right one works",
        explained(check_wrong_password),
        hint="failure_response: (401, message) for a wrong password (and 429 only when "
        "throttled); then the right password must still log in.",
    ),
    Check(
        "old-account-login",
        "an account from 2016 (a sha1 hash) logs in on both routes",
        explained(check_old_account),
        hint="an account whose stored hash is an old 'sha1$' one could not log in: "
        "verify_password must still check those, with hmac.compare_digest(stored_hash, "
        "old_sha1_hash(password)) (needs_rehash then upgrades them).",
    ),
    Check(
        "register-then-login",
        "a new customer registers, then logs in",
        explained(check_register),
        hint="POST /register stores hash_password(password) (a non-empty str); "
        "verify_password must then accept the same password against it.",
    ),
    Check(
        "exact-password",
        "a long passphrase (a space at each end, accents, capitals) logs in as set; 13 near "
        "misses do not",
        explained(check_exact_password),
        hint="hash_password and verify_password: use the password exactly as received, "
        "whatever its length (up to 1024) or characters: no .lower(), .strip(), slicing or "
        "unicodedata.normalize, in either hook (ASVS 5.0 6.2.8); the passphrase starts and "
        "ends with a space. A near miss let in was granted too much, the passphrase refused "
        "was denied too much.",
    ),
    Check(
        "other-account-unaffected",
        "after one account is throttled, another still logs in on both routes",
        explained(check_other_account),
        hint="one account's failures locked another out: throttle_key must be the "
        "username, so that every account has a count of its own.",
    ),
)
