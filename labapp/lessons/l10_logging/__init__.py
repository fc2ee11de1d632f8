"""Lesson 10: log meaningful events, detect attacks in them, adapt logins to risk.

The service is in ``app.py`` (its state in ``service.py``, its hooks in ``hooks.py``), the
day of traffic in ``traffic.py`` and ``trials.py``, what the graders replay in ``battery.py``.
"""

from labapp.engine.spec import Lesson, Quiz
from labapp.lessons.l10_logging.app import Tools, create_app
from labapp.lessons.l10_logging.battery import ATTACKS, CHECKS, grade_adapt, grade_detect
from labapp.lessons.l10_logging.hints import ADAPT, DEFEND, DETECT
from labapp.lessons.l10_logging.hooks import HOOKS, seed

LESSON = Lesson(
    id="10-log-detect",
    title="Lesson 10 — Log, detect, adapt",
    notebook="10-log-detect-adapt.ipynb",
    minutes=105,
    create_app=create_app,
    seed=seed,
    hooks=HOOKS,
    attacks=ATTACKS,
    checks=CHECKS,
    quizzes=(
        Quiz(
            "detect",
            "detection rules over a day of your log, scored per attack",
            DETECT,
            grade_detect,
        ),
        Quiz("adapt", "a risk decision for logins with the right password", ADAPT, grade_adapt),
    ),
    hints={"defend": DEFEND},
    network=Tools,
    try_this="You are sam (support): log in with <code>POST /login</code>, then read "
    "<code>GET /admin/logs</code>.",
)
