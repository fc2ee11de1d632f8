"""The lessons, one module per notebook, found by id.

Module names start with a letter (``l01_...``) because Python cannot import ``01_...``.
"""

from __future__ import annotations

import importlib

from labapp.errors import UnknownLesson
from labapp.spec import Lesson

_MODULES = {
    "00-welcome": "l00_welcome",
    "01-unprotected": "l01_unprotected",
}


def lesson_ids() -> list[str]:
    return list(_MODULES)


def get_lesson(lesson_id: str) -> Lesson:
    """Find a lesson by id (``"01-unprotected"``), by number (``"01"``) or notebook name."""
    if not isinstance(lesson_id, str):
        raise UnknownLesson(f"a lesson id is a string such as {lesson_ids()[0]!r}")
    wanted = lesson_id.strip().removesuffix(".ipynb")
    for known, module in _MODULES.items():
        number = known.split("-", 1)[0]
        # "01", "01-unprotected" and "01-unprotected-endpoints" all name lesson 01.
        if wanted in (number, known) or wanted.startswith(known + "-"):
            return importlib.import_module(f"labapp.lessons.{module}").LESSON
    valid = ", ".join(repr(k) for k in _MODULES)
    raise UnknownLesson(f"there is no lesson {lesson_id!r}; the lessons are {valid}")


def all_lessons() -> list[Lesson]:
    return [get_lesson(lesson_id) for lesson_id in _MODULES]
