"""What a lesson module declares: its hooks, attacks, checks, quizzes and app factory.

The engine reads these and knows no lesson by name.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labapp.errors import DependencyDown
from labapp.flags import FlagBook
from labapp.grading import Attack, Check, Row
from labapp.guard import Guard
from labapp.store import Store

if TYPE_CHECKING:
    from fastapi import FastAPI

    from labapp.lab import Lab


@dataclass(frozen=True)
class Hook:
    """A security decision the learner can replace with ``lab.defend(name=fn)``.

    ``weak`` is the deliberately weak default the lesson's attacks break.
    """

    name: str
    params: tuple[str, ...]
    doc: str
    weak: Callable[..., Any]


@dataclass(frozen=True)
class Quiz:
    """A question graded against the lab's truth by ``lab.check_answer(id, answer)``."""

    id: str
    description: str
    hints: tuple[str, ...]
    grade: Callable[[Lab, Any], list[Row]]


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
    server_context: Callable[[Lab], ssl.SSLContext] | None = None  # default: labapp.tls's
    network: Callable[[Lab], Any] | None = None  # more servers/tools, as lab.net (has stop())

    @property
    def flag_names(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.attacks if a.flag)

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

    def is_weak(self, hook: str) -> bool:
        """Is ``hook`` still the shipped weak default? (Flags go only to attacks on those.)"""
        return self.hooks.get(hook) is self.weak.get(hook)

    async def call(self, hook: str, *args: Any) -> Any:
        """Call the current implementation of ``hook`` (weak or learner's) under the guard."""
        return await self.guard.call(hook, self.hooks[hook], *args)

    def flag(self, name: str) -> str:
        return self.flags.flag(name)

    def require_up(self, dependency: str) -> None:
        """Raise :class:`DependencyDown` while ``lab.outage(dependency)`` is in effect."""
        if dependency in self.outages:
            raise DependencyDown(f"the {dependency} service is down (simulated outage)")
