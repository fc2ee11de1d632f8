"""Lesson 11: the capstone. Secure a whole API with FastAPI's own guardrails.

The lab serves the learner's app (``app.py`` forwards to what ``lab.mount`` built, with the
kit of ``kit.py``); the grader replays every battery of the course against it.
"""

from labapp.engine.spec import Lesson, Quiz
from labapp.lessons.l11_capstone.app import Tools, create_app, seed
from labapp.lessons.l11_capstone.battery import ATTACKS, BY_ITEM, CHECKS
from labapp.lessons.l11_capstone.certificate import present
from labapp.lessons.l11_capstone.threat import STEPS, grade_threat_model

LESSON = Lesson(
    id="11-capstone",
    title="Lesson 11 — Capstone: secure a whole API",
    notebook="11-capstone.ipynb",
    minutes=180,
    create_app=create_app,
    seed=seed,
    tls=True,
    network=Tools,
    attacks=ATTACKS,
    checks=CHECKS,
    present=present(BY_ITEM),
    quizzes=(
        Quiz(
            "threat-model",
            "every route: the asset, the credential it needs, who may call it",
            (
                "Read the baseline's routes: what does each one touch, and whose work would "
                "stop without it?",
                "Threat modeling starts by modeling the system: its trust boundaries, data "
                "flows, data stores, processes and the external entities that interact with it "
                "(OWASP Threat Modeling Cheat Sheet, 'System Modeling'); that inventory is what "
                "OWASP API9:2023 asks for ('Document all aspects of your API such as "
                "authentication ... and endpoints').",
                STEPS,
            ),
            grade_threat_model,
        ),
    ),
    try_this="Write <code>build_app(kit)</code>, then <code>lab.mount(build_app)</code>.",
)
