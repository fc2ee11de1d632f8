"""Lesson 06's rows about fields (OWASP API3:2023, object property level authorization).

Input: a PATCH body that names a field no client may set must be refused (mass assignment).
Output: no response carries ``password_hash``, nor ``internal_note`` to a role that is not
staff (excessive data exposure). Over HTTP for the seeded roles; the learner's two field
hooks are also asked directly, for what no request can reach today (a column the table does
not have yet, a role nobody wrote a rule for).
"""

from __future__ import annotations

from typing import Any

import httpx

from labapp.engine.grading import Observed
from labapp.lessons.l06_least_privilege.decisions import ask, quietly
from labapp.lessons.l06_least_privilege.matrix import MEMO, NAME, as_user, reset
from labapp.lessons.l06_least_privilege.policy import (
    INVOICES,
    OWNED,
    ROLE_OF,
    SEES_INTERNAL_NOTES,
    USERS,
    WRITABLE,
)

SEEDED_USERS = [(user_id, username, role) for user_id, username, _, role, _ in USERS]

# Bodies a client must never get bound: identity, ownership, role, secrets, money, notes.
BODIES = [
    ("vera", "/me", {"role": "admin"}),
    ("vera", "/me", {"display_name": "Vera", "role": "admin"}),
    ("vera", "/me", {"username": "vera2"}),  # the name owns invoices and sessions
    ("vera", "/me", {"id": 4}),
    ("vera", "/me", {"id": 99, "display_name": "Vera"}),
    ("eddie", "/me", {"password_hash": "$argon2id$attacker-chosen"}),
    ("eddie", "/invoices/3", {"memo": MEMO[3], "owner": "vera"}),
    ("eddie", "/invoices/3", {"internal_note": "all good, pay no attention"}),
    ("eddie", "/invoices/3", {"id": 99, "amount_cents": 1}),
    ("eddie", "/invoices/3", {"id": 99, "memo": MEMO[3]}),
    ("eddie", "/invoices/3", {"amount_cents": 1}),
]


def attack_mass_assignment(lab: Any, http: httpx.Client) -> Observed:
    reset(lab)
    store, last = lab.state.store, None
    for kind in ("user", "invoice"):
        fields = ask(lab, "accepted_fields", kind)
        listed = isinstance(fields, (set, frozenset, list, tuple))  # else the server says so
        extra = sorted(str(name) for name in set(fields) - WRITABLE[kind]) if listed else []
        if extra:
            return Observed(
                True,
                None,
                f"accepted_fields({kind!r}) lists {extra}: a client may set only "
                f"{sorted(WRITABLE[kind])}, even where the table has no such column yet",
            )
    for username, url, body in BODIES:
        response = http.patch(url, headers=as_user(lab, username), json=body)
        last = response.status_code
        users = store.query("SELECT id, username, role, password_hash FROM users ORDER BY id")
        invoices = store.query("SELECT * FROM invoices ORDER BY id")
        changed = [(u["id"], u["username"], u["role"]) for u in users] != SEEDED_USERS
        changed |= any("attacker" in (u["password_hash"] or "") for u in users)
        changed |= [tuple(i.values()) for i in invoices] != list(INVOICES)
        reset(lab)
        if changed or response.is_success:
            return Observed(True, last, f"PATCH {url} {sorted(body)} as {username} was bound")
    return Observed(False, last, "every body naming role, owner, id or a hash was refused")


def _leaks(value: Any, role: str) -> str | None:
    if isinstance(value, dict):
        if "password_hash" in value:
            return "password_hash"
        if "internal_note" in value and role not in SEES_INTERNAL_NOTES:
            return "internal_note"
        value = list(value.values())
    if isinstance(value, list):
        return next((found for item in value if (found := _leaks(item, role))), None)
    return None


UNKNOWN_ROLE = "contractor"  # no rule anywhere: it must see no more than a viewer


def attack_data_exposure(lab: Any, http: httpx.Client) -> Observed:
    reset(lab)
    last = None
    for _, username, _, role, _ in USERS:
        own = min(OWNED[username], default=1)
        calls = [
            ("GET", "/me", None),
            ("GET", "/invoices", None),
            ("GET", f"/invoices/{own}", None),
        ]
        calls += [("PATCH", f"/invoices/{own}", {"memo": MEMO[own]}), ("GET", "/admin/users", None)]
        calls += [("PATCH", "/me", {"display_name": NAME[username]})]
        for method, url, body in calls:
            response = http.request(method, url, headers=as_user(lab, username), json=body)
            last = response.status_code
            if response.is_success and (field := _leaks(response.json(), role)):
                return Observed(True, last, f"{method} {url} as {username} ({role}) shows {field}")
    for kind in ("user", "invoice"):
        for role in (*sorted(set(ROLE_OF.values())), UNKNOWN_ROLE):
            fields = quietly(lab, "public_fields", kind, role)
            if isinstance(fields, (set, frozenset, list, tuple)) and (
                field := _leaks(dict.fromkeys(fields), role)
            ):
                return Observed(True, None, f"public_fields({kind!r}, {role!r}) includes {field}")
    reset(lab)
    return Observed(False, None, "no response carried password_hash or a note it must not")
