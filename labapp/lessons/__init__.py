"""The lessons, one package per notebook, found by number.

A lesson lives in ``lNN_name/`` (Python cannot import ``NN_name``): its ``__init__.py``
declares ``LESSON``, ``app.py`` holds the weak lab app, ``battery.py`` what the grader
replays, and any other module there is the lesson's own helper. Adding a lesson is adding
its folder: nothing here lists them. Pieces several lessons share live in ``common.py``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re

from labapp.engine.errors import UnknownLesson
from labapp.engine.spec import Lesson

_LESSON_PACKAGE = re.compile(r"l(\d\d)_\w+")


@functools.cache
def _packages_by_number() -> dict[str, str]:
    found: dict[str, str] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        match = _LESSON_PACKAGE.fullmatch(module.name)
        if match and module.ispkg:
            if match[1] in found:  # a course bug: two folders claim one notebook number
                raise LookupError(f"lessons {found[match[1]]} and {module.name} share a number")
            found[match[1]] = module.name
    return found


def _load(number: str) -> Lesson:
    package = _packages_by_number()[number]
    lesson = getattr(importlib.import_module(f"{__name__}.{package}"), "LESSON", None)
    if not isinstance(lesson, Lesson):
        raise LookupError(f"{package}/__init__.py does not define LESSON")  # a course bug
    return lesson


def all_lessons() -> list[Lesson]:
    return [_load(number) for number in _packages_by_number()]


def lesson_ids() -> list[str]:
    return [lesson.id for lesson in all_lessons()]


def get_lesson(lesson_id: str) -> Lesson:
    """Find a lesson by id (``"01-unprotected"``), by number (``"01"``) or notebook name."""
    if not isinstance(lesson_id, str):
        raise UnknownLesson(f"a lesson id is a string such as {lesson_ids()[0]!r}")
    wanted = lesson_id.strip().removesuffix(".ipynb")
    number = wanted[:2]
    if number in _packages_by_number():
        lesson = _load(number)
        # "01", "01-unprotected" and "01-unprotected-endpoints" all name lesson 01.
        if wanted in (number, lesson.id) or wanted.startswith(lesson.id + "-"):
            return lesson
    valid = ", ".join(repr(known) for known in lesson_ids())
    raise UnknownLesson(f"there is no lesson {lesson_id!r}; the lessons are {valid}")
