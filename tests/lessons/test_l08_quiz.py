"""Lesson 08's quiz ``choose-scheme``: six systems, a scheme and a reason each. The right
answer passes; each wrong scheme fails its own row, each thin reason its own row with the
missing idea asked as a question; a list of every keyword fails; a wrong shape is one row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from labapp.engine.errors import WrongAnswer
from labapp.engine.lab import Lab, start
from labapp.lessons.l08_oauth import LESSON
from labapp.lessons.l08_oauth.quiz import (
    SCENARIOS,
    SCHEMES,
    Idea,
    argues_for,
    covers,
    grade_choice,
)
from tests.conftest import ROOT
from tests.lessons.test_hints import steps_code

# A learner's own words, not the hint's: each reason covers its rubric in other phrases.
RIGHT_CHOICE = {
    "partner-integration": {
        "scheme": "oauth-client-credentials",
        "reason": "Nobody is there to log in: the partner's server acts on its own behalf, "
        "and its tokens expire within minutes and carry only the scopes it needs.",
    },
    "mobile-app": {
        "scheme": "oauth-code-pkce",
        "reason": "Users sign in at Google or Apple through OpenID Connect, so we never see "
        "their passwords; a phone app cannot keep a client secret, hence PKCE.",
    },
    "service-to-service": {
        "scheme": "mtls",
        "reason": "Each workload has a certificate from our internal CA and proves it on "
        "every connection; its private key never leaves it, so nothing can be replayed.",
    },
    "public-read-api": {
        "scheme": "api-key",
        "reason": "Timetables are public data with no user accounts; a key tells us which "
        "app calls so that we can enforce quotas.",
    },
    "admin-tool": {
        "scheme": "jwt-session",
        "reason": "The same team holds the accounts and runs the API, so there is no third "
        "party; after login the tool signs a short-lived token and validates it itself.",
    },
    "b2b-platform": {
        "scheme": "oauth-code-pkce",
        "reason": "Employees log in with their company's IdP through OIDC single sign-on, "
        "and the customer offboards a leaver in one place, under its own MFA policy.",
    },
}
ROW_IDS = [f"{scenario}:{part}" for scenario in SCENARIOS for part in ("scheme", "reason")]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    running = start(LESSON)
    try:
        yield running
    finally:
        running.stop()


def answer_with(scenario: str, **change: str) -> dict[str, Any]:
    """The right answer with one scenario's scheme or reason changed."""
    return {**RIGHT_CHOICE, scenario: {**RIGHT_CHOICE[scenario], **change}}


def failures(answer: Any) -> list[str]:
    return [row.id for row in grade_choice(None, answer) if not row.passed]


def test_the_quiz_has_the_six_systems_of_the_issue() -> None:
    """Partner integration, mobile app with third-party login, service-to-service, public
    read-only API, internal admin tool, B2B platform; each scheme is right at least once."""
    assert list(SCENARIOS) == [
        "partner-integration",
        "mobile-app",
        "service-to-service",
        "public-read-api",
        "admin-tool",
        "b2b-platform",
    ]
    assert {scenario.scheme for scenario in SCENARIOS.values()} == set(SCHEMES)


def test_the_right_schemes_and_reasons_pass_the_quiz(lab: Lab) -> None:
    report = lab.check_answer("choose-scheme", RIGHT_CHOICE)
    assert report.passed and [row.id for row in report.rows] == ROW_IDS


@pytest.mark.parametrize(
    ("scenario", "wrong"),
    [
        ("partner-integration", "api-key"),  # a long-lived shared secret
        ("mobile-app", "jwt-session"),  # the app does not hold the accounts
        ("service-to-service", "oauth-client-credentials"),  # bearer tokens between your own
        ("public-read-api", "oauth-client-credentials"),  # a protocol that protects nothing
        ("admin-tool", "oauth-code-pkce"),  # an authorization server for a party not there
        ("b2b-platform", "jwt-session"),  # you do not hold the employees' accounts
        ("mobile-app", "oauth"),  # not one of the schemes
    ],
)
def test_a_wrong_scheme_fails_its_own_row_only(lab: Lab, scenario: str, wrong: str) -> None:
    with pytest.raises(WrongAnswer) as caught:
        lab.check_answer("choose-scheme", answer_with(scenario, scheme=wrong))
    (row,) = caught.value.report.failures
    assert row.id == f"{scenario}:scheme" and row.id in str(caught.value)
    if wrong in SCHEMES:
        assert row.hint == "who holds the account, who calls, and is a user in the loop?"
    else:
        assert row.hint.startswith("choose one of api-key, jwt-session")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize(
    "reason",
    ["", "   ", "It is the most secure option and the industry standard.", "OAuth, obviously."],
)
def test_a_right_scheme_with_an_empty_or_irrelevant_reason_fails_its_reason_row(
    scenario: str, reason: str
) -> None:
    """Each missed idea comes back as its question, and the question gives no phrase away."""
    (row,) = [r for r in grade_choice(None, answer_with(scenario, reason=reason)) if not r.passed]
    assert row.id == f"{scenario}:reason"
    rubric = SCENARIOS[scenario].rubric
    assert row.hint == " ".join(idea.question for idea in rubric)
    assert row.observed == ("empty" if not reason.strip() else f"covers 0 of {len(rubric)} ideas")
    assert row.why() == "the reason misses an idea"


@pytest.mark.parametrize(
    ("scenario", "half", "missed"),
    [
        ("partner-integration", "No user is present; the job runs on the partner's side.", 1),
        ("mobile-app", "It is a public client, so the code needs PKCE.", 0),
        ("service-to-service", "Both services hold certificates from our CA.", 1),
        ("public-read-api", "We need to rate-limit callers.", 0),
        ("admin-tool", "Short-lived signed tokens are enough.", 0),
        ("b2b-platform", "They sign in with OIDC and we get an ID token.", 1),
    ],
)
def test_a_reason_that_covers_half_the_rubric_asks_the_missing_question(
    scenario: str, half: str, missed: int
) -> None:
    (row,) = [r for r in grade_choice(None, answer_with(scenario, reason=half)) if not r.passed]
    assert row.id == f"{scenario}:reason" and row.observed == "covers 1 of 2 ideas"
    assert row.hint == SCENARIOS[scenario].rubric[missed].question


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("partner-integration", "Machine-to-machine, no end-users; SCOPED tokens we can revoke."),
        ("partner-integration", "Server-to-server and unattended: access tokens expire fast."),
        ("mobile-app", "Federated login (ID tokens); the binary can be decompiled, so no secret."),
        ("mobile-app", "The app can’t keep a secret (PKCE), and the identity provider holds it."),
        ("service-to-service", "mTLS: both ends authenticate; it's proof-of-possession."),
        ("service-to-service", "Workload identities from our mesh; no bearer tokens to steal."),
        ("public-read-api", "Read-only open data; keys let us throttle and meter usage."),
        ("public-read-api", "Nothing sensitive here, we just identify callers for billing."),
        ("admin-tool", "First-party app with its own user store; it verifies its tokens."),
        ("admin-tool", "No SSO and no other party: short lived sessions signed with its key."),
        ("b2b-platform", "SSO via each customer's IdPs; they deprovision leavers centrally."),
        ("b2b-platform", "Their identity providers hold the passwords; they keep control."),
        # plain English a newcomer wrote in the lesson's walkthrough
        (
            "mobile-app",
            "Google and Apple hold the users' accounts and tell our app who logged "
            "in; the app can't keep a client secret, so PKCE proves the code is its own.",
        ),
        (
            "service-to-service",
            "Both services have certificates; a captured request has "
            "nothing to reuse, the key that proves identity stays on each service.",
        ),
        (
            "b2b-platform",
            "Employees sign in with their company's identity provider; when "
            "someone quits, the company removes them there and they are out of our app too.",
        ),
    ],
)
def test_a_reason_in_other_words_passes(scenario: str, reason: str) -> None:
    """Case, plurals, hyphens and typographic apostrophes do not matter."""
    assert failures(answer_with(scenario, reason=reason)) == []


@pytest.mark.parametrize(
    ("phrase", "text", "covered"),
    [
        ("no end user", "There are No End-Users here.", True),  # case, hyphen, plural
        ("short lived", "shortlived tokens", True),  # a hyphen dropped altogether
        ("short lived", "short-lived tokens", True),
        ("no other party", "there are no other parties", True),  # y -> ies
        ("own key", "signed with its own keys", True),  # y -> ys
        ("can t keep", "a phone app can’t keep it", True),  # a typographic apostrophe
        ("revo*", "tokens we can revoke", True),  # a prefix
        ("revo*", "irrevocable", False),  # a prefix starts a word
        ("no user", "no username field", False),  # whole words
        ("ca", "we can", False),
        ("read only", "a readonly API", True),  # two words written as one
    ],
)
def test_a_phrase_matches_words_not_letters(phrase: str, text: str, covered: bool) -> None:
    assert covers(text, Idea("?", (phrase,))) is covered


def test_a_list_of_every_keyword_fails_every_reason_row() -> None:
    """A reason that covers the rubric of every scheme argues for none."""
    dump = " ".join(
        idea.phrases[0].rstrip("*") for scenario in SCENARIOS.values() for idea in scenario.rubric
    )
    assert argues_for(dump) == set(SCHEMES)
    answer = {scenario: {**given, "reason": dump} for scenario, given in RIGHT_CHOICE.items()}
    rows = [row for row in grade_choice(None, answer) if not row.passed]
    assert [row.id for row in rows] == [f"{scenario}:reason" for scenario in SCENARIOS]
    assert all(row.why() == "a list of keywords, not a reason" for row in rows)


def test_a_reason_may_contrast_one_other_scheme() -> None:
    """Naming why one other scheme would also do (or not) is a reason, not a keyword list."""
    reason = (
        RIGHT_CHOICE["public-read-api"]["reason"]
        + " No user is in the loop either, and short-lived tokens would add nothing."
    )
    assert argues_for(reason) == {"api-key", "oauth-client-credentials"}
    assert failures(answer_with("public-read-api", reason=reason)) == []


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_each_rubric_is_met_by_its_explanation_and_asked_without_its_words(
    scenario: str,
) -> None:
    """The explanation shown for a right scheme covers its own rubric and argues for at most
    one other scheme; no question of the rubric already holds one of its idea's phrases."""
    system = SCENARIOS[scenario]
    assert all(covers(system.why, idea) for idea in system.rubric)
    assert len(argues_for(system.why) - {system.scheme}) <= 1
    for idea in system.rubric:
        assert idea.question.endswith("?") and not covers(idea.question, idea)


@pytest.mark.parametrize(
    ("answer", "observed"),
    [
        ("oauth-code-pkce", "a str"),
        (["api-key"], "a list"),
        (
            {scenario: value["scheme"] for scenario, value in RIGHT_CHOICE.items()},
            "answer['partner-integration'] is a str",
        ),
        (
            {**RIGHT_CHOICE, "mobile-app": {"scheme": "oauth-code-pkce"}},
            "answer['mobile-app'] has the keys ['scheme']",
        ),
        (
            {**RIGHT_CHOICE, "mobile-app": {**RIGHT_CHOICE["mobile-app"], "grant": "pkce"}},
            "answer['mobile-app'] has the keys ['grant', 'reason', 'scheme']",
        ),
        (
            {**RIGHT_CHOICE, "admin-tool": {"scheme": "jwt-session", "reason": None}},
            "answer['admin-tool']['reason'] is a NoneType",
        ),
        (
            {**RIGHT_CHOICE, "mtls": {"scheme": ["mtls"], "reason": "certificates"}},
            "answer['mtls']['scheme'] is a list",
        ),
    ],
)
def test_a_wrong_shape_is_one_format_row(lab: Lab, answer: Any, observed: str) -> None:
    with pytest.raises(WrongAnswer, match="format") as caught:
        lab.check_answer("choose-scheme", answer)
    (row,) = caught.value.report.rows
    assert (row.id, row.observed) == ("format", observed)
    assert "'reason'" in row.hint and "oauth-client-credentials" in row.hint


def test_a_missing_scenario_or_an_unknown_one_fails(lab: Lab) -> None:
    partial = {k: v for k, v in RIGHT_CHOICE.items() if k != "partner-integration"}
    extra = {"scheme": "oauth-code-pkce", "reason": "PKCE for a public client."}
    with pytest.raises(WrongAnswer) as caught:
        lab.check_answer("choose-scheme", {**partial, "spa": extra})
    assert [row.id for row in caught.value.report.failures] == [
        "partner-integration:scheme",
        "partner-integration:reason",
        "spa",
    ]


def test_the_quiz_ladder_cites_the_bcp_and_its_steps_pass(lab: Lab) -> None:
    nudge, technique, steps = LESSON.all_hints()["choose-scheme"]
    assert "RFC 9700" in technique and "OWASP" in technique
    for scheme in SCHEMES:
        assert scheme not in nudge
    assert re.match(r"1\. .*\n2\. .*\n3\. .*\n4\. ", steps)
    code = steps_code(steps)
    assert code.strip().endswith('lab.check_answer("choose-scheme", choice)')
    namespace: dict[str, Any] = {"lab": lab}
    exec(compile(code, "<steps choose-scheme>", "exec"), namespace)  # noqa: S102
    choice = namespace["choice"]
    assert {k: v["scheme"] for k, v in choice.items()} == {
        k: v["scheme"] for k, v in RIGHT_CHOICE.items()
    }
    assert all(choice[k]["reason"] != RIGHT_CHOICE[k]["reason"] for k in SCENARIOS)


def test_the_notebook_states_every_scheme_and_system() -> None:
    """The quiz cell shows the very systems the grader grades, and every scheme's id."""
    nb = nbformat.read(ROOT / "solutions" / LESSON.notebook, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    assert all(f'`"{scheme}"`' in text for scheme in SCHEMES)
    for scenario, system in SCENARIOS.items():
        assert f"| `{scenario}` | {system.system.lower()}. |" in text
