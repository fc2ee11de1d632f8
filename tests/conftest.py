"""Shared fixtures: real labs on real loopback sockets, stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from labapp import Lab, start_lab

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
    """Run the solution notebook's cell that defines ``defines`` and return its namespace.

    Tests use the very code the solution notebook shows, so the two cannot drift apart.
    """
    nb = nbformat.read(ROOT / "solutions" / notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and f"def {defines}(" in cell.source:
            namespace: dict[str, Any] = dict(given)
            exec(compile(cell.source, f"{notebook}:{defines}", "exec"), namespace)  # noqa: S102
            return namespace
    raise LookupError(f"no cell of {notebook} defines {defines}()")
