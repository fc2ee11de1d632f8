"""Lesson 06: least privilege (an invoices API whose every authorization decision is weak).

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson
from labapp.lessons.l06_least_privilege.app import create_app
from labapp.lessons.l06_least_privilege.battery import ATTACKS, CHECKS
from labapp.lessons.l06_least_privilege.hooks import HOOKS, seed
from labapp.lessons.l06_least_privilege.policy import PERMISSIONS

LESSON = Lesson(
    id="06-least-privilege",
    title="Lesson 06 — Least privilege",
    notebook="06-least-privilege.ipynb",
    minutes=75,
    create_app=create_app,
    seed=seed,
    dependencies=(PERMISSIONS,),
    hooks=HOOKS,
    attacks=ATTACKS,
    checks=CHECKS,
    hints={
        "defend": (
            "permitted: a dict role -> {action: 'own' or 'any'}; a missing entry (or a role "
            "you have no entry for) is a denial; return True or False, and for 'own' check owns "
            "(True only when owns is True).",
            "Wrap who.role() in try/except DependencyDown and return False: fail closed.",
            "invoice_filter: ('owner = ?', (user['username'],)) unless the role reads any invoice.",
            "public_fields never includes password_hash; internal_note only for support and admin.",
            "accepted_fields: user -> display_name, email; invoice -> memo, status. "
            "grant_scopes: requested & allowed (an empty result is the server's invalid_scope).",
            "Keep nothing between calls (no cache of roles, filters or grants): the grader "
            "demotes users mid-run.",
        )
    },
    try_this="You play vera (viewer) and eddie (editor): their session tokens are in "
    "<code>lab.users</code>. Start with <code>GET /me</code> and <code>GET /invoices</code>.",
)
