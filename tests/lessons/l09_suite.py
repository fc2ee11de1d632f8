"""Lesson 09's answer as a module: the suite of the steps hint, which the solution notebook
writes cell by cell.

The course's tests grade it (every mutant killed, no false alarm) and cut it into the
suites with typical gaps (tests/lessons/test_l09_testing.py).
"""

from labapp.lessons.l09_testing.battery import HINTS
from tests.lessons.test_hints import steps_code

exec(steps_code(HINTS[2]), globals())  # noqa: S102 - the course's own hint, run as a learner would
