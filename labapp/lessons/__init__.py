"""The lessons, one module per notebook, found by number.

A lesson lives in ``lNN_name.py`` (Python cannot import ``NN_name``) and defines ``LESSON``;
a lesson's helper modules share its ``lNN_`` prefix (``l01_battery.py``). Adding a lesson
is adding its module: nothing here lists them.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re

from labapp.errors import UnknownLesson
from labapp.spec import Lesson

_LESSON_MODULE = re.compile(r"l(\d\d)_\w+")


@functools.cache
def _modules_by_number() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        match = _LESSON_MODULE.fullmatch(module)
        if match:
            found.setdefault(match[1], []).append(module)
    return found


def _load(number: str) -> Lesson:
    for module in _modules_by_number()[number]:
        lesson = getattr(importlib.import_module(f"{__name__}.{module}"), "LESSON", None)
        if isinstance(lesson, Lesson):
            return lesson
    raise LookupError(f"no module of lesson {number} defines LESSON")  # a course bug


def all_lessons() -> list[Lesson]:
    return [_load(number) for number in _modules_by_number()]


def lesson_ids() -> list[str]:
    return [lesson.id for lesson in all_lessons()]


def get_lesson(lesson_id: str) -> Lesson:
    """Find a lesson by id (``"01-unprotected"``), by number (``"01"``) or notebook name."""
    if not isinstance(lesson_id, str):
        raise UnknownLesson(f"a lesson id is a string such as {lesson_ids()[0]!r}")
    wanted = lesson_id.strip().removesuffix(".ipynb")
    number = wanted[:2]
    if number in _modules_by_number():
        lesson = _load(number)
        # "01", "01-unprotected" and "01-unprotected-endpoints" all name lesson 01.
        if wanted in (number, lesson.id) or wanted.startswith(lesson.id + "-"):
            return lesson
    valid = ", ".join(repr(known) for known in lesson_ids())
    raise UnknownLesson(f"there is no lesson {lesson_id!r}; the lessons are {valid}")
