"""Lesson 03: every attack breaches the weak login; the solution stops all; wrong ones fail."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import re
import secrets
from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError

from labapp import DefenseBreached, Lab
from labapp.engine.grading import run_item
from labapp.lessons.common import load_wordlist
from labapp.lessons.l03_passwords import LESSON
from labapp.lessons.l03_passwords.app import CANDIDATES, HIDDEN
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


def _row(lab: Lab, attack_id: str):
    return run_item(lab, next(a for a in LESSON.attacks if a.id == attack_id))


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


# -- plausible wrong defenses: each must be caught by the grader --------------------------

WEAK_HASHER = PasswordHasher(time_cost=1, memory_cost=8192)
ARGON2I = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.I)
DEFAULT_HASHER = PasswordHasher()
DEFAULT_DUMMY = DEFAULT_HASHER.hash("never anyone's password")


def _verify_with(hasher: PasswordHasher):
    """The solution's verify_password, but for hashes made by ``hasher``."""

    def verify(stored_hash, password):
        if stored_hash is not None and stored_hash.startswith("$argon2i$"):
            try:
                return hasher.verify(stored_hash, password)
            except VerificationError:
                return False
        return solution()["verify_password"](stored_hash, password)

    return verify


def salted_sha256(password):
    salt = secrets.token_hex(8)
    return f"sha256${salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"


def verify_salted_sha256(stored_hash, password):
    if stored_hash is not None and stored_hash.startswith("sha256$"):
        _, salt, digest = stored_hash.split("$")
        return hashlib.sha256((salt + password).encode()).hexdigest() == digest
    return solution()["verify_password"](stored_hash, password)


def no_dummy_for_unknown_users(stored_hash, password):
    if stored_hash is None:
        return False  # "the message is uniform now, that is enough"
    return solution()["verify_password"](stored_hash, password)


def dummy_made_with_the_defaults(stored_hash, password):
    if stored_hash is None:
        with contextlib.suppress(VerificationError):
            DEFAULT_HASHER.verify(DEFAULT_DUMMY, password)
        return False
    return solution()["verify_password"](stored_hash, password)


def argon2_only(stored_hash, password):
    """Forgets the shop's old hashes: legacy users can no longer log in."""
    if stored_hash is None or not stored_hash.startswith("$argon2"):
        return solution()["verify_password"](None, password)
    return solution()["verify_password"](stored_hash, password)


def legacy_fast(stored_hash, password):
    """Checks old sha1 hashes directly: no argon2 work, so old accounts answer at once."""
    if stored_hash is not None and stored_hash.startswith("sha1$"):
        digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest()
        return hmac.compare_digest(stored_hash, "sha1$" + digest)
    return solution()["verify_password"](stored_hash, password)


HALF_COST = PasswordHasher(time_cost=1, memory_cost=19456, parallelism=1)
HALF_COST_DUMMY = HALF_COST.hash("dummy password")


def half_cost_dummy(stored_hash, password):
    """Verifies unknown users against a dummy made at t=1: about half the real cost."""
    if stored_hash is None:
        with contextlib.suppress(VerificationError):
            HALF_COST.verify(HALF_COST_DUMMY, password)
        return False
    return solution()["verify_password"](stored_hash, password)


def messages_differ(reason):
    if reason == "throttled":
        return 429, "too many failed logins"
    return 401, "unknown username" if reason == "unknown-user" else "invalid password"


def statuses_differ(reason):
    status, detail = solution()["failure_response"](reason)
    return (404 if reason == "unknown-user" else status), detail


def throttled_looks_like_a_wrong_password(reason):
    return 401, "invalid username or password"


WRONG_DEFENSES = {
    "argon2id with too little memory and time": (
        {"hash_password": WEAK_HASHER.hash},
        "crack-dump",
    ),
    "argon2i instead of argon2id": (
        {"hash_password": ARGON2I.hash, "verify_password": _verify_with(ARGON2I)},
        "crack-dump",
    ),
    "salted but fast sha256": (
        {"hash_password": salted_sha256, "verify_password": verify_salted_sha256},
        "crack-dump",
    ),
    "uniform message, no dummy hash": (
        {"verify_password": no_dummy_for_unknown_users},
        "enumerate-users",
    ),
    "dummy hash at other parameters": (
        {"verify_password": dummy_made_with_the_defaults},
        "enumerate-users",
    ),
    "messages differ only in the body": ({"failure_response": messages_differ}, "enumerate-users"),
    "statuses differ, same message": ({"failure_response": statuses_differ}, "enumerate-users"),
    "never upgrades legacy hashes": ({"needs_rehash": lambda stored_hash: False}, "legacy-upgrade"),
    "forgets legacy hashes": ({"verify_password": argon2_only}, "old-account-login"),
    "old sha1 accounts answer fast": ({"verify_password": legacy_fast}, "enumerate-users"),
    "a dummy hash at half the cost": ({"verify_password": half_cost_dummy}, "enumerate-users"),
    "upgrades sha1 but not cheap argon2id": (
        {"needs_rehash": lambda stored_hash: stored_hash.startswith("sha1$")},
        "legacy-upgrade",
    ),
    "throttle keyed on account and User-Agent": (
        {"throttle_key": lambda u, headers, route: f"{u}|{headers.get('user-agent')}"},
        "throttle-bypass",
    ),
    "a budget per route": ({"throttle_key": lambda u, h, route: f"{route}:{u}"}, "brute-force"),
    "throttle keyed on X-Forwarded-For": (
        {"throttle_key": lambda username, headers, route: headers.get("x-forwarded-for", "?")},
        "throttle-bypass",
    ),
    "throttle keyed on account and address": (
        {"throttle_key": lambda u, headers, route: f"{u}|{headers.get('x-forwarded-for')}"},
        "throttle-bypass",
    ),
    "per account, but v1 still exempt": (
        {"throttle_key": lambda u, h, route: None if route == "/v1/login" else u},
        "brute-force",
    ),
    "one key for everyone": ({"throttle_key": lambda u, h, r: "login"}, "other-account-unaffected"),
    "a lockout that says 401": (
        {"failure_response": throttled_looks_like_a_wrong_password},
        "throttle-bypass",
    ),
    "refuses every password": ({"verify_password": lambda s, p: False}, "customer-login"),
}


@pytest.mark.parametrize("mistake", list(WRONG_DEFENSES))
def test_the_grader_catches_a_plausible_wrong_defense(lab03: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names the mistake."""
    changes, row = WRONG_DEFENSES[mistake]
    defend(lab03, **changes)
    with pytest.raises(DefenseBreached) as caught:
        lab03.grade()
    failed = {failure.id for failure in caught.value.report.failures}
    assert row in failed
    assert row in str(caught.value)
