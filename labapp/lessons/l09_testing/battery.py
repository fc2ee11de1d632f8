"""``lab.grade_tests()``: a suite is graded by the regressions it catches (mutation testing).

Against the sound API every test must pass: a test that fails there is a false alarm, and
a suite with one scores nothing (anything can "catch" a mutant by failing everywhere).
Against each mutant at least one test must fail: the mutant is killed. A test that fails on
the sound API kills nothing, wherever else it fails.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labapp.engine.grading import Report, Row
from labapp.lessons.l09_testing.fixtures import NAMES as FIXTURE_NAMES
from labapp.lessons.l09_testing.mutants import MUTANTS, SOUND, TARGETS
from labapp.lessons.l09_testing.runner import (
    Outcome,
    Run,
    replaced_fixtures,
    run_suite,
    suite_module,
)

if TYPE_CHECKING:
    from labapp.engine.lab import Lab

# What kind of test would have caught each mutant: shown beside a survivor, never its code.
CATCH = {
    "unauth-route": "call every route without a token (every OpenAPI path but /health, /login "
    "and /refresh)",
    "bola-read": "read another user's note with your token: expect 404",
    "list-filter": "check that every note GET /notes returns is the caller's (the body, not "
    "the status)",
    "no-exp": "send an expired token: expect 401",
    "no-aud": "send a token minted for another API: expect 401",
    "no-sig": "send a token with a wrong signature: expect 401",
    "role-widened": "call the admin routes as every non-admin role: expect 403",
    "support-delete": "test delete for every role on a note that is not theirs",
    "scope-patch": "use a read-only token on every writing route, PATCH included: expect 403",
    "check-after-write": "after a refused edit of someone else's note, read it back: is it "
    "unchanged?",
    "token-crash": "property-test the Authorization header with arbitrary bytes: never a 5xx",
    "login-enum": "compare the answers to an unknown user and a wrong password: same status, "
    "same body",
    "refresh-replay": "use a refresh token twice: the second use must be refused",
    "family-kept": "after a replay, try the newest refresh token of the same family too",
    "deleted-user": "send the deleted user's token (dave-deleted): expect 401",
    "cors-credentials": "send a preflight from a foreign Origin: the answer must not carry "
    "Access-Control-Allow-Origin for it",
    "me-leak": "check the fields GET /me returns, not only its status",
    "staging-search": "run schemathesis against lab.staging_url, then pin the crash it finds "
    "in a regression test that expects what the sound API answers",
}

SUITE = """\
import pytest
from hypothesis import given
from hypothesis import strategies as st

PUBLIC = {"/health", "/login", "/refresh"}
BROKEN = ["alice-expired", "alice-wrong-audience", "alice-wrong-signature", "dave-deleted"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def new_note(api, tokens, owner):
    # Tests that change or delete a note make their own.
    note = {"title": "scratch", "body": "for a test"}
    r = api.post("/notes", json=note, headers=bearer(tokens[owner]))
    assert r.status_code == 201
    return r.json()["id"]


def sign_in(api, users, name):
    r = api.post("/login", json={"username": name, "password": users[name]["password"]})
    assert r.status_code == 200
    return r.json()


# -- authentication -----------------------------------------------------------------------


def test_health_is_public(api):
    r = api.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_every_route_needs_a_token(api):
    spec = api.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        if path in PUBLIC:
            continue
        for method in methods:
            url = path.replace("{note_id}", "1").replace("{username}", "bob")
            r = api.request(method.upper(), url)
            assert r.status_code == 401, f"{method.upper()} {path}: {r.status_code}"


@pytest.mark.parametrize("name", BROKEN)
def test_broken_tokens_are_refused(api, tokens, name):
    r = api.get("/me", headers=bearer(tokens[name]))
    assert r.status_code == 401
    assert "invalid_token" in r.headers["www-authenticate"]


def test_sign_in_and_refresh(api, users):
    pair = sign_in(api, users, "alice")
    assert api.get("/me", headers=bearer(pair["access_token"])).json()["username"] == "alice"
    r = api.post("/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200
    assert api.get("/me", headers=bearer(r.json()["access_token"])).status_code == 200


def test_login_failures_look_alike(api):
    unknown = api.post("/login", json={"username": "nobody", "password": "x"})
    wrong = api.post("/login", json={"username": "alice", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_refresh_token_is_single_use(api, users):
    first = sign_in(api, users, "bob")
    second = api.post("/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    replay = api.post("/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    # The replay revoked the whole family: the newest token is dead too (RFC 9700 §4.14.2).
    newest = api.post("/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert newest.status_code == 401


VISIBLE_HEADER_BYTES = st.lists(st.integers(0x21, 0xFF).filter(lambda b: b != 0x7F), min_size=1)


@given(raw=VISIBLE_HEADER_BYTES.map(bytes))
def test_any_token_bytes_get_401(api, raw):
    r = api.get("/me", headers={"Authorization": b"Bearer " + raw})
    assert r.status_code == 401


# -- authorization ------------------------------------------------------------------------

# role x route x own/other, from the API's rules: (who, method, route, whose note, status)
MATRIX = [
    ("alice", "GET", "/notes/{id}", "own", 200),
    ("alice", "GET", "/notes/{id}", "other", 404),
    ("alice", "PATCH", "/notes/{id}", "own", 200),
    ("alice", "PATCH", "/notes/{id}", "other", 404),
    ("alice", "DELETE", "/notes/{id}", "other", 404),
    ("alice", "DELETE", "/notes/{id}", "own", 204),
    ("sam", "GET", "/notes/{id}", "other", 200),
    ("sam", "PATCH", "/notes/{id}", "other", 403),
    ("sam", "DELETE", "/notes/{id}", "other", 403),
    ("carol", "GET", "/notes/{id}", "other", 200),
    ("carol", "DELETE", "/notes/{id}", "other", 204),
    ("alice", "GET", "/admin/users", None, 403),
    ("sam", "GET", "/admin/users", None, 403),
    ("carol", "GET", "/admin/users", None, 200),
    ("sam", "DELETE", "/admin/users/dave", None, 403),
]


@pytest.mark.parametrize(("who", "method", "route", "whose", "status"), MATRIX)
def test_permission_matrix(api, tokens, who, method, route, whose, status):
    if whose is not None:
        owner = who if whose == "own" else "bob"
        route = route.replace("{id}", str(new_note(api, tokens, owner)))
    body = {"title": "edited"} if method == "PATCH" else None
    r = api.request(method, route, json=body, headers=bearer(tokens[who]))
    assert r.status_code == status


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_read_only_token_cannot_write(api, tokens, method):
    route = "/notes" if method == "POST" else f"/notes/{new_note(api, tokens, 'alice')}"
    body = None if method == "DELETE" else {"title": "edited"}
    r = api.request(method, route, json=body, headers=bearer(tokens["alice-read-only"]))
    assert r.status_code == 403


def test_refused_edit_changes_nothing(api, tokens):
    route = f"/notes/{new_note(api, tokens, 'bob')}"
    before = api.get(route, headers=bearer(tokens["bob"])).json()
    r = api.patch(route, json={"title": "edited by alice"}, headers=bearer(tokens["alice"]))
    assert r.status_code == 404
    assert api.get(route, headers=bearer(tokens["bob"])).json() == before


def test_list_holds_only_my_notes(api, tokens):
    for route in ("/notes", "/export"):
        r = api.get(route, headers=bearer(tokens["alice"]))
        assert r.status_code == 200
        listed = r.json() if route == "/notes" else r.json()["notes"]
        assert listed and {note["owner"] for note in listed} == {"alice"}


def test_me_shows_no_secrets(api, tokens):
    r = api.get("/me", headers=bearer(tokens["alice"]))
    assert r.json() == {"username": "alice", "role": "customer"}


def test_cors_refuses_foreign_origins(api):
    preflight = {"Access-Control-Request-Method": "GET"}
    ours = api.options("/me", headers={"Origin": "https://notes.example", **preflight})
    assert ours.headers.get("access-control-allow-origin") == "https://notes.example"
    theirs = api.options("/me", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in theirs.headers


# -- what schemathesis found on staging ---------------------------------------------------


def test_search_accepts_any_text(api, tokens):
    r = api.get("/notes", params={"q": "?"}, headers=bearer(tokens["alice"]))
    assert r.status_code == 200
    assert r.json() == []
"""

HINTS = (
    "Each mutant is the sound API with one regression. Read the survivors' rows: each says "
    "what broke and what kind of test would catch it. Your tests get the api, tokens, users "
    "and notes fixtures; a test kills a mutant by failing on it while passing on the sound API.",
    "Test the failure paths, not only the happy ones (OWASP ASVS 5 V8 and V9; the OWASP "
    "Authorization Testing Automation Cheat Sheet's matrix): every route without credentials; "
    "each broken token (expired, wrong audience, wrong signature, deleted user); each role "
    "against each route with @pytest.mark.parametrize; another user's objects; the body and "
    "headers, not only the status; a property test (Hypothesis) for inputs you would not "
    "think of; schemathesis for the whole OpenAPI document.",
    "Run this in a cell (it defines the solution notebook's suite: one test per kind of "
    "regression), then run the grader cell; then compare it with your own tests.\n"
    "```python\n" + SUITE + "```",
)


TITLE = "09-testing test suite"


@dataclass(repr=False)  # keep Report's text repr
class SuiteReport(Report):
    """The mutation report: one row for the sound API (or one per false alarm), one per
    mutant; the summary is the mutation score."""

    killed: int = 0
    false_alarms: int = 0
    graded: bool = True
    log_title = "pytest's output (tests failing on mutants are expected there)"

    def summary(self) -> str:
        if not self.graded:
            return f"{self.title}: not graded (see the row below)"
        if self.false_alarms:
            return (
                f"{self.title}: mutation score 0/{len(MUTANTS)}: {self.false_alarms} false "
                f"alarm(s) to fix first (without them, {self.killed} mutants would be killed)"
            )
        return f"{self.title}: mutation score {self.killed}/{len(MUTANTS)} mutants killed"


def grade_suite(lab: Lab, suite: Any) -> SuiteReport:
    __tracebackhide__ = True
    module = suite_module(suite)  # a wrong argument: the learner's TypeError, before any run
    peeking = asks_for_the_build(module)
    if peeking:
        names = ", ".join(peeking)
        why = (
            f"{names} asks which build it runs on (the target fixture): a test that fails "
            "wherever target is not the sound build kills every mutant and tests nothing. "
            "Judge the API's answers instead"
        )
        row = Row("suite", "runs", "your suite runs", "tests that judge answers", why, False)
        return SuiteReport(TITLE, [row], graded=False)
    lab.net.reset_builds()
    run = run_suite(suite, lab.workdir, TARGETS)
    return judge(run, replaced_fixtures(suite), unnamed_tests(module))


def judge(run: Run, replaced: Sequence[str] = (), misnamed: Sequence[str] = ()) -> SuiteReport:
    """The report of a run; ``replaced`` and ``misnamed`` are noted on the sound row."""
    title = TITLE
    if run.problem or not run.outcomes:
        problem = run.problem or (
            "no tests found: define functions named test_... that take the api fixture"
        )
        row = Row("suite", "runs", "your suite runs", "it runs to the end", problem, False)
        return SuiteReport(title, [row], _tail(run.output), graded=False)
    by_target: dict[str | None, list[Outcome]] = {}
    for outcome in run.outcomes:
        by_target.setdefault(outcome.target, []).append(outcome)
    rows: list[Row] = []
    sound = by_target.get(SOUND, []) + by_target.get(None, [])
    alarms = [o for o in sound if not o.passed and not o.skipped]
    broken = {o.test for o in alarms}
    for outcome in alarms:
        unwritten = outcome.error.startswith("NotImplementedError")
        observed = "not written yet (NotImplementedError)" if unwritten else outcome.error
        rows.append(
            Row(
                "false alarm",
                outcome.test,
                "a test of yours, on the sound API",
                "passes on the sound API",
                f"failed: {observed}",
                False,
                _alarm_hint(outcome.error),
                "false alarm: fails on correct code",
            )
        )
    unused = sorted({o.test for o in by_target.get(None, [])})
    if not alarms:
        passing = len({o.test for o in sound if o.passed})
        note = f"; {len(unused)} never call the API (ran once): {', '.join(unused)}"
        observed = f"{passing} passed" + (note if unused else "")
        if replaced:
            names = ", ".join(replaced)
            observed += f"; your own fixture(s) {names}: replaced by the lab's while grading"
        if misnamed:
            names = ", ".join(misnamed)
            observed += f"; never ran (a test's name starts with test): {names}"
        rows.append(Row("sound", SOUND, "the sound API", "every test passes", observed, True))
    killed = 0
    for mutant, description in MUTANTS.items():
        failing = [
            o
            for o in by_target.get(mutant, [])
            if not o.passed and not o.skipped and o.test not in broken
        ]
        if failing:
            killed += 1
            first = failing[0]
            more = f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""
            observed = f"killed by {first.test}{more}: {first.error}"
            rows.append(Row("mutant", mutant, description, "killed", observed, True))
        else:
            ran = len(by_target.get(mutant, []))
            observed = f"survived: {ran} test(s) ran on it, none failed"
            observed = observed if ran else "survived: not run (the suite stopped first)"
            rows.append(
                Row(
                    "mutant",
                    mutant,
                    description,
                    "killed",
                    observed,
                    False,
                    f"a test that would catch it: {CATCH[mutant]}",
                    "survived: no test noticed the regression",
                )
            )
    report = SuiteReport(title, rows, _tail(run.output), killed=killed, false_alarms=len(alarms))
    return report


def asks_for_the_build(module: Any) -> list[str]:
    """Tests, fixtures and test methods of the learner's that take the ``target`` fixture."""
    found = []
    for name, value in vars(module).items():
        candidates = []  # a helper's own parameter named target (a route, say) is no concern
        if hasattr(value, "_fixture_function"):
            candidates = [(name, value._fixture_function)]
        elif name.startswith("test"):
            candidates = [(name, value)]
        elif inspect.isclass(value) and name.startswith("Test"):
            candidates = [
                (f"{name}.{n}", f) for n, f in vars(value).items() if n.startswith("test")
            ]
        for label, function in candidates:
            if inspect.isfunction(function) and "target" in _parameters(function):
                found.append(label)
    return sorted(found)


def _parameters(function: Any) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()


def unnamed_tests(module: Any) -> list[str]:
    """Functions that take only the lab's fixtures but that pytest will not collect."""
    found = []
    for name, value in vars(module).items():
        if name.startswith("test") or not inspect.isfunction(value):
            continue
        params = set(inspect.signature(value).parameters)
        if params and params <= set(FIXTURE_NAMES):
            found.append(name)
    return sorted(found)


def _alarm_hint(error: str) -> str:
    if "LocalProtocolError" in error or "InvalidURL" in error:
        return (
            "your test could not even send its request (httpx refused it): build the input "
            "from what HTTP can carry (a header value: visible bytes, no space at either end)"
        )
    return (
        "a test that fails on correct code catches nothing: fix the test (is your "
        "expectation what the API's rules say?)"
    )


def _tail(output: str) -> list[str]:
    return output.strip().splitlines()[-15:] if output.strip() else []
