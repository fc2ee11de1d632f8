"""Lesson 10's hooks (the log line of each event, the risk decision) and the seeded lab."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pyotp

from labapp.engine.spec import Hook, LabState
from labapp.lessons.l10_logging.desk import Desk
from labapp.lessons.l10_logging.people import HASHER, PEOPLE
from labapp.lessons.l10_logging.service import Account, Clock, Service

LOG_FILE = "audit.jsonl"


def weak_audit_event(kind: str, fields: dict[str, Any]) -> str:
    # Everything the service was given, as text: handy while debugging, and a leak of every
    # password, token and header, with whatever a username holds written as is.
    return f"{fields['time']} {kind} " + " ".join(f"{key}={value}" for key, value in fields.items())


def weak_assess_risk(context: dict[str, Any]) -> str:
    return "allow"  # the right password is enough, wherever and whenever it comes from


def reference_audit_event(kind: str, fields: dict[str, Any]) -> str:
    """The lab's own log line: what a day is logged with while yours is still the weak one."""
    event = {"time": fields["time"], "kind": kind, "who": fields["username"]}
    for key in ("outcome", "reason", "client", "request_id", "country", "token_id", "family"):
        if fields.get(key) is not None:
            event[key] = fields[key]
    return json.dumps(event)


def quiet_audit_event(kind: str, fields: dict[str, Any]) -> None:
    """No log at all: the risk quiz judges decisions, not the log."""


@contextlib.contextmanager
def hooks_as(state: LabState, **hooks: Callable[..., Any]) -> Iterator[None]:
    """Serve with these hooks for a while (a quiz's replay), then put yours back."""
    before = {name: state.hooks[name] for name in hooks}
    state.hooks.update(hooks)
    try:
        yield
    finally:
        state.hooks.update(before)


@contextlib.contextmanager
def reference_log(state: LabState) -> Iterator[str]:
    """Log with your ``audit_event`` if you have defended it, else with the lab's own."""
    if not state.is_weak("audit_event"):
        yield ""
        return
    with hooks_as(state, audit_event=reference_audit_event):
        yield (
            "Your audit_event is still the weak one, so this day was logged with the lab's own "
            "JSON lines (time, kind, who, outcome, reason, client, request_id, country, "
            "token_id, family)."
        )


HOOKS = (
    Hook(
        "audit_event",
        ("kind", "fields"),
        "The log line for one security event (a str, one JSON object), or None to log nothing. "
        "fields holds everything the service knows, secrets included.",
        weak_audit_event,
        returns=(str, type(None)),
    ),
    Hook(
        "assess_risk",
        ("context",),
        "A login whose password was right: 'allow', 'step_up' (ask for a TOTP code) or 'deny'.",
        weak_assess_risk,
        returns=str,
    ),
)


def accounts() -> list[Account]:
    return [
        Account(name, role, HASHER.hash(password), home, pyotp.random_base32(), mfa)
        for name, role, password, home, mfa in PEOPLE
    ]


def seed(state: LabState) -> None:
    service = Service(accounts(), Clock(), state.workdir / LOG_FILE)
    state.desk = Desk(service)  # type: ignore[attr-defined]  (create_app serves it)
    state.store.add_secret(*(password for _, _, password, _, _ in PEOPLE))
    state.users.extend(
        {"username": name, "role": role, "password": password}
        for name, role, password, _, _ in PEOPLE
        if name != "carol"  # her password is for you to find
    )
