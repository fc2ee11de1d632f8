"""docs/references: a table per notebook, and every table a real table with its sources."""

from __future__ import annotations

import re

import pytest

from labapp.lessons import all_lessons
from tests.conftest import ROOT

REFERENCES = ROOT / "docs" / "references"
LESSONS = list(all_lessons())


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.id for lesson in LESSONS])
def test_each_notebook_has_a_references_table_listed_in_the_index(lesson) -> None:
    name = lesson.notebook.removesuffix(".ipynb") + ".md"
    table = REFERENCES / name
    assert table.is_file(), f"docs/references/{name} is missing"
    assert f"({name})" in (REFERENCES / "README.md").read_text()
    rows = [line for line in table.read_text().splitlines() if line.startswith("|")]
    assert len(rows) >= 3, "a header, a separator and at least one citation"
    header = rows[0].lower()
    for column in ("where", "claim", "source", "wording"):
        assert column in header, f"{name}: no {column!r} column"
    sources = "\n".join(rows[2:])
    assert re.search(r"RFC \d+|OWASP|ASVS|CWE-\d+|NIST", sources), f"{name} cites nothing"
