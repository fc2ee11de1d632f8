"""Alerts against the truth: precision and recall per attack kind.

An alert names a kind, a subject (an address or a username, as ``traffic.SUBJECT`` says)
and when (``at``, the time of the event that raised it). A subject counts as detected when
one of its alerts of the right kind points inside the incident: from five minutes before it
began to an hour after it ended (a rule may need a few events before it is sure). Alerts
are judged per subject, so ten alerts about one address are one true (or one false) alarm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from labapp.lessons.l10_logging.traffic import KINDS

BEFORE, AFTER = 5 * 60.0, 3600.0
PRECISION = RECALL = 0.9


class BadAlerts(ValueError):
    """detect() returned something that is not a list of alerts."""


@dataclass
class Score:
    kind: str
    found: list[str]
    missed: list[str]
    false: list[str]  # subjects alerted that were not this kind of attack (or not then)

    @property
    def recall(self) -> float:
        total = len(self.found) + len(self.missed)
        return len(self.found) / total if total else 1.0

    @property
    def precision(self) -> float:
        alerted = len(self.found) + len(self.false)
        return len(self.found) / alerted if alerted else 0.0

    @property
    def passed(self) -> bool:
        return self.recall >= RECALL and self.precision >= PRECISION


def timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    raise BadAlerts(f"an alert's 'at' must be an event's time (ISO 8601), not {value!r:.60}")


def read_alerts(alerts: Any) -> list[tuple[str, str, float]]:
    """(kind, subject, at) of each alert, or BadAlerts saying what is wrong with the shape."""
    if isinstance(alerts, (str, bytes, dict)) or not hasattr(alerts, "__iter__"):
        raise BadAlerts(f"detect() must return a list of alerts, not {type(alerts).__name__}")
    read = []
    for alert in alerts:
        if not isinstance(alert, dict) or not {"kind", "subject", "at"} <= alert.keys():
            raise BadAlerts(
                f"each alert is a dict with 'kind', 'subject' and 'at'; one was {alert!r:.80}"
            )
        read.append((str(alert["kind"]), str(alert["subject"]), timestamp(alert["at"])))
    return read


def score(alerts: list[tuple[str, str, float]], truth: dict) -> list[Score]:
    scores = []
    for kind in KINDS:
        incidents = truth.get(kind, {})
        alerted: dict[str, list[float]] = {}
        for alert_kind, subject, at in alerts:
            if alert_kind == kind:
                alerted.setdefault(subject, []).append(at)
        found, false = [], []
        for subject, times in alerted.items():
            window = incidents.get(subject)
            inside = window and any(window[0] - BEFORE <= t <= window[1] + AFTER for t in times)
            (found if inside else false).append(subject)
        missed = [subject for subject in incidents if subject not in found]
        scores.append(Score(kind, sorted(found), sorted(missed), sorted(false)))
    return scores


def unknown_kinds(alerts: list[tuple[str, str, float]]) -> list[str]:
    return sorted({kind for kind, _, _ in alerts if kind not in KINDS})
