"""Lesson 10's pictures: a day's events with the alerts on them, and who a risk decision
challenged. Drawn with matplotlib's Agg backend into PNG bytes that a report embeds."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

from labapp.lessons.l10_logging.traffic import DAY, KINDS

COLOURS = dict(zip(KINDS, ("#c0392b", "#8e44ad", "#d35400", "#2471a3", "#16a085"), strict=True))
DECISION_COLOURS = {"allow": "#95a5a6", "step_up": "#f39c12", "deny": "#c0392b", "error": "#000"}


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()


def timeline(
    events: list[dict[str, Any]],
    alerts: list[tuple[str, str, float]],
    false: dict[str, set[str]],
) -> bytes:
    """Events per ten minutes over the day (failures apart), each alert a mark at its time:
    a triangle, or a cross for a false alarm (``false``: kind -> subjects wrongly alerted)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from labapp.lessons.l10_logging.scoring import timestamp

    bins = 144  # ten minutes each
    total, failed = [0] * bins, [0] * bins
    for event in events:
        try:
            slot = int((timestamp(event.get("time")) - DAY) // 600)
        except ValueError:
            continue
        if 0 <= slot < bins:
            total[slot] += 1
            failed[slot] += event.get("outcome") == "failure"
    hours = [i / 6 for i in range(bins)]
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.fill_between(hours, total, step="post", color="#d5dbdb", label="events")
    ax.fill_between(hours, failed, step="post", color="#f5b7b1", label="failures")
    top = max(total + [1])
    for row, kind in enumerate(KINDS):
        wrong = false.get(kind, set())
        for mistaken, marker in ((False, "v"), (True, "x")):
            times = [
                (at - DAY) / 3600
                for alert_kind, subject, at in alerts
                if alert_kind == kind and (subject in wrong) == mistaken
            ]
            what = "false alarm" if mistaken else "alert"
            ax.scatter(
                times,
                [top * (1.05 + 0.07 * row)] * len(times),
                marker=marker,
                s=18,
                color=COLOURS[kind],
                label=f"{what}: {kind}" if times or not mistaken else None,
            )
    ax.set_xlim(0, 24)
    ax.set_xlabel("hour of the day (UTC)")
    ax.set_ylabel("events per 10 min")
    ax.legend(loc="upper left", fontsize=7, ncol=2, frameon=False, bbox_to_anchor=(1.01, 1))
    return _png(fig)


def decisions(normal: list[str], attack: list[str], budget: float) -> bytes:
    """How the decision answered the users' own logins and the attackers'."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2))
    groups = (("owners", normal), ("attackers", attack))
    for y, (_, answers) in enumerate(groups):
        counts, left = Counter(answers), 0.0
        for decision, colour in DECISION_COLOURS.items():
            share = counts[decision] / max(len(answers), 1)
            if share:
                ax.barh(y, share, left=left, color=colour, label=decision)
                ax.text(
                    left + share / 2,
                    y,
                    f"{counts[decision]}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if decision != "allow" else "black",
                )
                left += share
    ax.axvline(budget, color="#2c3e50", linestyle="--", linewidth=1)
    ax.text(budget, 1.45, f" friction budget {budget:.0%}", fontsize=7, va="center")
    ax.set_yticks((0, 1), [f"{name} ({len(answers)})" for name, answers in groups])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of logins with the right password")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(
        unique.values(),
        unique.keys(),
        fontsize=7,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
    )
    return _png(fig)
