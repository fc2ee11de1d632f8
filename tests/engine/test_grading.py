"""Grading: rows, verdicts and the report a grader cell shows."""

from __future__ import annotations

import httpx

from labapp import Lab
from labapp.engine.grading import Attack, Check, Observed, Report, Row, run_item


def _attack(run, **kw) -> Attack:
    return Attack("probe", "a probing attack", ("first hint", "second hint"), run, **kw)


def test_a_blocked_attack_passes_and_a_breach_fails_with_its_fix(lab01: Lab) -> None:
    """An attack row passes when the request was refused; when not, it says the defense
    granted too much and gives the fix, never the attacker's hints."""
    blocked = run_item(lab01, _attack(lambda lab, http: Observed(False, 401)))
    breached = run_item(
        lab01, _attack(lambda lab, http: Observed(True, 200, "GET /orders"), fix="check roles")
    )
    bare = run_item(lab01, _attack(lambda lab, http: Observed(True, 200)))
    assert blocked.passed and not breached.passed
    assert breached.hint == "check roles"
    assert "first hint" not in bare.hint and "4xx" in bare.hint
    assert "got through (HTTP 200): GET /orders" in breached.observed
    assert breached.why() == "granted too much: the attack got through"
    message = Report("t", [breached]).breach_message()
    assert "probe (granted too much: the attack got through)" in message


def test_a_crash_on_an_attack_keeps_the_fix_the_row_teaches(lab01: Lab) -> None:
    """A 500 says: don't crash, and the lesson's fix for this row (e.g. pin the algorithm)."""
    lab01.defend(authorize=lambda req: {}["boom"])

    def run(lab: Lab, http: httpx.Client) -> Observed:
        return Observed(False, http.get("/orders").status_code)

    row = run_item(lab01, _attack(run, fix="pin algorithms=['RS256']"))
    assert not row.passed
    assert row.why() == "crashed (5xx) on an attack"
    assert "not raise or hang" in row.hint
    assert "the fix this row teaches: pin algorithms=['RS256']" in row.hint
    legit = run_item(lab01, Check("legit", "a real user", lambda lab, http: run(lab, http)))
    assert legit.why() == "crashed (5xx) on a real user's request"
    assert "denying too much" not in legit.hint  # a crash is not over-denial


def test_a_5xx_is_never_a_pass(lab01: Lab) -> None:
    """Even when the attack 'did not get through', a server error along the way fails it."""
    lab01.defend(authorize=lambda req: {}["boom"])

    def run(lab: Lab, http: httpx.Client) -> Observed:
        response = http.get("/orders")
        return Observed(False, response.status_code)

    row = run_item(lab01, _attack(run))
    assert not row.passed
    assert "server error (HTTP 500)" in row.observed and "5xx is never a pass" in row.observed
    assert "authorize() raised: KeyError" in row.observed


def test_a_transport_error_is_a_rejection_only_where_the_lesson_says_so(lab01: Lab) -> None:
    """A dropped connection fails an attack row unless the attack declares it a block (TLS)."""

    def run(lab: Lab, http: httpx.Client) -> Observed:
        http.get("http://127.0.0.1:1/")  # nothing listens on port 1
        return Observed(True, 200)

    assert not run_item(lab01, _attack(run)).passed
    assert run_item(lab01, _attack(run, transport_error_blocks=True)).passed
    assert not run_item(lab01, Check("legit", "a real user", run)).passed


def test_a_legit_check_passes_only_when_the_request_worked(lab01: Lab) -> None:
    """Denying a real user fails the legitimate row, with a hint about over-denying."""
    ok = run_item(lab01, Check("legit", "a real user", lambda lab, http: Observed(True, 200)))
    refused = run_item(lab01, Check("legit", "a real user", lambda lab, http: Observed(False, 403)))
    assert ok.passed and not refused.passed
    assert "denying too much" in refused.hint
    assert refused.why() == "denied too much: a real user was refused"


def test_the_report_renders_as_text_and_as_escaped_html() -> None:
    """Text for terminals, an HTML table for JupyterLab, with learner strings escaped."""
    report = Report(
        "demo",
        [
            Row("attack", "a<b>", "x", "blocked (4xx)", "got through (HTTP 200)", False, "h<i>"),
            Row("legit", "ok", "y", "works (2xx)", "worked (HTTP 200)", True),
        ],
        log=["INFO <script>"],
    )
    text = str(report)
    assert text.startswith("demo: 1/2 checks passed")
    assert "FAIL  [attack] a<b>" in text and "PASS  [legit] ok" in text
    html = report._repr_html_()
    assert "a&lt;b&gt;" in html and "h&lt;i&gt;" in html and "<script>" not in html
    assert "Server log" in html and "Server log" in text  # a failure: the log may explain it
    passing = Report("demo", [report.rows[1]], log=["INFO <script>"])
    assert "Server log" not in str(passing)
    assert "✗ [attack] a<b>" in report.breach_message()
    assert not report.passed and [row.id for row in report.failures] == ["a<b>"]


def test_a_check_that_cannot_read_the_answer_fails_its_row_only(lab01: Lab) -> None:
    """An unexpected answer (not JSON, say) fails that row instead of crashing the grader."""

    def run(lab: Lab, http: httpx.Client) -> Observed:
        http.get("/health").json()["no-such-key"]
        return Observed(False, 401)

    row = run_item(lab01, _attack(run))
    assert not row.passed and "could not complete: KeyError" in row.observed
    assert not run_item(lab01, Check("legit", "a real user", run)).passed


def test_a_crash_on_the_way_to_a_breach_keeps_the_rows_own_advice(lab01: Lab) -> None:
    """A hook that crashed once and let the attack through later: both lessons are shown."""
    calls = []

    def flaky(req):
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("boom")
        return True

    lab01.defend(authorize=flaky)

    def run(lab: Lab, http: httpx.Client) -> Observed:
        http.get("/orders")  # 500: the first call crashes
        return Observed(True, http.get("/orders").status_code)  # then it lets anyone in

    row = run_item(lab01, _attack(run, fix="deny by default"))
    assert not row.passed
    assert row.hint.startswith("your hook must return an answer") and "deny by default" in row.hint
    blocked = run_item(
        lab01, _attack(lambda lab, http: Observed(False, http.get("/x").status_code))
    )
    assert "deny by default" not in blocked.hint


def test_a_shown_report_is_not_repeated_by_the_error_but_its_message_stays_whole() -> None:
    """In a notebook the report is displayed, then IPython renders the error in one line;
    str() (what nbval and labapp grade read) keeps every failing row and hint."""
    from labapp.engine.errors import DefenseBreached

    rows = [
        Row("attack", "sniff", "d", "blocked (4xx)", "got through", False, "fix it"),
        Row("legit", "login", "d", "works (2xx)", "worked", True, ""),
    ]
    report = Report("07 defense", rows)
    breach = DefenseBreached(report.breach_message(), report)
    assert "hint: fix it" in str(breach)
    assert breach._render_traceback_() == [f"DefenseBreached: {breach}"]  # not shown: all
    breach.shown = True
    (line,) = breach._render_traceback_()
    assert line == "DefenseBreached: 07 defense: 1/2 checks passed; failing: sniff (see above)"
    assert "hint: fix it" in str(breach)
