"""Which service the lab serves right now: its own, or a replayed day's.

A grade replays a day against a fresh :class:`Service` (new accounts, its own clock and log
file) on the same server, then puts the lab's own service back: what you explored is kept.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from labapp.engine.spec import LabState
from labapp.lessons.l10_logging.service import Service

DECISIONS = ("allow", "step_up", "deny")


class Desk:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.judge_risk = True  # False while a day replays: yesterday had no adaptive login
        self._one_replay = threading.Lock()

    @contextlib.contextmanager
    def replaying(self, service: Service, *, judge_risk: bool) -> Iterator[Service]:
        with self._one_replay:
            own, judged = self.service, self.judge_risk
            self.service, self.judge_risk = service, judge_risk
            try:
                yield service
            finally:
                self.service, self.judge_risk = own, judged

    async def assess(self, state: LabState, context: dict[str, Any]) -> str:
        """The decision for a login whose password was right: the ``assess_risk`` hook's."""
        if not self.judge_risk:
            return "allow"
        decision = await state.call("assess_risk", dict(context))
        if decision not in DECISIONS:
            raise state.guard.bad_result(
                "assess_risk",
                f"assess_risk() returned {decision!r}; it must return one of "
                + ", ".join(repr(d) for d in DECISIONS),
            )
        return decision
