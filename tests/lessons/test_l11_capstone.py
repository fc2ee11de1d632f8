"""Lesson 11 (work in progress): the lab serves the learner's app; the first battery groups
fail the unprotected baseline and pass the model answer; a model with one protection left
out fails that protection's rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError

from labapp import Lab, start_lab
from labapp.engine.errors import BadHook
from labapp.engine.grading import Attack, run_battery
from labapp.lessons.l11_capstone.baseline import build_app as baseline
from labapp.lessons.l11_capstone.battery import ITEMS
from labapp.lessons.l11_capstone.kit import reset
from tests.lessons import l11_model

ROWS = [item for group in ITEMS.values() for item in group]
ATTACKS = [item for item in ROWS if isinstance(item, Attack)]


@pytest.fixture
def lab11() -> Iterator[Lab]:
    with start_lab("11-capstone") as lab:
        yield lab


def failing(lab: Lab, build_app: Any) -> set[str]:
    reset(lab.kit.db_path)
    lab.mount(build_app)
    checks = [item for item in ROWS if not isinstance(item, Attack)]
    report = run_battery(lab, ATTACKS, checks, "capstone")
    return {row.id for row in report.failures}


def test_the_lab_starts_with_the_unprotected_api(lab11: Lab) -> None:
    """Before lab.mount, the baseline answers (over HTTPS): explore and attack it first."""
    assert lab11.url.startswith("https://")
    assert lab11.client.get("/health").json() == {"status": "ok"}
    assert len(lab11.client.get("/documents").json()) == 3  # nobody asked who you are


@pytest.mark.parametrize(
    ("build_app", "said"),
    [
        (lambda: None, "must accept (kit)"),
        (lambda kit: 1 / 0, "ZeroDivisionError"),
        (lambda kit: "app", "must return the FastAPI app"),
    ],
)
def test_a_build_app_that_cannot_serve_is_refused_clearly(lab11: Lab, build_app, said) -> None:
    with pytest.raises(BadHook, match=re.escape(said)):
        lab11.mount(build_app)


def test_the_baseline_fails_every_attack(lab11: Lab) -> None:
    # Unprotected, not broken: it answers malformed input with a 4xx (the course's labs never
    # answer 5xx), so only the rows about protection fail.
    expected = {a.id for a in ATTACKS} | {"hsts", "security-events"}
    assert failing(lab11, baseline) == expected


def test_the_model_answer_passes_every_row(lab11: Lab) -> None:
    assert failing(lab11, l11_model.build_app) == set()


def _without_headers(kit: Any) -> FastAPI:
    app = l11_model.build_app(kit)
    app.user_middleware.clear()  # the security headers middleware, left out
    app.middleware_stack = None
    return app


def test_leaving_out_the_security_headers_fails_hsts_only(lab11: Lab) -> None:
    assert failing(lab11, _without_headers) == {"hsts"}


def test_the_grader_finds_what_fastapis_own_422_does_to_a_lone_surrogate(lab11: Lab) -> None:
    """The malformed-input row found two crashes in the first model answer: a 40-digit id
    (SQLite holds 64 bits) and a lone surrogate, which FastAPI's own 422 echoes into a 500."""

    def without_handler(kit: Any) -> FastAPI:
        app = l11_model.build_app(kit)
        # FastAPI's own handler back in place of the model's
        app.exception_handlers[RequestValidationError] = request_validation_exception_handler
        return app

    assert failing(lab11, without_handler) == {"malformed-input"}


def test_events_without_the_log_fail_the_events_row_only(lab11: Lab) -> None:
    class Quiet:
        """The kit, with an audit that writes nothing."""

        def __init__(self, kit: Any) -> None:
            self.kit = kit

        def __getattr__(self, name: str) -> Any:
            return getattr(self.kit, name)

        def audit(self, kind: str, **fields: Any) -> None:
            return None

    assert failing(lab11, lambda kit: l11_model.build_app(Quiet(kit))) == {"security-events"}


def test_the_threat_model_is_graded_route_by_route(lab11: Lab) -> None:
    from labapp import WrongAnswer
    from labapp.lessons.l11_capstone.threat import TRUTH

    right = {r: dict(zip(("asset", "credential", "who"), t, strict=True)) for r, t in TRUTH.items()}
    assert lab11.check_answer("threat-model", right).passed
    wrong = {**right, "GET /admin/users": {**right["GET /admin/users"], "who": "any user"}}
    wrong.pop("POST /logout")
    with pytest.raises(WrongAnswer) as failed:
        lab11.check_answer("threat-model", wrong)
    assert {row.id for row in failed.value.report.failures} == {"GET /admin/users", "POST /logout"}


LEFT_OUT = {  # one protection of the model answer left out -> the rows that must fail
    "deny-by-default": {"added-route"},
    "lifetime": {"forged-tokens"},
    "scopes": {"bfla"},
    "owner-filter": {"list-filter"},
    "response-model": {"data-exposure"},
    "rotation": {"refresh-rotation", "refresh-race", "security-events"},  # no reuse, no event
    "jti-denylist": {"after-logout"},
    "short-lived": {"token-lifetime", "forged-tokens"},  # hour-long tokens, and accepted
    "ascii-titles": {"schemathesis"},  # a crash only generated input reaches
}


@pytest.mark.parametrize("protection", list(LEFT_OUT))
def test_leaving_out_one_protection_fails_its_rows(lab11: Lab, protection: str) -> None:
    def build_app(kit: Any) -> FastAPI:
        return l11_model.build_app(kit, leave_out=frozenset({protection}))

    assert failing(lab11, build_app) == LEFT_OUT[protection]


def test_a_route_that_crashes_on_what_its_schema_allows_is_found(lab11: Lab) -> None:
    """Without the path bound, a 40-digit document id overflows SQLite: a 500."""

    def unbounded(kit: Any) -> FastAPI:
        original = l11_model.DocumentId
        l11_model.DocumentId = int
        try:
            return l11_model.build_app(kit)
        finally:
            l11_model.DocumentId = original

    assert failing(lab11, unbounded) >= {"malformed-input"}
