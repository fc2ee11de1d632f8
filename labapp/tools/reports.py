"""What grading a cohort writes: ``grades.csv``, ``grades.json`` and the feedback pages.

One :class:`Grades` (a row per learner) makes the CSV, the machine-readable ``grades.json``
and the feedback index, so a run split into shards and merged writes byte for byte what one
run writes. A learner's own feedback page is written where that learner was graded.
"""

from __future__ import annotations

import csv
import html
import json
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labapp.engine.errors import GradingError

STATUSES = ("pass", "fail", "error", "timeout", "missing")
FORMAT = "labapp-grades/1"
CSV, JSON, FEEDBACK = "grades.csv", "grades.json", "feedback"


@dataclass
class Outcome:
    """One learner notebook graded: exercise -> (status, detail)."""

    learner: str
    notebook: str
    results: dict[str, tuple[str, str]]
    notes: list[str]
    seconds: float = 0.0
    tampered: bool = False  # a learner cell assigns to the lab or labapp: check by hand
    hints: dict[str, int] = field(default_factory=dict)  # "lesson:exercise" -> highest tier


@dataclass
class Learner:
    name: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # notebook name -> outcome
    skipped: list[str] = field(default_factory=list)
    handed_in_hints: dict[str, int] = field(default_factory=dict)  # from their progress file

    def hints(self) -> dict[str, int]:
        """Every hint seen: in the re-run notebooks or in the progress file handed in."""
        found = [self.handed_in_hints, *(outcome.hints for outcome in self.outcomes.values())]
        return dict(sorted(highest_hints(found).items()))


def highest_hints(found: Iterable[dict[str, int]]) -> dict[str, int]:
    """The highest hint tier per exercise over several records of hints."""
    seen: dict[str, int] = {}
    for hints in found:
        for exercise, tier in hints.items():
            seen[exercise] = max(tier, seen.get(exercise, 0))
    return seen


@dataclass(frozen=True)
class Row:
    """A learner's line of grades.csv: a status per column, and notebooks to check by hand."""

    learner: str
    statuses: tuple[str, ...]
    tampered: tuple[str, ...] = ()
    hints: tuple[tuple[str, int], ...] = ()  # ("04-jwt:alg-none", highest tier seen)

    @property
    def passed(self) -> int:
        return sum(status == "pass" for status in self.statuses)

    @property
    def hints_used(self) -> int:
        """Hints shown in all: each tier of each exercise counts one."""
        return sum(tier for _, tier in self.hints)

    def hints_text(self) -> str:
        return ", ".join(f"{exercise} ({_tier(tier)})" for exercise, tier in self.hints)


@dataclass(frozen=True)
class Grades:
    """A graded cohort, or one shard of it (``shard == (K, N)``; a whole run is 1/1)."""

    columns: tuple[str, ...]
    cohort: tuple[str, ...]  # every learner of the submissions, sorted, graded here or not
    rows: tuple[Row, ...]
    shard: tuple[int, int] = (1, 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "shard": list(self.shard),
            "columns": list(self.columns),
            "cohort": list(self.cohort),
            "rows": [
                {
                    "learner": r.learner,
                    "statuses": list(r.statuses),
                    "tampered": list(r.tampered),
                    "hints": dict(r.hints),
                }
                for r in self.rows
            ],
        }

    @classmethod
    def from_json(cls, data: Any, where: Path) -> Grades:
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, not {FORMAT!r}")
            rows = tuple(
                Row(
                    r["learner"],
                    tuple(r["statuses"]),
                    tuple(r["tampered"]),
                    tuple((str(k), int(v)) for k, v in r.get("hints", {}).items()),
                )
                for r in data["rows"]
            )
            k, n = data["shard"]
            grades = cls(tuple(data["columns"]), tuple(data["cohort"]), rows, (int(k), int(n)))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise GradingError(f"{where}: not a grades.json of labapp grade ({exc})") from None
        if any(len(row.statuses) != len(grades.columns) for row in rows):
            raise GradingError(f"{where}: a row's statuses do not match its columns")
        return grades


def write_grades(out: Path, grades: Grades) -> None:
    """grades.csv, grades.json and feedback/index.html for these grades."""
    (out / FEEDBACK).mkdir(parents=True, exist_ok=True)
    write_csv(out / CSV, grades)
    text = json.dumps(grades.to_json(), indent=1, ensure_ascii=False) + "\n"
    (out / JSON).write_text(text, encoding="utf-8")
    (out / FEEDBACK / "index.html").write_text(index_html(grades), encoding="utf-8")


def read_grades(out: Path) -> Grades:
    path = out / JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GradingError(
            f"{out}: no {JSON} in it (is it an output folder of labapp grade?)"
        ) from None
    except (OSError, ValueError) as exc:
        raise GradingError(f"{path}: cannot be read ({exc})") from None
    return Grades.from_json(data, path)


def _csv_safe(name: str) -> str:
    # A spreadsheet runs a cell that starts with one of these as a formula.
    return f"'{name}" if name.startswith(("=", "+", "-", "@")) else name


def write_csv(path: Path, grades: Grades) -> None:
    columns = len(grades.columns)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["learner", *grades.columns, "passed", "total", "hints", "tampered"])
        for row in grades.rows:
            learner, tampered = _csv_safe(row.learner), " ".join(row.tampered)
            writer.writerow([learner, *row.statuses, row.passed, columns, row.hints_used, tampered])


_TIERS = {1: "nudge", 2: "technique", 3: "steps"}


def _tier(tier: int) -> str:
    return f"{tier}: {_TIERS[tier]}" if tier in _TIERS else str(tier)


def summary(row: Row) -> str:
    """``alice: 5/6 exercises passed (1 fail)``"""
    counts = {s: sum(v == s for v in row.statuses) for s in STATUSES}
    rest = ", ".join(f"{counts[s]} {s}" for s in STATUSES[1:] if counts[s])
    line = f"{row.learner}: {counts['pass']}/{len(row.statuses)} exercises passed"
    return line + (f" ({rest})" if rest else "")


def page_name(learner: str) -> str:
    return f"{learner}.html"


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
td, th { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
pre { white-space: pre-wrap; margin: 0; font-size: .85rem; }
.pass { color: #176f2c; } .fail, .error { color: #b00020; } .timeout { color: #a05a00; }
.missing { color: #666; } .note { background: #fff6d6; padding: .3rem .5rem; }
"""


def index_html(grades: Grades) -> str:
    """One line per learner: passed, each lesson's count, a link to the feedback page."""
    e = html.escape
    lessons = list(dict.fromkeys(column.split(":", 1)[0] for column in grades.columns))
    head = "".join(f"<th>{e(lesson)}</th>" for lesson in lessons)
    lines = []
    for row in grades.rows:
        cells = []
        for lesson in lessons:
            mine = [
                (column.split(":", 1)[1], status)
                for column, status in zip(grades.columns, row.statuses, strict=True)
                if column.split(":", 1)[0] == lesson
            ]
            done = sum(status == "pass" for _, status in mine)
            mark = "pass" if done == len(mine) else "missing" if done == 0 else "timeout"
            title = ", ".join(f"{exercise}: {status}" for exercise, status in mine)
            cells.append(f"<td class='{mark}' title='{e(title)}'>{done}/{len(mine)}</td>")
        link = urllib.parse.quote(page_name(row.learner))
        lines.append(
            f"<tr><td><a href='{e(link)}'>{e(row.learner)}</a></td>"
            f"<td>{row.passed}/{len(row.statuses)}</td>{''.join(cells)}"
            f"<td title='{e(row.hints_text())}'>{row.hints_used}</td>"
            f"<td>{e(' '.join(row.tampered))}</td></tr>"
        )
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                f"<title>Grades</title><style>{_CSS}</style></head><body>",
                "<h1>Grades</h1>",
                f"<p>{len(grades.rows)} learners, {len(grades.columns)} exercises. A name opens "
                "that learner's feedback; a lesson's count shows its exercises when you point at "
                "it. <b>Hints</b> counts the hints a learner was shown (each tier of each exercise "
                "counts one; tier 3 is the steps); point at it for the list. "
                "<b>Check by hand</b> lists notebooks with a line that changes the lab.</p>",
                f"<table><tr><th>Learner</th><th>Passed</th>{head}<th>Hints</th>"
                "<th>Check by hand</th></tr>",
                *lines,
                "</table></body></html>",
            ]
        )
        + "\n"
    )


def feedback_html(learner: Learner, notebooks: list[str], row: Row) -> str:
    """A learner's page: per notebook of the release (in course order), the restored-cell
    notes, then each exercise with its status and, for anything but a pass, why."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback for {e(learner.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Feedback for {e(learner.name)}</h1>",
        f"<p>{row.passed} of {len(row.statuses)} exercises passed.</p>",
    ]
    for name in notebooks:
        parts.append(f"<h2>{e(name)}</h2>")
        outcome = learner.outcomes.get(name)
        if outcome is None:
            parts.append("<p class='missing'>Not submitted: every exercise is missing.</p>")
            continue
        parts += [f"<p class='note'>{e(note)}</p>" for note in outcome.notes]
        parts.append("<table><tr><th>Exercise</th><th>Status</th><th>Details</th></tr>")
        for exercise, (status, detail) in outcome.results.items():
            shown = f"<pre>{e(detail)}</pre>" if detail else ""
            parts.append(
                f"<tr><td>{e(exercise)}</td><td class='{e(status)}'>{e(status)}</td>"
                f"<td>{shown}</td></tr>"
            )
        parts.append("</table>")
    if row.hints:
        parts.append("<h2>Hints used</h2><p>The highest hint seen per exercise:</p><ul>")
        parts += [f"<li>{e(exercise)}: {e(_tier(tier))}</li>" for exercise, tier in row.hints]
        parts.append("</ul>")
    if learner.skipped:
        parts.append("<h2>Not graded</h2><ul>")
        parts += [f"<li>{e(n)}</li>" for n in learner.skipped]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
