"""What a lesson package declares: its hooks, attacks, checks, quizzes and app factory.

The engine reads these and knows no lesson by name.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labapp.engine.errors import DependencyDown
from labapp.engine.flags import FlagBook
from labapp.engine.grading import Attack, Check, Report, Row
from labapp.engine.guard import Guard
from labapp.engine.store import Store

if TYPE_CHECKING:
    from fastapi import FastAPI

    from labapp.engine.lab import Lab

# The exercise name of a lesson's defense (its grader is ``lab.grade()``), beside the flag
# and quiz names; also the key of the defense's hints.
DEFEND = "defend"


@dataclass(frozen=True)
class Hook:
    """A security decision the learner can replace with ``lab.defend(name=fn)``.

    ``weak`` is the deliberately weak default the lesson's attacks break. ``returns``, when
    set, is the type (or tuple of types) the server accepts back: ``bool`` for an allow/deny
    decision, ``(dict, type(None))`` for "claims or nothing". Anything else is the hook's
    failure, a 500 that says what came back, never a guess.
    """

    name: str
    params: tuple[str, ...]
    doc: str
    weak: Callable[..., Any]
    returns: type | tuple[type, ...] | None = None


@dataclass(frozen=True)
class Quiz:
    """A question graded against the lab's truth by ``lab.check_answer(id, answer)``."""

    id: str
    description: str
    hints: tuple[str, ...]
    grade: Callable[[Lab, Any], list[Row] | Report]


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    notebook: str
    minutes: int
    create_app: Callable[[LabState], FastAPI]
    seed: Callable[[LabState], None]
    hooks: tuple[Hook, ...] = ()
    attacks: tuple[Attack, ...] = ()
    checks: tuple[Check, ...] = ()
    quizzes: tuple[Quiz, ...] = ()
    hints: dict[str, tuple[str, ...]] = field(default_factory=dict)  # e.g. for "defend"
    dependencies: tuple[str, ...] = ()  # services ``lab.outage(name)`` can take down
    try_this: str = ""
    tls: bool = False  # always served over HTTPS (else only with start_lab(..., tls=True))
    server_context: Callable[[Lab], ssl.SSLContext] | None = None  # default: labapp.engine.tls's
    network: Callable[[Lab], Any] | None = None  # more servers/tools, as lab.net (has stop())
    present: Callable[[Report], Report] | None = None  # how lab.grade() shows its report

    @property
    def flag_names(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.attacks if a.flag)

    def ladders(self) -> tuple[str, ...]:
        """The exercises whose hints are a ladder of three: every flag and every quiz."""
        return self.flag_names + tuple(q.id for q in self.quizzes)

    def all_hints(self) -> dict[str, tuple[str, ...]]:
        found = {a.id: a.hints for a in self.attacks}
        found.update({q.id: q.hints for q in self.quizzes})
        found.update(self.hints)
        return found


@dataclass
class LabState:
    """Everything a lesson's app may touch while it serves one lab."""

    lesson_id: str
    workdir: Path
    store: Store
    flags: FlagBook
    guard: Guard
    hooks: dict[str, Callable[..., Any]]
    users: list[dict[str, Any]] = field(default_factory=list)
    outages: set[str] = field(default_factory=set)
    weak: dict[str, Callable[..., Any]] = field(default_factory=dict)  # the shipped hooks
    returns: dict[str, type | tuple[type, ...]] = field(default_factory=dict)  # hook -> types

    def is_weak(self, hook: str) -> bool:
        """Is ``hook`` still the shipped weak default? (Flags go only to attacks on those.)"""
        return self.hooks.get(hook) is self.weak.get(hook)

    async def call(self, hook: str, *args: Any) -> Any:
        """Call the current implementation of ``hook`` (weak or learner's) under the guard."""
        return self._checked(hook, await self.guard.call(hook, self.hooks[hook], *args))

    def call_blocking(self, hook: str, *args: Any) -> Any:
        """:meth:`call` from a grader row (not on the server's loop): the same deadline, the
        same return-type check, the same incidents in the report."""
        return self._checked(hook, self.guard.call_blocking(hook, self.hooks[hook], *args))

    def _checked(self, hook: str, result: Any) -> Any:
        wanted = self.returns.get(hook)
        if wanted is not None and not _is_a(result, wanted):
            shown = repr(result)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            expected = _names(wanted)
            raise self.guard.bad_result(
                hook,
                f"{hook}() returned {type(result).__name__} {shown}; it must return {expected}",
            )
        return result

    def flag(self, name: str) -> str:
        return self.flags.flag(name)

    def require_up(self, dependency: str) -> None:
        """Raise :class:`DependencyDown` while ``lab.outage(dependency)`` is in effect."""
        if dependency in self.outages:
            raise DependencyDown(f"the {dependency} service is down (simulated outage)")


def _is_a(value: Any, wanted: type | tuple[type, ...]) -> bool:
    # bool exactly, not isinstance(): True is an int, and 1 is not a decision.
    kinds = wanted if isinstance(wanted, tuple) else (wanted,)
    return any(type(value) is bool if kind is bool else isinstance(value, kind) for kind in kinds)


def _names(wanted: type | tuple[type, ...]) -> str:
    names = {bool: "True or False", type(None): "None"}
    kinds = wanted if isinstance(wanted, tuple) else (wanted,)
    return " or ".join(names.get(kind, f"a {kind.__name__}") for kind in kinds)
