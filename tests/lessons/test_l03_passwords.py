"""Lesson 03: every attack breaches the weak login and the solution stops all; every rule the
notebook states fails its row when broken; plausible wrong defenses fail, right ones written
differently pass; hostile input never gets a 5xx; nothing is judged by the clock."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

import argon2
import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import verify_secret

from labapp import DefenseBreached, Lab
from labapp.engine.grading import run_item
from labapp.lessons.common import load_wordlist
from labapp.lessons.l03_passwords import LESSON
from labapp.lessons.l03_passwords.app import CANDIDATES, HIDDEN
from labapp.lessons.l03_passwords.attempts import LIMIT
from labapp.lessons.l03_passwords.traffic import (
    burst,
    first_letter_flipped,
    new_client,
    passphrase,
)
from tests.conftest import solution_namespace

FLAG = re.compile(r"FLAG\{03-passwords:[\w-]+:[0-9a-f]{32}\}")
HOOK_NAMES = [hook.name for hook in LESSON.hooks]


@functools.cache
def solution() -> dict[str, Any]:
    """The five hooks (and HASHER, DUMMY_HASH) exactly as the solution notebook shows them."""
    return solution_namespace("03-passwords-and-login.ipynb", "verify_password")


def defend(lab: Lab, **changes: Any) -> None:
    """Plug in the solution's hooks, with some of them replaced by a mistake."""
    hooks = {name: solution()[name] for name in HOOK_NAMES}
    lab.defend(**{**hooks, **changes})


def login(lab: Lab, username: str, password: str, route: str = "/login", **headers: str):
    return lab.client.post(
        route, json={"username": username, "password": password}, headers=headers
    )


def password_of(lab: Lab, username: str) -> str:
    return next(user["password"] for user in lab.users if user["username"] == username)


def register(lab: Lab) -> tuple[str, str]:
    username, password = f"test-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    response = lab.client.post("/register", json={"username": username, "password": password})
    assert response.status_code == 201
    return username, password


def stored_hash(lab: Lab, username: str) -> str:
    return lab.store.one("SELECT password_hash FROM accounts WHERE username = ?", (username,))[
        "password_hash"
    ]


def _row(lab: Lab, row_id: str):
    return run_item(lab, next(i for i in (*LESSON.attacks, *LESSON.checks) if i.id == row_id))


def test_the_wordlist_is_the_courses_own_and_clean() -> None:
    """load_wordlist() skips the header, has hundreds of unique entries and no blank lines."""
    words = load_wordlist()
    assert 300 <= len(words) <= 1000
    assert len(set(words)) == len(words)
    assert all(word and not word.startswith("#") and word == word.strip() for word in words)


@pytest.mark.parametrize("attack", [a.id for a in LESSON.attacks])
def test_each_attack_breaches_the_weak_login(lab03: Lab, attack: str) -> None:
    """Against the shipped hooks, each attack of the lesson gets through."""
    assert not _row(lab03, attack).passed


def test_cracking_the_leaked_dump_with_the_wordlist_reveals_the_flag(lab03: Lab) -> None:
    """SHA-1 every wordlist entry, match the dump, log in as a cracked customer."""
    rows = lab03.client.get("/backup/accounts.csv").text.splitlines()
    assert rows[0] == "username,password_hash"
    dumped = dict(row.split(",") for row in rows[1:])
    assert set(dumped) == {"henry", "dave", "alice", "bob", "erin"}  # frank, grace: too new
    table = {
        "sha1$" + hashlib.sha1(w.encode(), usedforsecurity=False).hexdigest(): w
        for w in load_wordlist()
    }
    cracked = {user: table[h] for user, h in dumped.items() if h in table}
    assert set(cracked) == {"dave", "erin"}
    for user, password in cracked.items():
        lab03.check_flag("crack-dump", login(lab03, user, password).json()["flag"])


def test_only_the_hidden_account_answers_differently_and_carries_the_flag(lab03: Lab) -> None:
    """Exactly one candidate exists; its wrong-password answer holds the enumeration flag."""
    answers = {name: login(lab03, name, "Guess-1234", "/v1/login").json() for name in CANDIDATES}
    different = [name for name, body in answers.items() if body != {"detail": "no such user"}]
    assert different == [HIDDEN]
    lab03.check_flag("enumerate-users", answers[HIDDEN]["support_ref"])


def test_guessing_franks_password_on_v1_reveals_the_flag(lab03: Lab) -> None:
    """/v1/login never throttles, so the wordlist finds frank's password."""
    for word in load_wordlist():
        response = login(lab03, "frank", word, "/v1/login")
        assert response.status_code in (200, 401)
        if response.status_code == 200:
            break
    lab03.check_flag("brute-force", response.json()["flag"])


def test_the_weak_login_limit_exists_but_a_rotated_header_walks_past_it(lab03: Lab) -> None:
    """Without the header grace is throttled after 10; a new X-Forwarded-For per guess is not."""
    for word in load_wordlist()[:10]:
        login(lab03, "grace", word + "-not-it")
    throttled = login(lab03, "grace", "anything")
    assert throttled.status_code == 429 and 0 < int(throttled.headers["retry-after"]) <= 900
    for i, word in enumerate(load_wordlist()):
        response = login(lab03, "grace", word, **{"X-Forwarded-For": f"198.51.100.{i % 250}"})
        if response.status_code == 200:
            break
    lab03.check_flag("throttle-bypass", response.json()["flag"])


def test_grace_earns_no_flag_unless_the_guessing_went_past_the_limit(lab03: Lab) -> None:
    """Her password found on /v1/login, then used once on /login: no bypass, no flag."""
    password = next(
        w for w in load_wordlist() if login(lab03, "grace", w, "/v1/login").status_code == 200
    )
    assert "flag" not in login(lab03, "grace", password).json()


def test_legitimate_users_never_get_a_flag(lab03: Lab) -> None:
    """alice, bob and henry log in on both routes, and fail once, without seeing any flag."""
    for user in lab03.users:
        for route in ("/login", "/v1/login"):
            body = login(lab03, user["username"], user["password"], route).json()
            assert "token" in body and not FLAG.search(str(body))
        assert not FLAG.search(login(lab03, user["username"], "nope", "/v1/login").text)


def test_malformed_requests_get_422_never_a_server_error(lab03: Lab) -> None:
    """Missing fields, wrong types, non-JSON and short passwords are refused by validation."""
    for route in ("/login", "/v1/login", "/register"):
        for body in ({}, {"username": "alice"}, {"username": 3, "password": ["x"]}):
            assert lab03.client.post(route, json=body).status_code == 422
        assert lab03.client.post(route, content=b"{not json").status_code == 422
    short = lab03.client.post("/register", json={"username": "newbie", "password": "short"})
    assert short.status_code == 422
    taken = lab03.client.post("/register", json={"username": "alice", "password": "x" * 12})
    assert taken.status_code == 409


def test_a_token_from_login_works_on_me_and_a_made_up_one_does_not(lab03: Lab) -> None:
    """GET /me answers the token's owner, and 401 with a Bearer challenge otherwise."""
    token = login(lab03, "bob", password_of(lab03, "bob")).json()["token"]
    assert lab03.client.get("/me", headers={"Authorization": f"Bearer {token}"}).json() == {
        "username": "bob",
        "role": "customer",
        "created": "2022-07-19",
    }
    refused = lab03.client.get("/me", headers={"Authorization": "Bearer made-up"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="shop", error="invalid_token"'


def test_the_solution_defense_passes_the_grader(lab03: Lab) -> None:
    """The solution notebook's hooks pass every row of the grader."""
    defend(lab03)
    report = lab03.grade()
    assert report.passed
    assert len(report.rows) == len(LESSON.attacks) + len(LESSON.checks)


def test_the_solution_upgrades_henrys_legacy_hash_at_login(lab03: Lab) -> None:
    """henry's sha1 hash becomes argon2id at OWASP's minimum when he logs in."""
    defend(lab03)
    assert stored_hash(lab03, "henry").startswith("sha1$")
    assert login(lab03, "henry", password_of(lab03, "henry")).status_code == 200
    assert stored_hash(lab03, "henry").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert login(lab03, "henry", password_of(lab03, "henry"), "/v1/login").status_code == 200


def test_the_defended_limit_is_per_account_resets_on_success_and_covers_v1(lab03: Lab) -> None:
    """9 failures then a success reset the count; 10 lock that account on both routes, no other."""
    defend(lab03)
    username, password = register(lab03)
    for _ in range(2):
        for i in range(9):
            assert login(lab03, username, f"wrong-{i}", "/v1/login").status_code == 401
        assert login(lab03, username, password).status_code == 200
    for i in range(10):
        assert login(
            lab03, username, f"wrong-{i}", **{"X-Forwarded-For": f"10.0.0.{i}"}
        ).json() == {"detail": "invalid username or password"}
    for route in ("/login", "/v1/login"):
        locked = login(lab03, username, password, route)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert login(lab03, "bob", password_of(lab03, "bob")).status_code == 200


def test_uniform_failures_hide_the_hidden_account_and_its_flag(lab03: Lab) -> None:
    """With one failure answer, the staff account answers like a name that does not exist."""
    defend(lab03)
    hidden = login(lab03, HIDDEN, "Guess-1234")
    nobody = login(lab03, "no-such-name", "Guess-1234")
    assert (hidden.status_code, hidden.json()) == (nobody.status_code, nobody.json())


def test_audit_records_failures_and_lockouts_but_never_a_password_or_token(lab03: Lab) -> None:
    """Every decision is logged with its throttle key; no password or token ever is."""
    defend(lab03)
    token = login(lab03, "alice", password_of(lab03, "alice")).json()["token"]
    for i in range(11):
        login(lab03, "alice", password_of(lab03, "alice") + f"-typo{i}")
    text = str(lab03.audit())
    assert "lockout" in text and "throttled" in text and "under key 'alice'" in text
    assert token not in text and not FLAG.search(text)
    for user in lab03.users:
        assert user["password"] not in text


def test_a_hook_answer_of_the_wrong_shape_is_a_500_naming_the_hook(lab03: Lab) -> None:
    """failure_response must return (4xx status, str); anything else is reported, not hidden."""
    defend(lab03, failure_response=lambda reason: "invalid username or password")
    response = login(lab03, "alice", "wrong")
    assert response.status_code == 500 and "failure_response()" in response.json()["detail"]
    incident = lab03.guard.incidents[-1]
    assert (incident.hook, incident.kind) == ("failure_response", "returned")


def test_a_decision_hook_that_returns_no_bool_is_a_500_that_says_what_came_back(
    lab03: Lab,
) -> None:
    """verify_password and needs_rehash are allow/deny decisions: None is not a "no"."""
    defend(lab03, verify_password=verify_returns_none)
    username, _ = register(lab03)
    response = login(lab03, username, "wrong-password")
    detail = response.json()["detail"]
    assert response.status_code == 500 and "verify_password()" in detail
    assert "returned NoneType None" in detail and "True or False" in detail
    defend(lab03, needs_rehash=needs_rehash_falls_through)
    response = login(lab03, *register(lab03))
    assert response.status_code == 500 and "needs_rehash()" in response.json()["detail"]


# -- hostile input: a 4xx, never a 5xx ---------------------------------------------------

HOSTILE_BODIES = [
    b'{"username": "alice", "password": "\\ud800"}',  # a lone surrogate
    b'{"username": "\\udfff-x", "password": "abcdefghij"}',
    b'{"username": "ali\\u0000ce", "password": "abcdefghij\\u0000"}',
    b'{"username": "alice", "password": ' + b"9" * 5000 + b"}",  # beyond int parsing
    b'{"username": "alice", "password": 123456789012345678901234567890}',  # beyond 64 bits
    b'{"username": "alice", "password": 1e999}',
    b'{"username": "alice", "password": NaN}',
    b"[" * 50_000 + b"]" * 50_000,  # deeply nested
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b'{"username": "alice", "username": "bob", "password": "abcdefghij"}',  # duplicate keys
    b'{"username": "alice", "password": "' + b"x" * 3_000_000 + b'"}',  # huge
    b'{"username": ["alice"], "password": {"$ne": 1}}',  # odd types
    b'{"username": true, "password": null}',
    b'"just a string"',
    b"null",
    b"\xff\xfe\x00",
    b'{"username": "' + "😀".encode() * 64 + b'", "password": "' + "Ｋ".encode() * 1024 + b'"}',
]
HOSTILE_REQUESTS = [
    ("GET", "/me?x=%ff&y=" + "9" * 4000, {}, b""),
    ("GET", "/me/%ED%A0%80", {}, b""),
    ("GET", "/backup/accounts.csv?%ff=%fe", {}, b""),
    ("POST", "/login?username=%ff", {"content-type": "application/json"}, b"{}"),
    ("POST", "/login/", {}, b""),
    ("GET", "/login", {}, b""),
    ("GET", "/me", {"authorization": b"Bearer \xff\xfe"}, b""),
    ("GET", "/me", {"authorization": "Bearer " + "9" * 6000}, b""),
    ("GET", "/me", {"authorization": "Basic Og=="}, b""),
    ("POST", "/login", {"content-type": "application/json; charset=utf-16"}, b'{"a": 1}'),
    ("POST", "/login", {"content-type": "application/x-www-form-urlencoded"}, b"username=a"),
    ("POST", "/login", {"content-encoding": "gzip", "content-type": "application/json"}, b"{}"),
    ("POST", "/register", {"content-type": "multipart/form-data; boundary=x"}, b"--x\r\n"),
]
CLAIMS = {"x-forwarded-for": b"\xff," * 2000 + b"\xfe", "host": b"\xfe", "user-agent": b"\xc3\x28"}


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("defended", [False, True], ids=["weak", "solution"])
def test_hostile_input_gets_a_4xx_never_a_server_error(
    lab03: Lab, defended: bool, signed_in: bool
) -> None:
    """Surrogates, huge or deep JSON, big numbers, odd types and bytes, in bodies, paths,
    queries and headers: the lab answers 4xx, with the weak hooks and with the solution's."""
    if defended:
        defend(lab03)
    who = {}
    if signed_in:
        token = login(lab03, "bob", password_of(lab03, "bob")).json()["token"]
        who = {"authorization": f"Bearer {token}"}
    sent = [
        (route, {"content-type": "application/json", **who, **claims}, body)
        for route in ("/login", "/v1/login", "/register")
        for body in HOSTILE_BODIES
        for claims in ({}, CLAIMS)
    ]
    errors = []
    for method, path, headers, body in [("POST", *s) for s in sent] + HOSTILE_REQUESTS:
        response = lab03.client.request(method, path, headers={**who, **headers}, content=body)
        if response.status_code >= 500:
            errors.append(f"{method} {path} {body[:40]!r}: {response.status_code}")
    assert errors == []
    assert not lab03.guard.incidents  # and no hook of the solution's was made to fail


# -- the counter: count and decide in one step -------------------------------------------


def test_a_burst_of_guesses_gets_no_more_checks_than_the_limit(lab03: Lab) -> None:
    """30 wrong guesses at once on both routes: 10 are checked (401), the rest 429, and the
    right password is then refused: the count is taken before the slow check."""
    defend(lab03)
    username, password = register(lab03)
    sent = [
        {
            "username": username,
            "password": f"wrong-{i}",
            "route": ("/login", "/v1/login")[i % 2],
            "headers": new_client(),
        }
        for i in range(30)
    ]
    statuses = Counter(r.status_code for r in burst(lab03.client, sent))
    assert statuses == {401: LIMIT, 429: 30 - LIMIT}
    outcomes = lab03.store.query(
        "SELECT outcome, COUNT(*) AS n FROM login_attempts WHERE username = ? GROUP BY outcome",
        (username,),
    )
    assert {row["outcome"]: row["n"] for row in outcomes} == {"failure": 10, "throttled": 20}
    assert login(lab03, username, password).status_code == 429


def test_a_hook_that_crashes_mid_check_still_uses_up_a_guess(lab03: Lab) -> None:
    """A check that raised is counted as a failure, not forgotten (fail closed)."""
    defend(lab03, verify_password=mismatch_escapes)
    username, password = register(lab03)
    for i in range(LIMIT):
        assert login(lab03, username, f"wrong-{i}").status_code == 500
    defend(lab03)
    assert login(lab03, username, password).status_code == 429


# -- work is counted, not timed -------------------------------------------------------------


def test_the_enumeration_row_counts_work_whatever_the_clock_says(lab03: Lab) -> None:
    """A right defense whose checks take random extra time passes; a wrong one that sleeps
    as long as a hash, instead of hashing, fails. Neither verdict reads the clock."""
    defend(lab03, verify_password=jittery)
    assert _row(lab03, "enumerate-users").passed
    defend(lab03, verify_password=sleeps_instead_of_hashing)
    row = _row(lab03, "enumerate-users")
    assert not row.passed and "no argon2 computation" in row.observed


def test_counting_puts_every_name_back(lab03: Lab) -> None:
    """After a grade, argon2-cffi, hmac and the hooks' globals hold the real functions again."""
    real = (argon2.low_level.verify_secret, hmac.compare_digest, verify_secret)
    defend(lab03, verify_password=verify_through_low_level)
    lab03.grade()
    assert (argon2.low_level.verify_secret, hmac.compare_digest, verify_secret) == real
    assert argon2._password_hasher.verify_secret is real[0]


# -- plausible wrong defenses: each must be caught by the grader --------------------------


def verify(stored_hash, password):
    """The solution's verify_password."""
    return solution()["verify_password"](stored_hash, password)


def hasher() -> PasswordHasher:
    return solution()["HASHER"]


def with_hasher(made: PasswordHasher) -> dict[str, Any]:
    """hash_password with another PasswordHasher (the solution's verify reads any argon2)."""
    return {"hash_password": made.hash}


def normalising(norm, *, at_login_only: bool = False, legacy_only: bool = False):
    """The solution, but the password is changed by ``norm`` before hashing or checking."""

    def hash_password(password):
        return hasher().hash(password if at_login_only or legacy_only else norm(password))

    def verify_password(stored_hash, password):
        legacy = stored_hash is not None and stored_hash.startswith("sha1$")
        if legacy == legacy_only:  # new hashes (or, with legacy_only, only the old ones)
            password = norm(password)
        return verify(stored_hash, password)

    return {"hash_password": hash_password, "verify_password": verify_password}


def no_dummy_for_unknown_users(stored_hash, password):
    if stored_hash is None:
        return False  # "the message is uniform now, that is enough"
    return verify(stored_hash, password)


DEFAULT_HASHER = PasswordHasher()
DEFAULT_DUMMY = DEFAULT_HASHER.hash("never anyone's password")


def dummy_made_with_the_defaults(stored_hash, password):
    if stored_hash is None:
        with contextlib.suppress(VerificationError):
            DEFAULT_HASHER.verify(DEFAULT_DUMMY, password)
        return False
    return verify(stored_hash, password)


def fresh_dummy_every_time(stored_hash, password):
    """Makes a new dummy hash per unknown login: a hash *and* a verify, twice the work."""
    if stored_hash is None:
        with contextlib.suppress(VerificationError):
            hasher().verify(hasher().hash(secrets.token_urlsafe(8)), password)
        return False
    return verify(stored_hash, password)


HALF_COST = PasswordHasher(time_cost=1, memory_cost=19456, parallelism=1)
HALF_COST_DUMMY = HALF_COST.hash("dummy password")


def half_cost_dummy(stored_hash, password):
    """Verifies unknown users against a dummy made at t=1: about half the real cost."""
    if stored_hash is None:
        with contextlib.suppress(VerificationError):
            HALF_COST.verify(HALF_COST_DUMMY, password)
        return False
    return verify(stored_hash, password)


def sleeps_instead_of_hashing(stored_hash, password):
    """Waits as long as a verify takes, instead of doing one: same time here, not same work."""
    if stored_hash is None or stored_hash.startswith("sha1$"):
        time.sleep(0.02)
        return stored_hash is not None and hmac.compare_digest(
            stored_hash, solution()["old_sha1_hash"](password)
        )
    return verify(stored_hash, password)


def dummy_first_always(stored_hash, password):
    """Verifies the dummy for everyone, then the real hash: real accounts cost twice as much."""
    with contextlib.suppress(VerificationError):
        hasher().verify(solution()["DUMMY_HASH"], password)
    if stored_hash is None or stored_hash.startswith("sha1$"):
        legacy = solution()["old_sha1_hash"](password)
        return stored_hash is not None and hmac.compare_digest(stored_hash, legacy)
    try:
        return hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.lru_cache(maxsize=1024)
def cached_verify(stored_hash, password):
    """Remembers answers: a repeated guess costs nothing, and answers faster."""
    return verify(stored_hash, password)


def legacy_fast(stored_hash, password):
    """Checks old sha1 hashes directly: no argon2 work, so old accounts answer at once."""
    if stored_hash is not None and stored_hash.startswith("sha1$"):
        return hmac.compare_digest(stored_hash, solution()["old_sha1_hash"](password))
    return verify(stored_hash, password)


def sha1_with_equals(stored_hash, password):
    """Spends the dummy verify for old hashes, but compares their digests with ==."""
    if stored_hash is not None and stored_hash.startswith("sha1$"):
        with contextlib.suppress(VerificationError):
            hasher().verify(solution()["DUMMY_HASH"], password)
        return stored_hash == solution()["old_sha1_hash"](password)
    return verify(stored_hash, password)


def verify_returns_none(stored_hash, password):
    """A suppress() that swallows the mismatch also swallows the answer: None, not False."""
    if stored_hash is None or stored_hash.startswith("sha1$"):
        return verify(stored_hash, password)
    with contextlib.suppress(VerificationError, InvalidHashError):
        return hasher().verify(stored_hash, password)


def mismatch_escapes(stored_hash, password):
    """Lets HASHER.verify's VerifyMismatchError out instead of answering False."""
    if stored_hash is None or stored_hash.startswith("sha1$"):
        return verify(stored_hash, password)
    return hasher().verify(stored_hash, password)


def first_letter_forgiven(stored_hash, password):
    """Lets a phone's automatic capital pass: the password, or it with the first letter's
    case flipped (NIST SP 800-63B-4 allows it; ASVS, which this lab follows, does not)."""
    return verify(stored_hash, password) or verify(stored_hash, first_letter_flipped(password))


def needs_rehash_falls_through(stored_hash):
    if not stored_hash.startswith("$argon2id$"):
        return True
    hasher().check_needs_rehash(stored_hash)  # the missing return: None


def argon2_only(stored_hash, password):
    """Forgets the shop's old hashes: legacy users can no longer log in."""
    if stored_hash is None or not stored_hash.startswith("$argon2"):
        return verify(None, password)
    return verify(stored_hash, password)


def salted_sha256(password):
    salt = secrets.token_hex(8)
    return f"sha256${salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"


def verify_salted_sha256(stored_hash, password):
    if stored_hash is not None and stored_hash.startswith("sha256$"):
        _, salt, digest = stored_hash.split("$")
        return hashlib.sha256((salt + password).encode()).hexdigest() == digest
    return verify(stored_hash, password)


def messages_differ(reason):
    if reason == "throttled":
        return 429, "too many failed logins"
    return 401, "unknown username" if reason == "unknown-user" else "invalid password"


def statuses_differ(reason):
    status, detail = solution()["failure_response"](reason)
    return (404 if reason == "unknown-user" else status), detail


def uniform_400(reason):
    if reason == "throttled":
        return 429, "too many failed logins"
    return 400, "invalid username or password"


def throttled_looks_like_a_wrong_password(reason):
    return 401, "invalid username or password"


def keyed_on(*names: str):
    """throttle_key: the username plus some headers, as a 'device fingerprint'."""
    return lambda username, headers, route: "|".join(
        [username, *(headers.get(n, "") for n in names)]
    )


def fingerprint(username, headers, route):
    return f"{username}|{hashlib.sha256(repr(sorted(headers.items())).encode()).hexdigest()}"


# Right answers the grader must not fail, written differently from the solution.


def hashes_for_unknown_users(stored_hash, password):
    """Spends one HASHER.hash (not a verify) on unknown users and old hashes: equal work."""
    if stored_hash is None or stored_hash.startswith("sha1$"):
        hasher().hash(password)
        return stored_hash is not None and hmac.compare_digest(
            stored_hash, solution()["old_sha1_hash"](password)
        )
    return verify(stored_hash, password)


def verify_through_low_level(stored_hash, password):
    """The solution's logic on argon2.low_level.verify_secret, imported by name."""
    if stored_hash is None or stored_hash.startswith("sha1$"):
        target = solution()["DUMMY_HASH"]
    else:
        target = stored_hash
    kind = {"$argon2i$": Type.I, "$argon2d$": Type.D}.get(target[:9], Type.ID)
    try:
        ok = verify_secret(target.encode(), password.encode(), kind)
    except VerificationError:
        ok = False
    if stored_hash is None or stored_hash.startswith("sha1$"):
        legacy = solution()["old_sha1_hash"](password)
        return stored_hash is not None and hmac.compare_digest(stored_hash, legacy)
    return ok


def jittery(stored_hash, password):
    """The solution, taking a random extra 0 to 40 ms: a busy machine, in miniature."""
    time.sleep(secrets.randbelow(40) / 1000)
    return verify(stored_hash, password)


STRONGER = PasswordHasher(time_cost=3, memory_cost=19456, parallelism=1)  # above OWASP's usual
STRONGER_DUMMY = STRONGER.hash(secrets.token_urlsafe(16))


def stronger_verify(stored_hash, password):
    if stored_hash is None or stored_hash.startswith("sha1$"):
        with contextlib.suppress(VerificationError):
            STRONGER.verify(STRONGER_DUMMY, password)
        return stored_hash is not None and hmac.compare_digest(
            stored_hash, solution()["old_sha1_hash"](password)
        )
    try:
        return STRONGER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


RIGHT_DEFENSES = {
    "hashes instead of verifying a dummy": {"verify_password": hashes_for_unknown_users},
    "argon2.low_level.verify_secret, imported by name": {
        "verify_password": verify_through_low_level
    },
    "a stronger HASHER (three passes) everywhere": {
        "hash_password": STRONGER.hash,
        "verify_password": stronger_verify,
        "needs_rehash": lambda h: not h.startswith("$argon2id$") or STRONGER.check_needs_rehash(h),
    },
}


@pytest.mark.parametrize("name", list(RIGHT_DEFENSES))
def test_the_grader_passes_a_right_defense_written_differently(lab03: Lab, name: str) -> None:
    """Equal work by another road, or stronger parameters, is still right."""
    defend(lab03, **RIGHT_DEFENSES[name])
    assert lab03.grade().passed


@dataclass(frozen=True)
class Rule:
    text: str  # the rule as the notebook (defend cells and hints) states it
    row: str  # the grader row (attack or check id) that enforces it
    wrong: dict[str, Any]  # the solution's hooks with exactly this one rule broken


def _p(**params: Any) -> PasswordHasher:
    return PasswordHasher(**{"time_cost": 2, "memory_cost": 19456, "parallelism": 1, **params})


RULES = [
    Rule("HASHER: argon2id", "crack-dump", with_hasher(_p(type=Type.I))),
    Rule(
        "OWASP's configuration, m=19456 KiB, t=2, p=1, or stronger",
        "crack-dump",
        with_hasher(_p(time_cost=1, memory_cost=8192)),
    ),
    Rule("keep its 16-byte random salt", "crack-dump", with_hasher(_p(salt_len=8))),
    Rule("and its 32-byte hash (128 bits at least)", "crack-dump", with_hasher(_p(hash_len=8))),
    Rule(
        "hash_password: a fresh random salt",
        "crack-dump",
        {"hash_password": lambda password: hasher().hash(password, salt=b"shop-salt-16byte")},
    ),
    Rule(
        "DUMMY_HASH: made once",
        "enumerate-users",
        {"verify_password": fresh_dummy_every_time},
    ),
    Rule(
        "DUMMY_HASH: made by HASHER (one PasswordHasher for everything)",
        "enumerate-users",
        {"verify_password": dummy_made_with_the_defaults},
    ),
    Rule("the password exactly as sent: no lower-casing", "exact-password", normalising(str.lower)),
    Rule("no trimming", "exact-password", normalising(str.strip)),
    Rule(
        "no cutting to a length",
        "exact-password",
        normalising(lambda p: p.encode()[:72].decode(errors="ignore")),
    ),
    Rule(
        "no Unicode normalising",
        "exact-password",
        normalising(functools.partial(unicodedata.normalize, "NFKC")),
    ),
    Rule(
        "a passphrase of any length the server accepts must work (and any character)",
        "exact-password",
        {"hash_password": lambda password: hasher().hash(password.encode("ascii"))},
    ),
    Rule(
        "verify_password: True or False, nothing else",
        "enumerate-users",
        {"verify_password": verify_returns_none},
    ),
    Rule(
        "for None, verify against DUMMY_HASH and return False",
        "enumerate-users",
        {"verify_password": no_dummy_for_unknown_users},
    ),
    Rule(
        "old sha1$ hashes: compare with hmac.compare_digest",
        "legacy-compare",
        {"verify_password": sha1_with_equals},
    ),
    Rule(
        "old sha1$ hashes: spend the dummy verify too",
        "enumerate-users",
        {"verify_password": legacy_fast},
    ),
    Rule(
        "HASHER.verify raises VerifyMismatchError for a wrong password (answer False)",
        "enumerate-users",
        {"verify_password": mismatch_escapes},
    ),
    Rule(
        "the grader counts them, so no cache", "enumerate-users", {"verify_password": cached_verify}
    ),
    Rule(
        "needs_rehash: True for anything that is not argon2id",
        "legacy-upgrade",
        {"needs_rehash": lambda stored_hash: stored_hash.startswith("sha1$")},
    ),
    Rule(
        "or when HASHER.check_needs_rehash says so",
        "legacy-upgrade",
        {"needs_rehash": lambda stored_hash: not stored_hash.startswith("$argon2id$")},
    ),
    Rule("otherwise False", "legacy-upgrade", {"needs_rehash": lambda stored_hash: True}),
    Rule(
        "failure_response: one (401, message) for both reasons",
        "enumerate-users",
        {"failure_response": messages_differ},
    ),
    Rule(
        "(401, ...) for a wrong password",
        "wrong-password-refused",
        {"failure_response": uniform_400},
    ),
    Rule(
        "(429, message) for 'throttled'",
        "throttle-bypass",
        {"failure_response": throttled_looks_like_a_wrong_password},
    ),
    Rule(
        "throttle_key: the username, on both routes",
        "brute-force",
        {"throttle_key": lambda username, headers, route: f"{route}:{username}"},
    ),
    Rule(
        "never a header",
        "throttle-bypass",
        {"throttle_key": lambda username, headers, route: headers.get("x-forwarded-for", "?")},
    ),
    Rule(
        "never None",
        "brute-force",
        {"throttle_key": lambda u, headers, route: None if route == "/v1/login" else u},
    ),
    Rule(
        "the username (each account its own count)",
        "other-account-unaffected",
        {"throttle_key": lambda username, headers, route: "login"},
    ),
]


@pytest.mark.parametrize("rule", RULES, ids=[rule.text for rule in RULES])
def test_every_rule_the_notebook_states_is_enforced_by_a_row(lab03: Lab, rule: Rule) -> None:
    """The solution with exactly this rule broken fails the row that enforces it."""
    _caught(lab03, rule.wrong, rule.row)


# Plausible wrong defenses a hurried learner writes, by class, beyond the rules above.
MISTAKES = {
    # not an exact comparison
    "case folded with casefold()": (normalising(str.casefold), "exact-password"),
    "NFC-normalised": (
        normalising(functools.partial(unicodedata.normalize, "NFC")),
        "exact-password",
    ),
    "whitespace collapsed": (normalising(lambda p: " ".join(p.split())), "exact-password"),
    "spaces removed": (normalising(lambda p: p.replace(" ", "")), "exact-password"),
    "non-ASCII dropped": (
        normalising(lambda p: p.encode("ascii", "ignore").decode()),
        "exact-password",
    ),
    "cut to 64 characters": (normalising(lambda p: p[:64]), "exact-password"),
    "trimmed at login only": (normalising(str.strip, at_login_only=True), "exact-password"),
    "the first letter's case forgiven": (
        {"verify_password": first_letter_forgiven},
        "exact-password",
    ),
    "cut at a NUL, as a C string is": (normalising(lambda p: p.split("\x00")[0]), "exact-password"),
    "a trailing newline dropped": (normalising(lambda p: p.rstrip("\n")), "exact-password"),
    "old sha1 hashes checked trimmed": (
        normalising(str.strip, legacy_only=True),
        "exact-password",
    ),
    # a throttle a client can split, or a burst can overrun
    "keyed on account and User-Agent": (
        {"throttle_key": keyed_on("user-agent")},
        "throttle-bypass",
    ),
    "keyed on account and X-Forwarded-For": (
        {"throttle_key": keyed_on("x-forwarded-for")},
        "throttle-bypass",
    ),
    "keyed on account and Host": ({"throttle_key": keyed_on("host")}, "throttle-bypass"),
    "keyed on account and an app header": (
        {"throttle_key": keyed_on("x-shop-app-install")},
        "throttle-bypass",
    ),
    "keyed on a fingerprint of every header": ({"throttle_key": fingerprint}, "throttle-bypass"),
    "keyed on account and Content-Length": (
        {"throttle_key": keyed_on("content-length")},
        "login-burst",
    ),
    # unequal work, or unequal answers
    "a dummy hash at half the cost": ({"verify_password": half_cost_dummy}, "enumerate-users"),
    "sleeps instead of a dummy hash": (
        {"verify_password": sleeps_instead_of_hashing},
        "enumerate-users",
    ),
    "the dummy verified for everyone, then the real hash": (
        {"verify_password": dummy_first_always},
        "enumerate-users",
    ),
    "statuses differ, same message": ({"failure_response": statuses_differ}, "enumerate-users"),
    # storage and upgrade
    "salted but fast sha256": (
        {"hash_password": salted_sha256, "verify_password": verify_salted_sha256},
        "crack-dump",
    ),
    "argon2id at 19 MiB but one pass": (with_hasher(_p(time_cost=1)), "crack-dump"),
    "needs_rehash returns None for current hashes": (
        {"needs_rehash": needs_rehash_falls_through},
        "customer-login",
    ),
    "needs_rehash asks check_needs_rehash only": (
        {"needs_rehash": lambda stored_hash: hasher().check_needs_rehash(stored_hash)},
        "legacy-upgrade",
    ),
    "never upgrades legacy hashes": ({"needs_rehash": lambda stored_hash: False}, "legacy-upgrade"),
    "forgets legacy hashes": ({"verify_password": argon2_only}, "old-account-login"),
    "refuses every password": ({"verify_password": lambda s, p: False}, "customer-login"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_grader_catches_a_plausible_wrong_defense(lab03: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names the mistake."""
    changes, row = MISTAKES[mistake]
    _caught(lab03, changes, row)


def test_a_decision_hook_returning_none_is_reported_by_name_in_the_grade(lab03: Lab) -> None:
    """The row says which hook returned what, and that it must return True or False."""
    message = _caught(lab03, {"verify_password": verify_returns_none}, "enumerate-users")
    assert "verify_password() returned NoneType None" in message and "True or False" in message


# Trimming, on either side of the comparison or on both: each must fail exact-password.
TRIMMED = {
    "stripped in hash_password only": {
        "hash_password": lambda password: hasher().hash(password.strip())
    },
    "stripped in verify_password only": {
        "verify_password": lambda stored_hash, password: verify(stored_hash, password.strip())
    },
    "stripped in both hooks": {
        "hash_password": lambda password: hasher().hash(password.strip()),
        "verify_password": lambda stored_hash, password: verify(stored_hash, password.strip()),
    },
}


def test_the_graders_passphrase_starts_and_ends_with_a_space() -> None:
    """Without a space at each end, trimming (in either hook) changes nothing and passes."""
    password = passphrase()
    assert password[0] == password[-1] == " " and password.strip() != password
    assert first_letter_flipped(password).lstrip()[0] == password.lstrip()[0].swapcase()


@pytest.mark.parametrize("name", list(TRIMMED))
def test_trimming_in_either_hook_or_both_fails_exact_password(lab03: Lab, name: str) -> None:
    """.strip() at hash time, at verify time, or both: the exact-password row fails."""
    _caught(lab03, TRIMMED[name], "exact-password")


def test_the_failure_response_hint_gives_429_for_throttled() -> None:
    """The defend hint states the whole rule: 401 for both reasons, 429 when throttled."""
    hint = next(h for h in LESSON.hints["defend"] if "failure_response" in h)
    assert "(401, message)" in hint and "(429, message) for 'throttled'" in hint


def test_the_solution_passes_the_exact_password_row(lab03: Lab) -> None:
    defend(lab03)
    assert _row(lab03, "exact-password").passed


def _caught(lab: Lab, changes: dict[str, Any], row: str) -> str:
    defend(lab, **changes)
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    failed = {failure.id for failure in caught.value.report.failures}
    assert row in failed, caught.value.report
    assert re.search(rf"\] {re.escape(row)}[ :]", str(caught.value))
    return str(caught.value)


# -- rows that name the cause: the hook, the direction, the fix ----------------------------


def _failed_row(lab: Lab, changes: dict[str, Any], row_id: str):
    """The solution with ``changes``, graded: the failing row ``row_id`` of the report."""
    defend(lab, **changes)
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    return next(row for row in caught.value.report.failures if row.id == row_id)


def test_a_throttle_keyed_on_a_header_is_blamed_on_throttle_key_naming_the_header(
    lab03: Lab,
) -> None:
    """The bypass row says the guesses got through, names the header read and the fix."""
    row = _failed_row(lab03, {"throttle_key": keyed_on("x-forwarded-for")}, "throttle-bypass")
    assert row.observed.startswith("got through")
    assert "your throttle_key reads x-forwarded-for" in row.observed
    assert row.hint.startswith("throttle_key: count failures per account (the username)")


def test_a_throttled_answer_that_is_not_429_is_blamed_on_failure_response(lab03: Lab) -> None:
    """A limit that holds but answers 401 when throttled: the row names the right hook."""
    changes = {"failure_response": throttled_looks_like_a_wrong_password}
    row = _failed_row(lab03, changes, "throttle-bypass")
    assert "refused with 401, not 429" in row.observed
    assert "failure_response('throttled') must return (429, message)" in row.observed


def test_two_failure_messages_are_blamed_on_failure_response(lab03: Lab) -> None:
    """Different bodies for unknown users and wrong passwords: failure_response, not verify."""
    row = _failed_row(lab03, {"failure_response": messages_differ}, "enumerate-users")
    assert "unknown username" in row.observed and "invalid password" in row.observed
    assert "failure_response gives the two reasons different answers" in row.observed
    assert "failure_response: one (401, message)" in row.hint


def test_a_missing_dummy_hash_is_blamed_on_verify_password_with_the_work_counted(
    lab03: Lab,
) -> None:
    """Same answers, no argon2 work for unknown users: verify_password and DUMMY_HASH."""
    row = _failed_row(lab03, {"verify_password": no_dummy_for_unknown_users}, "enumerate-users")
    assert "unequal work in verify_password" in row.observed
    assert "an unknown user cost no argon2 computation" in row.observed
    assert "DUMMY_HASH" in row.observed and "DUMMY_HASH" in row.hint


def test_an_uncounted_v1_route_shows_what_throttle_key_gave_there(lab03: Lab) -> None:
    """The brute-force row shows the key per route: None on /v1/login is the cause."""
    changes = {"throttle_key": lambda u, headers, route: None if route == "/v1/login" else u}
    row = _failed_row(lab03, changes, "brute-force")
    assert "after 20 wrong guesses on /v1/login the right one still got in" in row.observed
    assert "and None on /v1/login" in row.observed
    assert row.hint == "throttle_key: the username on every route, /v1/login included; never None."


def test_a_key_shared_by_everyone_says_denied_too_much_and_names_throttle_key(
    lab03: Lab,
) -> None:
    """One key for all: a legit row fails in the other direction, naming the hook."""
    row = _failed_row(
        lab03,
        {"throttle_key": lambda username, headers, route: "login"},
        "other-account-unaffected",
    )
    assert row.kind == "legit" and row.observed.startswith("refused (HTTP 429)")
    assert row.why().startswith("denied too much")
    assert row.hint.startswith("one account's failures locked another out: throttle_key must")


def test_a_legacy_hash_never_upgraded_is_blamed_on_needs_rehash(lab03: Lab) -> None:
    """needs_rehash always False: the row says the hash is still sha1 and that it said False."""
    row = _failed_row(lab03, {"needs_rehash": lambda stored_hash: False}, "legacy-upgrade")
    assert "is still stored as 'sha1'" in row.observed
    assert "(needs_rehash said False for it)" in row.observed
    assert row.hint.startswith("needs_rehash: True for anything that is not argon2id")


def test_a_weak_hash_password_behind_a_right_needs_rehash_is_blamed_on_hash_password(
    lab03: Lab,
) -> None:
    """needs_rehash says True, but hash_password stores a cheap argon2id: the row says so."""
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    changes = {"hash_password": weak.hash, "needs_rehash": lambda stored_hash: True}
    row = _failed_row(lab03, changes, "legacy-upgrade")
    assert "needs_rehash said True, but hash_password stored this" in row.observed


def test_new_clients_send_the_user_agent_of_a_browser_or_the_app() -> None:
    """The grader's 'new clients' look like real ones, and rarely the same one twice."""
    agents = [new_client()["User-Agent"] for _ in range(40)]
    assert all(a.startswith(("Mozilla/5.0 (", "ShopApp/4.")) for a in agents)
    assert len(set(agents)) >= 30


def test_a_mismatch_let_out_of_verify_password_gets_the_lessons_fix_not_only_a_500(
    lab03: Lab,
) -> None:
    """The 5xx row names the hook, the learner's line, and what to do: catch and answer False."""
    row = _failed_row(lab03, {"verify_password": mismatch_escapes}, "enumerate-users")
    assert "server error" in row.observed and "verify_password() raised" in row.observed
    assert "for this crash: verify_password: catch VerificationError" in row.observed
    assert "and answer False" in row.observed


def test_a_needs_rehash_that_falls_through_gets_the_lessons_fix(lab03: Lab) -> None:
    """A missing return (None) in needs_rehash: the legit row says to answer on every path."""
    row = _failed_row(lab03, {"needs_rehash": needs_rehash_falls_through}, "customer-login")
    assert "needs_rehash() returned NoneType None" in row.observed
    assert "for this crash: needs_rehash: return True or False on every path" in row.observed


def test_a_near_miss_let_in_is_granted_too_much_not_denied(lab03: Lab) -> None:
    """The exact-password row is a legit row, but a lower-cased compare fails it by letting
    a near miss in: the row says granted too much, from the check's own cause."""
    row = _failed_row(lab03, normalising(str.lower), "exact-password")
    assert row.why() == "granted too much: a near miss logged in"


def test_a_user_locked_out_on_the_upgrade_row_is_denied_too_much(lab03: Lab) -> None:
    row = _failed_row(lab03, normalising(str.lower), "legacy-upgrade")
    assert row.why() == "denied too much: a real user could not log in"
