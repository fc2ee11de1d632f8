"""Lesson 06's figure: the permission matrix as the server answers it, red where it differs.

Each cell is one real request (the grader's own ``matrix``): a role's seeded user calls one
endpoint, on an object of their own or someone else's. Green: allowed, as the policy table
says. Grey: denied, as it says. Red: the server's answer differs from the table.
"""

from __future__ import annotations

from typing import Any

from labapp.engine.grading import grader_client
from labapp.lessons.l06_least_privilege.matrix import ENDPOINTS, matrix

COLOURS = {"allow": "#8fd19e", "deny": "#d9d9d9", "differs": "#e5484d", "none": "#ffffff"}
SHORT = {"allow:own": "own", "allow:all": "all"}
NAMES = {"own": "own", "other": "someone else's"}


def cells(lab: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """{(role, column): (expected, observed)} for every cell, from real requests."""
    with grader_client(lab.url, **lab.client_options()) as http:
        rows = matrix(lab, http)
    return {
        (role, f"{path} {obj}".rstrip(" —")): (want, got) for role, path, obj, want, got in rows
    }


def draw_permission_matrix(lab: Any, title: str = "") -> None:
    """Draw the role × endpoint grid of ``lab`` as it answers now (weak or defended)."""
    import matplotlib.pyplot as plt  # here, so that importing the lesson stays light
    from matplotlib.patches import Patch

    seen = cells(lab)
    roles = list(dict.fromkeys(role for role, _ in seen))
    columns = [f"{m} {route} {obj}".rstrip() for m, route, _, obj in ENDPOINTS]
    fig, ax = plt.subplots(figsize=(12, 3.6))
    wrong = 0
    for y, role in enumerate(roles):
        for x, column in enumerate(columns):
            want, got = seen.get((role, column), ("", ""))
            if not want:
                colour, text = COLOURS["none"], "n/a"
            elif want == got:
                colour = COLOURS["deny" if got == "deny" else "allow"]
                text = SHORT.get(got, got)
            else:
                wrong += 1
                colour = COLOURS["differs"]
                text = f"{SHORT.get(got, got)}\n(want {SHORT.get(want, want)})"
            ax.add_patch(plt.Rectangle((x, y), 1, 1, facecolor=colour, edgecolor="white", lw=2))
            ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=8)
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(roles), 0)
    ax.set_xticks([x + 0.5 for x in range(len(columns))])
    labels = [
        f"{m}\n{route}" + (f"\n({NAMES[obj]})" if obj else "") for m, route, _, obj in ENDPOINTS
    ]
    ax.set_xticklabels(labels, fontsize=7.5)
    ax.set_yticks([y + 0.5 for y in range(len(roles))])
    ax.set_yticklabels(roles)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title or f"Permission matrix: {wrong} of {len(seen)} cells differ from the table")
    legend = [
        Patch(facecolor=COLOURS["allow"], label="allowed, as the table says"),
        Patch(facecolor=COLOURS["deny"], label="denied, as the table says"),
        Patch(facecolor=COLOURS["differs"], label="differs from the table"),
    ]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3)
    fig.tight_layout()
