"""Lesson 11 (work in progress): the lab serves the learner's app; the first battery groups
fail the unprotected baseline and pass the model answer; a model with one protection left
out fails that protection's rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

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


def test_nothing_mounted_answers_what_to_do(lab11: Lab) -> None:
    r = lab11.client.get("/health")
    assert r.status_code == 503 and "lab.mount(build_app)" in r.json()["detail"]
    assert lab11.url.startswith("https://")


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
    assert {a.id for a in ATTACKS} | {"hsts"} == failing(lab11, baseline)


def test_the_model_answer_passes_every_row(lab11: Lab) -> None:
    assert failing(lab11, l11_model.build_app) == set()


def _without_headers(kit: Any) -> FastAPI:
    app = l11_model.build_app(kit)
    app.user_middleware.clear()  # the security headers middleware, left out
    app.middleware_stack = None
    return app


def test_leaving_out_the_security_headers_fails_hsts_only(lab11: Lab) -> None:
    assert failing(lab11, _without_headers) == {"hsts"}
