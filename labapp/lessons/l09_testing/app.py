"""Lesson 09: test the failure paths. The lab serves the sound notes API (``api.py``).

Every mutant the grader serves is the same API with one regression (``mutants.py``);
``builds.py`` serves them; the learner's tests reach them through ``fixtures.py``.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI

from labapp.engine.spec import LabState
from labapp.lessons.l09_testing import notes
from labapp.lessons.l09_testing.api import build_app
from labapp.lessons.l09_testing.builds import Builds, signing_key

__all__ = ["Builds", "create_app", "seed"]


def seed(state: LabState) -> None:
    notes.seed_store(state.store)
    key = secrets.token_hex(32)
    state.store.executescript("CREATE TABLE lab_key (value TEXT NOT NULL);")
    state.store.execute("INSERT INTO lab_key VALUES (?)", (key,))
    state.store.add_secret(key)
    state.users.extend(
        {"username": name, "role": role, "password": password}
        for name, role, password in notes.PEOPLE
    )


def create_app(state: LabState) -> FastAPI:
    return build_app(state.store, signing_key(state.store))
