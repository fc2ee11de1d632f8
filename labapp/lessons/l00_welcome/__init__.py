"""Lesson 00: welcome, and threat modeling (a bookshop API to explore and inventory).

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson, Quiz
from labapp.lessons.common import IDENTITY
from labapp.lessons.l00_welcome.app import create_app, seed
from labapp.lessons.l00_welcome.battery import grade_classification

LESSON = Lesson(
    id="00-welcome",
    title="Lesson 00 — Welcome and threat modeling",
    notebook="00-welcome-threat-modeling.ipynb",
    minutes=30,
    create_app=create_app,
    seed=seed,
    dependencies=(IDENTITY,),
    quizzes=(
        Quiz(
            "classify",
            "classify every route: asset, changes_state, who",
            (
                "Start from lab.client.get('/openapi.json').json()['paths']: one key per route.",
                "changes_state: GET is a safe method (RFC 9110 §9.2.1); POST, PATCH and DELETE "
                "change something.",
                "who: the catalogue and /health are for anyone, /admin/... for admins, /metrics "
                "for the monitoring service account; the rest is a signed-in customer's own data.",
            ),
            grade_classification,
        ),
    ),
    try_this="Try <code>lab.client.get('/books')</code>, then "
    "<code>lab.client.get('/orders')</code> — and read <code>lab.audit()</code>.",
)
