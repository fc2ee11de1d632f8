"""Lesson 00's grader: the learner's route inventory, checked against the lab's truth."""

from __future__ import annotations

from typing import Any

from labapp.engine.grading import Row
from labapp.lessons.l00_welcome.app import ASSETS, AUDIENCES, TRUTH


def grade_classification(lab: Any, answer: Any) -> list[Row]:
    """One row per route of the lab: the learner's classification against the truth."""
    if not isinstance(answer, dict):
        return [
            Row(
                "answer",
                "format",
                "the answer's shape",
                "a dict",
                f"a {type(answer).__name__}",
                False,
                "map 'METHOD /path' to {'asset': ..., 'changes_state': ..., 'who': ...}",
            )
        ]
    rows = []
    for route, (asset, changes, who) in TRUTH.items():
        given = answer.get(route)
        if not isinstance(given, dict):
            rows.append(
                Row(
                    "answer",
                    route,
                    "classify this route",
                    "a classification",
                    "missing",
                    False,
                    f"add answer[{route!r}] = {{...}}",
                )
            )
            continue
        wrong = []
        if given.get("asset") != asset:
            wrong.append(f"asset {given.get('asset')!r} (choose from {', '.join(ASSETS)})")
        if given.get("changes_state") is not changes:
            wrong.append(f"changes_state {given.get('changes_state')!r}")
        if given.get("who") != who:
            wrong.append(f"who {given.get('who')!r} (choose from {', '.join(AUDIENCES)})")
        rows.append(
            Row(
                "answer",
                route,
                "asset, changes_state, who",
                "all three right",
                "; ".join(wrong) or "right",
                not wrong,
                "look again at " + " and ".join(w.split(" ")[0] for w in wrong),
            )
        )
    for extra in sorted(set(answer) - set(TRUTH)):
        rows.append(
            Row(
                "answer",
                str(extra),
                "not a route of this lab",
                "absent",
                "present",
                False,
                "keys look like 'GET /books/{book_id}'",
            )
        )
    return rows
