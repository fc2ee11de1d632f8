"""Lesson 09: test the failure paths (a notes API, and the regressions a suite must catch).

The sound API is in ``api.py`` (served by ``app.py``), the mutants it can be built with in
``mutants.py``, the fixtures the learner's tests take in ``fixtures.py``, the grader in
``battery.py``.
"""

from labapp.engine.spec import Lesson, Quiz
from labapp.lessons.l09_testing.app import Builds, create_app, seed
from labapp.lessons.l09_testing.battery import HINTS, grade_suite

LESSON = Lesson(
    id="09-testing",
    title="Lesson 09 — Test the failure paths",
    notebook="09-testing-failure-paths.ipynb",
    minutes=120,
    create_app=create_app,
    seed=seed,
    quizzes=(
        Quiz("tests", "your test suite, graded by the regressions it catches", HINTS, grade_suite),
    ),
    network=Builds,
    try_this="Your tests take the fixtures <code>api</code>, <code>tokens</code>, "
    "<code>users</code> and <code>notes</code>. Start with <code>GET /health</code> and "
    "<code>GET /me</code>.",
)
