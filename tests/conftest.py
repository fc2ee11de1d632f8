"""Shared fixtures: real labs on real loopback sockets, stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labapp import Lab, authoring, start_lab

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def lab01() -> Iterator[Lab]:
    with start_lab("01-unprotected") as lab:
        yield lab


@pytest.fixture
def lab00() -> Iterator[Lab]:
    with start_lab("00-welcome") as lab:
        yield lab


def solution_namespace(notebook: str, defines: str, **given: Any) -> dict[str, Any]:
    """The namespace of the solution notebook's cell that defines ``defines()``."""
    return authoring.solution_namespace(ROOT / "solutions" / notebook, defines, **given)
