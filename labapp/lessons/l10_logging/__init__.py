"""Lesson 10: log meaningful events, detect attacks in them, adapt logins to risk.

The service is in ``app.py`` (its state in ``service.py``, its hooks in ``hooks.py``), the
day of traffic in ``traffic.py`` and ``trials.py``, what the graders replay in ``battery.py``.
"""

from labapp.engine.spec import Lesson
from labapp.lessons.l10_logging.app import Tools, create_app
from labapp.lessons.l10_logging.hooks import HOOKS, seed

LESSON = Lesson(
    id="10-logging",
    title="Lesson 10 — Log, detect, adapt",
    notebook="10-log-detect-adapt.ipynb",
    minutes=105,
    create_app=create_app,
    seed=seed,
    hooks=HOOKS,
    network=Tools,
    try_this="You are sam (support): log in with <code>POST /login</code>, then read "
    "<code>GET /admin/logs</code>.",
)
