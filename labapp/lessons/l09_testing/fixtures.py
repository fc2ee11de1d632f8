"""The fixtures a learner's tests take, as a pytest plugin (``-p`` this module's name).

- ``api``: an httpx client for the notes API, ``base_url`` set: ``api.get("/me", ...)``;
- ``tokens``: access tokens by name (``"alice"``, ``"alice-expired"``...), minted when the
  test session starts, so none has expired by the time a test reads it;
- ``users``: each seeded user's password and role; ``notes``: each user's first note id.

In a notebook run they point at the sound API. The grader runs the same tests once per
build: it parametrizes ``target`` (which ``api`` depends on) over the sound API and every
mutant. All of them are session-scoped, because Hypothesis refuses function-scoped
fixtures in a ``@given`` test (its examples would share one fixture value unknowingly).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from labapp.engine import registry
from labapp.engine.http import lab_client
from labapp.lessons.l09_testing.mutants import LAB

LESSON_ID = "09-testing"
NAMES = ("target", "api", "tokens", "users", "notes")


def _lab() -> Any:
    lab = registry.running().get(LESSON_ID)
    if lab is None:
        raise RuntimeError(
            f"the {LESSON_ID} lab is not running: run lab = start_lab({LESSON_ID!r}) first"
        )
    return lab


@pytest.fixture(scope="session")
def target() -> str:
    """Which build ``api`` talks to: the lab's (sound) API unless the grader says otherwise."""
    return LAB


@pytest.fixture(scope="session")
def api(target: str) -> Iterator[httpx.Client]:
    """A client for the notes API (``api.get("/health")``); no credentials of its own."""
    # No keep-alive (the engine's lab_client): with a pooled httpx.Client the solution's
    # grade went from 7 s to past the 120 s deadline (each request waiting on the previous
    # one's connection; Nagle against delayed ACKs is the usual cause on loopback).
    with lab_client(_lab().net.url(target)) as client:
        yield client


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    """Access tokens by name: every user's, and the broken kinds (expired, wrong audience,
    wrong signature, read-only, a deleted user's)."""
    return _lab().net.tokens()


@pytest.fixture(scope="session")
def users() -> dict[str, dict[str, str]]:
    """``users["alice"]["password"]``, ``users["sam"]["role"]``..."""
    return {user["username"]: dict(user) for user in _lab().users}


@pytest.fixture(scope="session")
def notes() -> dict[str, int]:
    """The id of each user's first note: ``notes["bob"]`` is one alice may not read."""
    return dict(_lab().net.note_ids)
