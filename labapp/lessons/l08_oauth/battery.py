"""Lesson 08's battery: the attacks and legitimate checks the grader replays.

Empty for now: the nine attacks of the plan (docs/dev/08-oauth-plan.md) come next, each
over real HTTP through the lab's browser and the victim.
"""

from __future__ import annotations

from labapp.engine.grading import Attack, Check

ATTACKS: tuple[Attack, ...] = ()
CHECKS: tuple[Check, ...] = ()
