"""Lesson 06's hooks, their weak defaults, and the lab's seed data.

Each weak default says which attack it invites. The learner replaces them with
``lab.defend(permitted=..., invoice_filter=..., public_fields=..., accepted_fields=...,
grant_scopes=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labapp.engine.errors import DependencyDown
from labapp.engine.spec import Hook, LabState
from labapp.lessons.common import issue_session_tokens
from labapp.lessons.l06_least_privilege.policy import (
    COLUMNS,
    INVOICES,
    LISTED,
    PASSWORD_HASHES,
    USERS,
)


@dataclass
class Who:
    """The caller, as a policy sees it: ``who.role()`` asks the permissions service.

    Roles change (a demotion takes effect at once), so the role is not taken from the
    token: it is looked up live, and the lookup raises ``DependencyDown`` during
    ``lab.outage("permissions")``.
    """

    username: str
    _role: Callable[[], str] = field(repr=False)

    def role(self) -> str:
        return self._role()


# -- the weak defaults: each says which attack it invites -----------------------------------


def weak_permitted(who: Who, action: str, owns: bool) -> bool:
    """WEAK: allows every action to everyone (bola, bfla) and allows on errors (fail-open)."""
    try:
        who.role()
    except DependencyDown:
        return True  # "never lock a paying customer out": fail open
    return True  # "the UI only shows each role the buttons it may press"


def weak_invoice_filter(user: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """WEAK: every invoice matches; "the app only asks for its own ids" (bola).

    The shipped list route still keeps a viewer's or an editor's list to their own invoices
    (its page was written right); a fetch by id, ``GET /invoices/{id}``, has no such guard.
    """
    return "1 = 1", ()


def weak_public_fields(kind: str, role: str) -> set[str]:
    """WEAK: every column goes out; "the client hides what it should not show" (data-exposure)."""
    return set(COLUMNS[kind])


def weak_accepted_fields(kind: str) -> set[str]:
    """WEAK: binds any column a body names, as an ORM would (mass-assignment)."""
    return set(COLUMNS[kind]) - {"id"}


def weak_grant_scopes(requested: set[str], allowed: set[str]) -> set[str]:
    """WEAK: grants whatever the client asked for (scope-escalation), and everything the role
    has on top, "so the token always works" (over-grant)."""
    return set(requested) | set(allowed)


HOOKS = (
    Hook(
        "permitted",
        ("who", "action", "owns"),
        "permitted(who, action, owns) -> bool: may who.role() do action (own object or not)?",
        weak_permitted,
        returns=bool,  # an allow/deny decision: "own", None or 1 is the hook's failure
    ),
    Hook(
        "invoice_filter",
        ("user",),
        "invoice_filter(user) -> (sql_where, params): the invoices this user may see",
        weak_invoice_filter,
    ),
    Hook(
        "public_fields",
        ("kind", "role"),
        "public_fields(kind, role) -> set of fields a response may carry",
        weak_public_fields,
    ),
    Hook(
        "accepted_fields",
        ("kind",),
        "accepted_fields(kind) -> set of fields a request body may set",
        weak_accepted_fields,
    ),
    Hook(
        "grant_scopes",
        ("requested", "allowed"),
        "grant_scopes(requested, allowed) -> the set of scopes the new token gets",
        weak_grant_scopes,
    ),
)


def seed(state: LabState) -> None:
    store = state.store
    store.executescript(
        "DELETE FROM users; ALTER TABLE users ADD COLUMN email TEXT;"
        "ALTER TABLE users ADD COLUMN password_hash TEXT;"
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, owner TEXT, amount_cents INTEGER, "
        "status TEXT, memo TEXT, internal_note TEXT);"
        "CREATE TABLE access_tokens (token TEXT PRIMARY KEY, username TEXT, scopes TEXT, "
        "expires_at REAL);"
    )
    for row in USERS:
        digest = PASSWORD_HASHES[row[1]]
        store.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", (*row, digest))
    store.executemany("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?)", INVOICES)
    issue_session_tokens(state, listed=False)
    tokens = {r["username"]: r["token"] for r in store.query("SELECT * FROM sessions")}
    for _, username, display_name, role, _ in USERS:
        if username in LISTED:
            user = {"username": username, "role": role, "display_name": display_name}
            state.users.append({**user, "token": tokens[username]})
