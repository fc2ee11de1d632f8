"""labapp: the labs, lessons and tools of the API authentication course.

- ``labapp.engine``: what a notebook's ``lab`` is made of (server, guard, store, grading...);
- ``labapp.lessons``: one package per notebook (``l04_jwt/``: its app, battery, helpers);
- ``labapp.tools``: what instructors run (notebooks, release, cohort grading, progress, CLI).

Notebooks start from here::

    from labapp import start_lab
"""

from labapp.engine.errors import (
    BadHook,
    DefenseBreached,
    DependencyDown,
    HookStillRunning,
    LabError,
    LabStartError,
    LabStopped,
    NotLoopback,
    UnknownDependency,
    UnknownExercise,
    UnknownHook,
    UnknownLesson,
    WrongAnswer,
    WrongFlag,
)
from labapp.engine.grading import Report
from labapp.engine.lab import Lab
from labapp.engine.registry import stop_all
from labapp.start import start_lab

__all__ = [
    "BadHook",
    "DefenseBreached",
    "DependencyDown",
    "HookStillRunning",
    "Lab",
    "LabError",
    "LabStartError",
    "LabStopped",
    "NotLoopback",
    "Report",
    "UnknownDependency",
    "UnknownExercise",
    "UnknownHook",
    "UnknownLesson",
    "WrongAnswer",
    "WrongFlag",
    "start_lab",
    "stop_all",
]
