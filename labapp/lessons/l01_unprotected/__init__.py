"""Lesson 01: unprotected endpoints (an orders API that protects almost nothing).

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson
from labapp.lessons.common import IDENTITY
from labapp.lessons.l01_unprotected.app import AUTHORIZE, create_app, seed
from labapp.lessons.l01_unprotected.battery import ATTACKS, CHECKS

LESSON = Lesson(
    id="01-unprotected",
    title="Lesson 01 — Unprotected endpoints",
    notebook="01-unprotected-endpoints.ipynb",
    minutes=45,
    create_app=create_app,
    seed=seed,
    dependencies=(IDENTITY,),
    hooks=(AUTHORIZE,),
    attacks=ATTACKS,
    checks=CHECKS,
    hints={
        "defend": (
            "Start from `return False` and allow only what you can name: that is deny by default.",
            "Public routes: a set of (req.method, req.route). The rest needs req.identify().",
            "req.identify() returns None when no token came or nobody holds it: return False "
            "then, before you read user['role'].",
            "Wrap req.identify() in try/except DependencyDown and return False: fail closed.",
            "Let no header decide but the bearer token req.identify() checks: any client can "
            "send X-Internal, X-Forwarded-For, or any header you might invent.",
            "Roles: compare user['role'] from this request's req.identify() with the roles the "
            "route allows (name those let in): never a username, never a role remembered.",
        )
    },
    try_this="Try <code>lab.client.get('/products')</code>, then read <code>lab.audit()</code>: "
    "every decision the gate takes is there.",
)
