"""The capstone's report: the grader's rows under the checklist item each one proves, and a
certificate-style summary at the end (which items hold)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from labapp.engine.grading import Report, Row


@dataclass
class Certificate(Report):
    """A report whose rows are grouped by checklist item (``items``: item -> row ids)."""

    items: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def holds(self) -> list[tuple[str, bool, int]]:
        """(item, holds, rows) for each item, in the checklist's order."""
        by_id = {row.id: row for row in self.rows}
        found = []
        for item, ids in self.items.items():
            rows = [by_id[i] for i in ids if i in by_id]
            found.append((item, all(row.passed for row in rows), len(rows)))
        return found

    def summary(self) -> str:
        held = sum(ok for _, ok, _ in self.holds())
        return f"{self.title}: {held}/{len(self.items)} checklist items hold"

    def __str__(self) -> str:
        by_id = {row.id: row for row in self.rows}
        lines = [self.summary()]
        for item, ok, _ in self.holds():
            lines.append(f"{'HOLDS' if ok else 'FAILS'}  {item}")
            for row_id in self.items[item]:
                row = by_id.get(row_id)
                if row is not None:
                    lines.append("    " + _row_text(row))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        by_id = {row.id: row for row in self.rows}
        parts = [f"<div><p><b>{e(self.summary())}</b></p>"]
        for item, ok, count in self.holds():
            colour = "#1a7f37" if ok else "#cf222e"
            mark = "✅" if ok else "❌"
            parts.append(
                f"<details{' open' if not ok else ''}><summary style='color:{colour}'>"
                f"{mark} <b>{e(item)}</b> ({count} rows)</summary><ul>"
            )
            for row_id in self.items[item]:
                row = by_id.get(row_id)
                if row is not None:
                    parts.append(f"<li>{e(_row_text(row))}</li>")
            parts.append("</ul></details>")
        parts.append("</div>")
        return "".join(parts)


def _row_text(row: Row) -> str:
    mark = "PASS" if row.passed else "FAIL"
    text = f"{mark} {row.id}: {row.description} (observed {row.observed})"
    if not row.passed and row.hint:
        text += f" — hint: {row.hint}"
    return text


def present(items: dict[str, tuple[str, ...]]) -> object:
    """The ``present`` of the capstone's Lesson: a grade's report as a certificate."""

    def certificate(report: Report) -> Report:
        return Certificate(report.title, report.rows, report.log, items=items)

    return certificate
