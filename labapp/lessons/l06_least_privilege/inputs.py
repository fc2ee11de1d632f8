"""Lesson 06's input model at work: what a PATCH body may name and hold, and how it is written.

Fields the learner's ``accepted_fields`` does not list are *refused* (422), never silently
dropped, so a client learns its request was wrong. (The routes take a plain dict body; a
Pydantic model there would drop unknown fields by default, ``extra="ignore"``.) Binding only
listed fields is the OWASP Mass Assignment Cheat Sheet's allow-list. The primary key gets no
special treatment: unless a (wrong) allowlist names ``id``, a body that names it is refused
like any other field.

Hostile values (integers beyond SQLite's 64 bits, non-finite numbers, lone surrogates,
nested values) are refused before they reach the database, and nothing a client sent is
echoed back unescaped: a lone surrogate cannot even be encoded into a JSON answer. A 4xx,
never a 500.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from fastapi import HTTPException

from labapp.engine.spec import LabState
from labapp.lessons.l06_least_privilege.policy import COLUMNS

INT64 = (-(2**63), 2**63 - 1)  # what an SQLite INTEGER holds


def field_names(state: LabState, hook: str, value: Any) -> set[str]:
    """A hook's answer as a set of names, or the hook's failure (a 500 that names it)."""
    if isinstance(value, (set, frozenset, list, tuple)) and all(isinstance(v, str) for v in value):
        return set(value)
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    raise state.guard.bad_result(hook, f"must return a set of field names, not {shown}")


def shown_name(name: str) -> str:
    """A client's field name, safe to put in an answer: ASCII, escaped, short."""
    text = name.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= 40 else text[:37] + "..."


def accept(kind: str, body: dict[str, Any], accepted: set[str]) -> dict[str, Any]:
    """The body's changes, if it names only accepted columns and holds only plain values."""
    extra = sorted(set(body) - (accepted & set(COLUMNS[kind])))
    if extra:  # refuse, do not silently drop: the client learns its request was wrong
        named = ", ".join(shown_name(name) for name in extra[:5])
        more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
        raise HTTPException(422, f"fields you may not set: {named}{more}")
    for value in body.values():
        if problem := _value_problem(value):
            raise HTTPException(422, problem)
    return dict(body)


def _value_problem(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text must be valid Unicode (no lone surrogates)"
        return None
    if type(value) is int:  # not bool: True is no memo
        return None if INT64[0] <= value <= INT64[1] else "numbers must fit in 64 bits"
    if type(value) is float:
        return None if math.isfinite(value) else "numbers must be finite"
    return "each field takes a string or a number"


def update_row(store: Any, table: str, row_id: int, changes: dict[str, Any]) -> int:
    """Write the changes in one statement; the row's id afterwards (a bound ``id`` moves it)."""
    if not changes:
        return row_id
    # Column names come from COLUMNS (accept() refused every other name), never the body alone.
    columns = ", ".join(f"{column} = ?" for column in changes)
    try:
        store.execute(f"UPDATE {table} SET {columns} WHERE id = ?", (*changes.values(), row_id))
    except sqlite3.IntegrityError as exc:  # a taken username, an id in use, a NULL name
        raise HTTPException(409, f"conflict: {exc}") from None
    return changes.get("id", row_id)
