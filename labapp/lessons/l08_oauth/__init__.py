"""Lesson 08: OAuth 2.0 and OpenID Connect (an authorization server, its API and clients).

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson, Quiz
from labapp.lessons.l08_oauth.app import HOOKS, create_app, network, seed
from labapp.lessons.l08_oauth.battery import ATTACKS, CHECKS
from labapp.lessons.l08_oauth.quiz import HINTS as QUIZ_HINTS
from labapp.lessons.l08_oauth.quiz import grade_choice

LESSON = Lesson(
    id="08-oauth",
    title="Lesson 08 — OAuth 2.0 and OpenID Connect",
    notebook="08-oauth-and-oidc.ipynb",
    minutes=150,
    create_app=create_app,
    seed=seed,
    hooks=HOOKS,
    attacks=ATTACKS,
    checks=CHECKS,
    quizzes=(
        Quiz(
            "choose-scheme",
            "choose the scheme that fits the trust model, for each scenario",
            QUIZ_HINTS,
            grade_choice,
        ),
    ),
    network=network,
    try_this="Try <code>lab.net</code>: the photos API and the registered clients around "
    "this authorization server.",
)
