"""labapp: the lab engine behind the API authentication course.

Notebooks import from here only::

    from labapp import start_lab
"""

from labapp.errors import (
    BadHook,
    DefenseBreached,
    DependencyDown,
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
from labapp.grading import Report
from labapp.lab import Lab, start_lab, stop_all

__all__ = [
    "BadHook",
    "DefenseBreached",
    "DependencyDown",
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
