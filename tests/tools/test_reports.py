"""What a grading run writes: grades.csv, grades.json and the feedback index."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from labapp.engine.errors import GradingError
from labapp.tools.reports import Grades, Row, index_html, read_grades, summary, write_grades

COLUMNS = ("00-welcome:classify", "01-unprotected:read-all-orders", "01-unprotected:defend")
ROWS = (
    Row("<b>mallory</b>", ("pass", "pass", "pass"), ("01-unprotected-endpoints.ipynb",)),
    Row("=cmd|' /C calc'!A0", ("fail", "missing", "missing")),
    Row("zoë & co", ("pass", "pass", "timeout")),
)
GRADES = Grades(COLUMNS, tuple(r.learner for r in ROWS), ROWS)


def test_grades_json_reads_back_as_written(tmp_path: Path) -> None:
    """grades.json is what --merge reads: every field survives the round trip."""
    write_grades(tmp_path, GRADES)
    assert read_grades(tmp_path) == GRADES


def test_the_csv_has_totals_and_never_starts_a_cell_with_a_formula(tmp_path: Path) -> None:
    write_grades(tmp_path, GRADES)
    with (tmp_path / "grades.csv").open(newline="") as rows:
        found = list(csv.DictReader(rows))
    assert [row["learner"] for row in found] == [
        "<b>mallory</b>",
        "'=cmd|' /C calc'!A0",
        "zoë & co",
    ]
    assert [row["passed"] for row in found] == ["3", "0", "2"]
    assert {row["total"] for row in found} == {"3"}
    assert found[0]["tampered"] == "01-unprotected-endpoints.ipynb"


def test_the_index_links_each_learner_and_counts_each_lesson() -> None:
    """Names escaped, links URL-quoted, a lesson's count with its exercises on hover."""
    page = index_html(GRADES)
    assert "<b>mallory</b>" not in page
    assert "&lt;b&gt;mallory&lt;/b&gt;" in page
    assert "href='zo%C3%AB%20%26%20co.html'" in page
    assert ">1/2</td>" in page and "read-all-orders: pass, defend: timeout" in page
    assert page.count("<tr>") == 1 + len(ROWS)


def test_a_summary_line_counts_every_status() -> None:
    assert summary(ROWS[1]) == "=cmd|' /C calc'!A0: 0/3 exercises passed (1 fail, 2 missing)"
    assert summary(ROWS[0]) == "<b>mallory</b>: 3/3 exercises passed"


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"format": "labapp-grades/1"},
        {**GRADES.to_json(), "shard": "1/1"},
        {**GRADES.to_json(), "rows": [{"learner": "x", "statuses": ["pass"], "tampered": []}]},
    ],
)
def test_a_damaged_grades_json_is_a_grading_error(tmp_path: Path, data: object) -> None:
    """Not a list of crashes: a one-line GradingError naming the file."""
    (tmp_path / "grades.json").write_text(json.dumps(data))
    with pytest.raises(GradingError, match="grades.json"):
        read_grades(tmp_path)
