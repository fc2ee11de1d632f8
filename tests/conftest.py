"""Shared fixtures: real labs on real loopback sockets, stopped after each test."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labapp import Lab, start_lab
from labapp.tools import authoring

ROOT = Path(__file__).resolve().parents[1]

# Progress goes to a throwaway file, never into the repository (or a learner's real file):
# set at import, before any test runs, so the kernels nbval and nbclient start inherit it.
_PROGRESS_DIR = tempfile.mkdtemp(prefix="labapp-test-progress-")
os.environ["LABAPP_PROGRESS"] = str(Path(_PROGRESS_DIR) / ".labapp-progress.json")
atexit.register(shutil.rmtree, _PROGRESS_DIR, ignore_errors=True)
# Hooks' deadlines stretch on a busy machine; tests that hang a hook on purpose want the
# exact second (tests/engine/test_guard.py tests the stretch itself).
os.environ["LABAPP_DEADLINE_STRETCH"] = "1"


def _lab_fixture(lesson_id: str) -> Any:
    """A fixture that starts the lesson's lab for one test and stops it afterwards."""

    @pytest.fixture
    def fixture() -> Iterator[Lab]:
        with start_lab(lesson_id) as lab:
            yield lab

    return fixture


lab00 = _lab_fixture("00-welcome")
lab01 = _lab_fixture("01-unprotected")
lab02 = _lab_fixture("02-api-keys")
lab03 = _lab_fixture("03-passwords")
lab04 = _lab_fixture("04-jwt")
lab05 = _lab_fixture("05-refresh")
lab06 = _lab_fixture("06-least-privilege")
lab07 = _lab_fixture("07-tls")


def refused(port: int) -> bool:
    """Nothing listens on this loopback port any more (a stopped lab left nothing behind)."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def solution_namespace(notebook: str, defines: str, **given: Any) -> dict[str, Any]:
    """The namespace of the solution notebook's cell that defines ``defines()``."""
    return authoring.solution_namespace(ROOT / "solutions" / notebook, defines, **given)
