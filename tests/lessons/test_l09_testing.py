"""Lesson 09: the suite grader, shown to fail.

The solution's suite kills every mutant; the suites with the gaps the issue names (happy
paths only, no other-user test, no expired-token test, ``status != 200``, status-only
checks, no property test) each leave exactly their named mutants alive; a false alarm fails
the grade and kills nothing; bad input is a clear error.
"""

from __future__ import annotations

import time

import pytest

from labapp.engine.errors import WrongAnswer
from labapp.lessons.l09_testing import runner
from labapp.lessons.l09_testing.mutants import MUTANTS, STAGING
from labapp.start import start_lab
from tests.lessons import l09_suite as solution
from tests.lessons.l09_suite import bearer

ALL = set(MUTANTS)


@pytest.fixture(scope="module")
def lab():
    with start_lab("09-testing") as lab:
        yield lab


def suite(*, drop=(), **replace):
    """The solution's suite without the tests named in ``drop``, with ``replace`` swapped in."""
    found = {k: v for k, v in vars(solution).items() if not k.startswith("__")}
    for name in drop:
        del found[name]
    found.update(replace)
    return found


def survivors(lab, tests) -> set[str]:
    try:
        report = lab.grade_tests(tests)
    except WrongAnswer as failed:
        report = failed.report
    assert report.false_alarms == 0, str(report)
    return {row.id for row in report.rows if row.kind == "mutant" and not row.passed}


def test_the_solution_kills_every_mutant(lab):
    report = lab.grade_tests(suite())
    assert report.passed and report.killed == len(MUTANTS) >= 15
    assert "mutation score 18/18" in report.summary()
    rows = {row.id: row for row in report.rows}
    assert "killed by test_broken_tokens_are_refused[alice-expired]" in rows["no-exp"].observed
    assert "killed by test_any_token_bytes_get_401" in rows["token-crash"].observed
    assert "killed by test_search_accepts_any_text" in rows[STAGING].observed


# -- the gaps the issue names ---------------------------------------------------------------


def test_happy_path_only_kills_nothing(lab):
    def test_my_note(api, tokens, notes):
        r = api.get(f"/notes/{notes['alice']}", headers=bearer(tokens["alice"]))
        assert r.status_code == 200

    def test_admin_lists_users(api, tokens):
        assert api.get("/admin/users", headers=bearer(tokens["carol"])).status_code == 200

    happy = {
        "test_health_is_public": solution.test_health_is_public,
        "test_sign_in_and_refresh": solution.test_sign_in_and_refresh,
        "test_my_note": test_my_note,
        "test_admin_lists_users": test_admin_lists_users,
        "sign_in": solution.sign_in,
    }
    assert survivors(lab, happy) == ALL


OWN_ONLY = [row for row in solution.MATRIX if row[3] != "other"]


@pytest.mark.parametrize(("who", "method", "route", "whose", "status"), OWN_ONLY)
def _own_only_matrix(api, tokens, who, method, route, whose, status):
    solution.test_permission_matrix(api, tokens, who, method, route, whose, status)


def test_no_other_user_test_leaves_ownership_bugs_alive(lab):
    tests = suite(
        drop=["test_refused_edit_changes_nothing", "test_list_holds_only_my_notes"],
        test_permission_matrix=_own_only_matrix,
    )
    alive = {"bola-read", "list-filter", "check-after-write", "support-delete"}
    assert survivors(lab, tests) == alive


@pytest.mark.parametrize("name", [n for n in solution.BROKEN if n != "alice-expired"])
def _three_broken_tokens(api, tokens, name):
    solution.test_broken_tokens_are_refused(api, tokens, name)


def test_no_expired_token_test_leaves_no_exp_alive(lab):
    assert survivors(lab, suite(test_broken_tokens_are_refused=_three_broken_tokens)) == {"no-exp"}


def test_status_not_200_passes_on_a_500(lab):
    from hypothesis import given

    @given(raw=solution.VISIBLE_HEADER_BYTES.map(bytes))
    def not_200(api, raw):
        r = api.get("/me", headers={"Authorization": b"Bearer " + raw})
        assert r.status_code != 200  # a 500 passes this

    assert survivors(lab, suite(test_any_token_bytes_get_401=not_200)) == {"token-crash"}


def test_status_only_checks_leave_body_bugs_alive(lab):
    def me_status(api, tokens):
        assert api.get("/me", headers=bearer(tokens["alice"])).status_code == 200

    def list_status(api, tokens):
        for route in ("/notes", "/export"):
            assert api.get(route, headers=bearer(tokens["alice"])).status_code == 200

    def login_status(api):
        for name in ("nobody", "alice"):
            r = api.post("/login", json={"username": name, "password": "x"})
            assert r.status_code == 401

    def edit_status(api, tokens, notes):
        route = f"/notes/{notes['bob']}"
        r = api.patch(route, json={"title": "x"}, headers=bearer(tokens["alice"]))
        assert r.status_code == 404

    tests = suite(
        test_me_shows_no_secrets=me_status,
        test_list_holds_only_my_notes=list_status,
        test_login_failures_look_alike=login_status,
        test_refused_edit_changes_nothing=edit_status,
    )
    assert survivors(lab, tests) == {"me-leak", "list-filter", "login-enum", "check-after-write"}


def test_no_property_test_leaves_the_crash_alive(lab):
    assert survivors(lab, suite(drop=["test_any_token_bytes_get_401"])) == {"token-crash"}


def test_no_regression_test_leaves_staging_alive(lab):
    assert survivors(lab, suite(drop=["test_search_accepts_any_text"])) == {STAGING}


# -- false alarms ---------------------------------------------------------------------------


def test_a_false_alarm_fails_the_grade_and_kills_nothing(lab):
    def test_other_note_is_forbidden(api, tokens, notes):  # the API answers 404, not 403
        r = api.get(f"/notes/{notes['bob']}", headers=bearer(tokens["alice"]))
        assert r.status_code == 403

    with pytest.raises(WrongAnswer) as failed:
        lab.grade_tests(
            suite(
                drop=["test_permission_matrix"],
                test_other_note_is_forbidden=test_other_note_is_forbidden,
            )
        )
    report = failed.value.report
    alarms = [row for row in report.rows if row.kind == "false alarm"]
    assert [row.id for row in alarms] == ["test_other_note_is_forbidden"]
    assert "assert 404 == 403" in alarms[0].observed or "AssertionError" in alarms[0].observed
    # It fails on bola-read too (200 != 403), but a test that fails on correct code kills
    # nothing: no mutant row names it.
    mutants = [row for row in report.rows if row.kind == "mutant"]
    assert not any("test_other_note_is_forbidden" in row.observed for row in mutants)
    assert {row.id for row in mutants if not row.passed} == {"role-widened", "support-delete"}
    assert "false alarm" in report.summary()


def test_a_broken_property_test_is_a_false_alarm(lab):
    from hypothesis import given
    from hypothesis import strategies as st

    @given(raw=st.binary(max_size=8))  # b"" makes "Bearer ", an illegal header value
    def test_bytes(api, raw):
        r = api.get("/me", headers={"Authorization": b"Bearer " + raw})
        assert r.status_code == 401

    with pytest.raises(WrongAnswer) as failed:
        lab.grade_tests(suite(test_any_token_bytes_get_401=test_bytes))
    rows = {row.id: row for row in failed.value.report.rows}
    assert rows["test_any_token_bytes_get_401"].kind == "false alarm"
    assert not rows["token-crash"].passed


def test_a_look_alike_api_fixture_is_replaced_by_the_graders(lab):
    client = lab.client  # the sound API, whatever the build: would make every mutant survive

    @pytest.fixture
    def api():
        return client

    report = lab.grade_tests(suite(api=api))
    assert report.passed
    assert "your own fixture(s) api: replaced by the lab's" in report.rows[0].observed


def test_grading_settings_reach_a_property_test_defined_earlier(lab):
    """Hypothesis binds a test's settings when @given runs: the grader's (no deadline, a few
    derandomized examples) must still apply, or a slow build is a false alarm."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @given(raw=st.just(b"x"))
    @settings(deadline=200, max_examples=1)
    def test_slow_property(api, raw):
        time.sleep(0.3)  # past its 200 ms deadline (and the 25 % Hypothesis allows) per build
        assert api.get("/me", headers={"Authorization": b"Bearer " + raw}).status_code == 401

    report = lab.grade_tests(suite(test_slow_property=test_slow_property))
    assert report.passed, str(report)
    assert test_slow_property._hypothesis_internal_use_settings.deadline is not None  # put back


# -- bad input ------------------------------------------------------------------------------


def test_no_tests_is_a_clear_row(lab):
    with pytest.raises(WrongAnswer, match="no tests found"):
        lab.grade_tests({"helper": solution.bearer})


def test_a_test_pytest_would_not_collect_is_named(lab):
    def check_health(api):  # takes the fixtures, but pytest only collects test_...
        assert api.get("/health").status_code == 200

    with pytest.raises(WrongAnswer) as failed:
        lab.grade_tests(
            {"test_health": solution.test_health_is_public, "check_health": check_health}
        )
    sound = failed.value.report.rows[0]
    assert "never ran (a test's name starts with test): check_health" in sound.observed


def test_a_test_that_asks_which_build_it_runs_on_is_not_graded(lab):
    """The class of a test that fails wherever it is not on the sound build: it would kill
    every mutant without testing anything (a test, a fixture of the learner's, a method)."""

    def test_knows_the_build(target):
        assert target == "sound"

    @pytest.fixture
    def which(target):
        return target

    class TestPeeks:
        def test_it(self, api, target):
            assert target == "sound"

    for cheat in (
        {"test_knows_the_build": test_knows_the_build},
        {"which": which, "test_health": solution.test_health_is_public},
        {"TestPeeks": TestPeeks},
    ):
        with pytest.raises(WrongAnswer, match="asks which build it runs on") as failed:
            lab.grade_tests(suite(**cheat))
        assert "not graded" in failed.value.report.summary()

    def hit(api, token, target):  # a helper whose target is a route: graded as usual
        return api.get(target, headers=bearer(token))

    assert lab.grade_tests(suite(hit=hit)).passed


def test_a_wrong_argument_is_a_clear_error(lab):
    with pytest.raises(TypeError, match="grade_tests\\(\\) takes nothing"):
        lab.grade_tests(42)


def test_a_stuck_suite_is_stopped(lab, monkeypatch):
    monkeypatch.setattr(runner, "DEADLINE", 1.0)

    def test_slow(api):
        time.sleep(0.6)

    started = time.monotonic()
    with pytest.raises(WrongAnswer):
        lab.grade_tests({"test_slow": test_slow})
    assert time.monotonic() - started < 10  # 19 builds x 0.6 s would be 11 s


def test_fixtures_need_a_running_lab(monkeypatch):
    from labapp.lessons.l09_testing import fixtures

    monkeypatch.setattr(fixtures, "LESSON_ID", "99-not-started")
    with pytest.raises(RuntimeError, match="start_lab"):
        fixtures._lab()
