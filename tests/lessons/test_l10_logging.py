"""Lesson 10: the log's rows, the detection quiz and the risk quiz, each graded with the
solution notebook's answer and with the wrong answers a learner plausibly writes."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from labapp import Lab, WrongAnswer, start_lab
from labapp.engine.errors import DefenseBreached
from labapp.engine.grading import run_item
from labapp.lessons.l10_logging import LESSON
from labapp.lessons.l10_logging.people import country
from labapp.lessons.l10_logging.replay import run_day
from labapp.lessons.l10_logging.traffic import KINDS, day
from labapp.lessons.l10_logging.trials import NORMAL_SHARES, logins
from tests.conftest import solution_namespace

NOTEBOOK = "10-log-detect-adapt.ipynb"
EVENT_ROWS = {check.id for check in LESSON.checks if check.id.startswith("logged-")}


@pytest.fixture
def lab10() -> Iterator[Lab]:
    with start_lab("10-log-detect") as lab:
        yield lab


def solution(name: str, lab: Lab | None = None) -> Callable[..., Any]:
    return solution_namespace(NOTEBOOK, name, lab=lab)[name]


def failing_rows(lab: Lab) -> set[str]:
    try:
        lab.grade()
    except DefenseBreached as breach:
        return {row.id for row in breach.report.failures}
    return set()


def quiz_failures(lab: Lab, quiz: str, answer: Any) -> dict[str, str]:
    """The failing rows of a quiz (id -> observed), or {} when it passes."""
    try:
        lab.check_answer(quiz, answer)
    except WrongAnswer as wrong:
        return {row.id: row.observed for row in wrong.report.failures}
    return {}


# -- the traffic --------------------------------------------------------------------------


def test_a_seed_makes_the_same_day_and_another_seed_another() -> None:
    first, again, other = day(11), day(11), day(12)
    assert first.steps == again.steps and first.truth == again.truth
    assert first.steps != other.steps
    assert set(first.truth) == set(KINDS)
    assert len(first.truth["stuffing"]) == 40 and all(len(first.truth[k]) == 2 for k in KINDS[1:])
    assert logins(3).trials == logins(3).trials and logins(3).trials != logins(4).trials


def test_the_owners_logins_come_in_fixed_shares() -> None:
    """The friction budget means the same on every seed: the shares are counts, not odds."""
    for seed in (1, 2):
        made = logins(seed)
        profiles = [trial.profile for trial in made.trials if not trial.attack]
        assert {p: profiles.count(p) for p in NORMAL_SHARES} == NORMAL_SHARES
        assert sum(trial.attack for trial in made.trials) == 40


def test_the_geo_table_covers_only_documentation_addresses() -> None:
    assert country("192.0.2.1") == "NL" and country("203.0.113.250") == "MX"
    assert country("8.8.8.8") == "??" and country("not an address") == "??"


def test_a_replayed_day_logs_the_same_events_for_its_seed(lab10: Lab) -> None:
    lab10.defend(audit_event=solution("audit_event"))
    desk = lab10.server.app.state.desk
    runs = [run_day(lab10.url, desk, lab10.workdir, 5) for _ in range(2)]

    def shape(run: Any) -> list[tuple]:
        return [(e["time"], e["kind"], e["who"], e["client"], e["reason"]) for e in run.events]

    assert shape(runs[0]) == shape(runs[1]) and len(runs[0].events) > 300
    assert not runs[0].server_errors and not runs[0].bad_lines


# -- lab.grade(): the log -------------------------------------------------------------------


@pytest.mark.parametrize("attack", [a.id for a in LESSON.attacks])
def test_each_attack_gets_through_the_weak_log(lab10: Lab, attack: str) -> None:
    item = next(a for a in LESSON.attacks if a.id == attack)
    assert not run_item(lab10, item).passed


def test_the_weak_log_fails_every_event_row_and_loses_nothing(lab10: Lab) -> None:
    assert failing_rows(lab10) == EVENT_ROWS | {a.id for a in LESSON.attacks}


def test_the_solution_log_passes_every_row(lab10: Lab) -> None:
    lab10.defend(audit_event=solution("audit_event"))
    report = lab10.grade()
    assert report.passed and len(report.rows) == len(LESSON.attacks) + len(LESSON.checks)


def _with(extra: Callable[[dict, dict], None]) -> Callable[[str, dict], str]:
    """The solution's event, then one change to it (a plausible mistake)."""

    def audit_event(kind: str, fields: dict) -> str:
        event = json.loads(solution("audit_event")(kind, fields))
        extra(event, fields)
        return json.dumps(event)

    return audit_event


def _headers_but(event: dict, fields: dict) -> None:
    skip = {"authorization", "cookie"}  # a deny-list: the API key header is not on it
    event["headers"] = {k: v for k, v in fields["headers"].items() if k not in skip}


def _password_b64(event: dict, fields: dict) -> None:
    body = fields.get("body") or {}
    if body.get("password"):
        event["password_hint"] = base64.b64encode(body["password"].encode()).decode()


def _password_digest(event: dict, fields: dict) -> None:
    body = fields.get("body") or {}
    if body.get("password"):  # a fast digest of a password: a wordlist reverses it
        event["password_sha256"] = hashlib.sha256(body["password"].encode()).hexdigest()


def _refresh_hashed(event: dict, fields: dict) -> None:
    if fields.get("refresh_token"):  # a digest identifies a token and grants nothing
        event["refresh_sha256"] = hashlib.sha256(fields["refresh_token"].encode()).hexdigest()


WRONG_LOGS = {
    "the Authorization header": (
        _with(lambda e, f: e.update(auth=f["headers"].get("authorization"))),
        {"secrets-in-log"},
    ),
    "everything it was given": (
        _with(lambda e, f: e.update({k: v for k, v in f.items() if k != "time"})),
        {"secrets-in-log", "log-leak"},
    ),
    "the tokens handed out": (
        _with(lambda e, f: e.update(access_token=f.get("access_token"))),
        {"secrets-in-log", "log-leak"},
    ),
    "headers but Authorization and Cookie": (_with(_headers_but), {"secrets-in-log"}),
    "the URL": (_with(lambda e, f: e.update(url=f["url"])), {"secrets-in-log"}),
    "the password in base64": (_with(_password_b64), {"secrets-in-log"}),
    "the password's SHA-256": (_with(_password_digest), {"secrets-in-log"}),
    "non-ASCII written as is": (
        lambda kind, fields: json.dumps(
            json.loads(solution("audit_event")(kind, fields)), ensure_ascii=False
        ),
        {"log-injection"},
    ),
    "the time in local time": (
        _with(lambda e, f: e.update(time=datetime.now().isoformat())),
        EVENT_ROWS,
    ),
    "the time from its own clock": (
        _with(lambda e, f: e.update(time=datetime.now(UTC).isoformat())),
        EVENT_ROWS,
    ),
    "a request id of its own": (
        _with(lambda e, f: e.update(request_id=uuid.uuid4().hex)),
        EVENT_ROWS,
    ),
    "who from the body": (  # a request with no body (or no username in it) has nobody
        _with(lambda e, f: e.update(who=(f.get("body") or {}).get("username"))),
        {"logged-authz.denied", "logged-refresh.reuse", "logged-logout"},
    ),
}


@pytest.mark.parametrize("mistake", list(WRONG_LOGS))
def test_a_wrong_log_fails_exactly_its_rows(lab10: Lab, mistake: str) -> None:
    audit_event, rows = WRONG_LOGS[mistake]
    lab10.defend(audit_event=audit_event)
    assert failing_rows(lab10) == rows


def test_a_digest_of_a_token_is_not_a_secret(lab10: Lab) -> None:
    lab10.defend(audit_event=_with(_refresh_hashed))
    assert failing_rows(lab10) == set()


def test_nothing_for_the_second_factor_fails_its_three_rows(lab10: Lab) -> None:
    def audit_event(kind: str, fields: dict) -> str | None:
        return None if kind.startswith("mfa.") else solution("audit_event")(kind, fields)

    lab10.defend(audit_event=audit_event)
    assert failing_rows(lab10) == {
        "logged-mfa.challenge",
        "logged-mfa.failure",
        "logged-mfa.success",
    }


def test_dropping_repeats_loses_the_attack(lab10: Lab) -> None:
    """A 'noise filter' (one event per kind and user a second) drops most of forty logins."""
    seen: dict[tuple, float] = {}

    def audit_event(kind: str, fields: dict) -> str | None:
        key = (kind, fields["username"])
        now = time.monotonic()
        if now - seen.get(key, -10.0) < 1.0:
            return None
        seen[key] = now
        return solution("audit_event")(kind, fields)

    lab10.defend(audit_event=audit_event)
    assert "events-lost" in failing_rows(lab10)


def test_a_log_that_crashes_on_a_missing_user_fails_that_row_as_a_crash(lab10: Lab) -> None:
    def audit_event(kind: str, fields: dict) -> str:
        event = json.loads(solution("audit_event")(kind, fields))
        event["who"] = fields["username"].lower()  # None for a missing or expired token
        return json.dumps(event)

    lab10.defend(audit_event=audit_event)
    with pytest.raises(DefenseBreached) as breach:
        lab10.grade()
    rows = {row.id: row for row in breach.value.report.failures}
    assert set(rows) == {"logged-token.refused"}
    assert "crashed" in rows["logged-token.refused"].why()
    assert "AttributeError" in rows["logged-token.refused"].observed


# -- detect -----------------------------------------------------------------------------------


def _replace(lab: Lab, kind: str, rule: Callable[[list], list]) -> Callable[[list], list]:
    """The solution's detect with one kind's rule swapped for another."""
    right = solution("detect", lab)
    return lambda events: [a for a in right(events) if a["kind"] != kind] + rule(events)


def _per_address(events: list) -> list:
    """The classic threshold: five failures from one address in ten minutes."""
    alerts, recent = [], {}
    for e in events:
        if e["kind"] == "login.failure":
            at = datetime.fromisoformat(e["time"]).timestamp()
            times = [t for t in recent.get(e["client"], []) if at - t < 600] + [at]
            recent[e["client"]] = times
            if len(times) >= 5:
                alerts.append({"kind": "stuffing", "subject": e["client"], "at": e["time"]})
    return alerts


def _spray_at_two(events: list) -> list:
    users: dict[str, set] = {}
    for e in events:
        if e["kind"] == "login.failure":
            users.setdefault(e["client"], set()).add(e["who"])
    return [
        {"kind": "spraying", "subject": c, "at": "2026-11-02T12:00:00Z"}
        for c, names in users.items()
        if len(names) >= 2
    ]


def _brute_per_minute(events: list) -> list:
    alerts, recent = [], {}
    for e in events:
        if e["kind"] == "login.failure":
            at = datetime.fromisoformat(e["time"]).timestamp()
            times = [t for t in recent.get(e["who"], []) if at - t < 60] + [at]
            recent[e["who"]] = times
            if len(times) >= 5:
                alerts.append({"kind": "brute_force", "subject": e["who"], "at": e["time"]})
    return alerts


def _every_reuse(events: list) -> list:
    return [
        {"kind": "token_replay", "subject": e["who"], "at": e["time"]}
        for e in events
        if e["kind"] == "refresh.reuse"
    ]


def _two_countries_ever(events: list) -> list:
    first: dict[str, dict] = {}
    alerts = []
    for e in events:
        if e["kind"] == "login.success":
            before = first.setdefault(e["who"], e)
            if country(before["client"]) != country(e["client"]):
                alerts.append({"kind": "impossible_travel", "subject": e["who"], "at": e["time"]})
    return alerts


WRONG_DETECTORS = {
    "stuffing keyed on one address": ("stuffing", _per_address, "missed"),
    "spraying at two usernames": ("spraying", _spray_at_two, "false alarms"),
    "brute force per minute": ("brute_force", _brute_per_minute, "missed"),
    "every refresh reuse": ("token_replay", _every_reuse, "false alarms"),
    "two countries at any distance in time": (
        "impossible_travel",
        _two_countries_ever,
        "false alarms",
    ),
}


def test_the_solution_rules_pass_on_fresh_days(lab10: Lab) -> None:
    for _ in range(3):
        lab10.check_answer("detect", solution("detect", lab10))


@pytest.mark.parametrize("mistake", list(WRONG_DETECTORS))
def test_a_wrong_rule_fails_its_kind_only(lab10: Lab, mistake: str) -> None:
    kind, rule, why = WRONG_DETECTORS[mistake]
    lab10.defend(audit_event=solution("audit_event"))
    failed = quiz_failures(lab10, "detect", _replace(lab10, kind, rule))
    assert set(failed) == {f"detect-{kind}"}
    assert why in failed[f"detect-{kind}"]


def test_a_misspelled_kind_is_named(lab10: Lab) -> None:
    right = solution("detect", lab10)

    def detect(events: list) -> list:
        return [
            {**a, "kind": "credential_stuffing"} if a["kind"] == "stuffing" else a
            for a in right(events)
        ]

    failed = quiz_failures(lab10, "detect", detect)
    assert set(failed) == {"alert-kinds", "detect-stuffing"}
    assert "credential_stuffing" in failed["alert-kinds"]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (lambda events: 1 / 0, "ZeroDivisionError"),
        (lambda events: {"kind": "stuffing"}, "list of alerts"),
        (lambda events: [("stuffing", "x")], "each alert is a dict"),
        (lambda events: [{"kind": "stuffing", "subject": "x", "at": "noon"}], "ISO 8601"),
        (lambda: [], "detect must accept (events)"),
        ("detect", "must be a function"),
    ],
)
def test_a_broken_detect_gets_a_row_that_says_why(lab10: Lab, answer: Any, said: str) -> None:
    failed = quiz_failures(lab10, "detect", answer)
    assert set(failed) == {"detect"} and said in failed["detect"]


def test_a_log_that_is_not_json_cannot_be_read_by_rules(lab10: Lab) -> None:
    lab10.defend(audit_event=lambda kind, fields: f"{fields['time']} {kind}")
    failed = quiz_failures(lab10, "detect", solution("detect", lab10))
    assert set(failed) == {"day-logged"}
    assert "not a JSON object" in failed["day-logged"] or "lines" in failed["day-logged"]


def test_each_grade_replays_a_new_day_and_draws_it(lab10: Lab) -> None:
    reports = [lab10.check_answer("detect", solution("detect", lab10)) for _ in range(2)]
    assert reports[0].title != reports[1].title
    assert reports[0].png.startswith(b"\x89PNG") and "<img" in reports[0]._repr_html_()
    assert "weak one" in reports[0].note  # rules ran over the lab's own log lines


# -- adapt ------------------------------------------------------------------------------------


def test_the_solution_decision_passes(lab10: Lab) -> None:
    report = lab10.check_answer("adapt", solution("assess_risk"))
    assert report.passed and report.png.startswith(b"\x89PNG")


WRONG_DECISIONS = {
    "step up everyone": (lambda context: "step_up", {"friction"}),
    "step up nobody": (lambda context: "allow", {"attackers-stopped"}),
    "step up every new device": (
        lambda context: "allow" if context["device_known"] else "step_up",
        {"friction"},
    ),
    "step up only abroad": (
        lambda context: "step_up" if context["country"] != context["home_country"] else "allow",
        {"attackers-stopped"},
    ),
    "deny abroad": (
        lambda context: "deny" if context["country"] != context["home_country"] else "allow",
        {"attackers-stopped", "no-lockout"},
    ),
    "a decision that is not one of the three": (lambda context: "maybe", None),
    "a decision that raises": (lambda context: context["risk"], None),
}


@pytest.mark.parametrize("mistake", list(WRONG_DECISIONS))
def test_a_wrong_decision_fails_its_rows(lab10: Lab, mistake: str) -> None:
    assess_risk, rows = WRONG_DECISIONS[mistake]
    failed = quiz_failures(lab10, "adapt", assess_risk)
    if rows is None:  # a crash: every login errs, and the row says what came back
        assert "decisions" in failed
        assert "maybe" in failed["decisions"] or "KeyError" in failed["decisions"]
    else:
        assert set(failed) == rows


def test_the_quiz_puts_the_learners_own_hooks_back(lab10: Lab) -> None:
    mine = solution("audit_event")
    lab10.defend(audit_event=mine)
    lab10.check_answer("adapt", solution("assess_risk"))
    assert lab10.state.hooks["audit_event"] is mine
    assert lab10.state.is_weak("assess_risk")
