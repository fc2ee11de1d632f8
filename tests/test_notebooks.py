"""The notebooks: structure, the learner copies' failing graders, and quiet kernels."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from labapp.lessons import all_lessons, get_lesson
from tests.conftest import ROOT

REAL_FLAG = re.compile(r"FLAG\{[\w-]+:[\w-]+:[0-9a-f]{8,}\}")
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LEARNER = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def _run(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    return nb


def _errored(cell) -> bool:
    return any(output.output_type == "error" for output in cell.get("outputs", []))


def test_every_lesson_has_a_notebook_and_every_notebook_a_lesson() -> None:
    """The lesson registry and solutions/ name the same notebooks."""
    assert sorted(lesson.notebook for lesson in all_lessons()) == [p.name for p in SOLUTIONS]
    assert [p.name for p in LEARNER] == [p.name for p in SOLUTIONS]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_each_notebook_opens_and_ends_the_same_way(path: Path) -> None:
    """Title cell with purpose, learnings, time and checklist; one setup cell; a stop."""
    nb = nbformat.read(path, as_version=4)
    intro, setup, last = nb.cells[0], nb.cells[1], nb.cells[-1]
    assert intro.cell_type == "markdown"
    assert re.match(rf"# {path.name[:2]} — ", intro.source)
    for needed in ("**Purpose:**", "**You will learn**", "**Time:**", "**Checklist items:**"):
        assert needed in intro.source
    assert "setup" in _tags(setup) and "start_lab(" in setup.source
    assert last.source.strip() == "lab.stop()"
    assert "## Summary" in "".join(c.source for c in nb.cells)
    assert "## Further reading" in "".join(c.source for c in nb.cells)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_flag_and_quiz_has_a_grader_cell(path: Path) -> None:
    """Each exercise of the lesson is graded by a cell tagged grader, named in its comment."""
    lesson = get_lesson(path.stem)
    nb = nbformat.read(path, as_version=4)
    graders = [c.source for c in nb.cells if "grader" in _tags(c)]
    assert all(source.startswith("# Grader") for source in graders)
    graded = "\n".join(graders)
    for name in lesson.flag_names:
        assert f'lab.check_flag("{name}"' in graded
    for quiz in lesson.quizzes:  # lab.check_answer("id", ...), or lab.grade_id() for short
        grade_call = f"lab.grade_{quiz.id.replace('-', '_')}("
        assert f'lab.check_answer("{quiz.id}"' in graded or grade_call in graded
    if lesson.hooks:
        assert "lab.grade()" in graded
    exercises = [c for c in nb.cells if "exercise" in _tags(c)]
    assert exercises and all("### BEGIN SOLUTION" in c.source for c in exercises)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_row_the_grader_checks_is_stated_in_the_notebook(path: Path) -> None:
    """A learner never meets a row whose rule the notebook did not state: each attack and
    legitimate check of the battery is named (as `row-id`) in the notebook's text."""
    lesson = get_lesson(path.stem)
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    rows = [item.id for item in (*lesson.attacks, *lesson.checks)]
    unstated = [row for row in rows if f"`{row}`" not in text]
    assert unstated == [], f"rows the notebook never names: {unstated}"


@pytest.mark.parametrize("path", LEARNER, ids=lambda p: p.stem)
def test_learner_grader_cells_are_locked(path: Path) -> None:
    """Learners cannot edit or delete a grader cell in JupyterLab."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "grader" in _tags(cell):
            assert cell.metadata["editable"] is False and cell.metadata["deletable"] is False


@pytest.mark.notebook
@pytest.mark.parametrize("path", LEARNER, ids=lambda p: p.stem)
def test_an_untouched_learner_notebook_fails_exactly_in_its_graders(path: Path) -> None:
    """Run top to bottom unedited: only exercise and grader cells fail, and every grader does."""
    nb = _run(nbformat.read(path, as_version=4))
    failed_elsewhere = [
        cell.source.splitlines()[0]
        for cell in nb.cells
        if _errored(cell) and not {"exercise", "grader"} & set(_tags(cell))
    ]
    passing_graders = [
        cell.source.splitlines()[0]
        for cell in nb.cells
        if "grader" in _tags(cell) and not _errored(cell)
    ]
    assert failed_elsewhere == []
    assert passing_graders == []
    # No cell a learner runs before solving an exercise shows a flag (or answer) for free.
    shown = [
        cell.source.splitlines()[0]
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if REAL_FLAG.search(str(output))
    ]
    assert shown == [], f"cells that print a flag without an exploit: {shown}"


@pytest.mark.notebook
def test_server_log_lines_never_spill_into_later_cells() -> None:
    """A server error in one cell prints nothing in the next: the log goes to the report."""
    nb = new_notebook(
        cells=[
            new_code_cell(
                "from labapp import start_lab\n"
                "lab = start_lab('01')\n"
                "lab.defend(authorize=lambda req: 1 / 0)\n"
                "status = lab.client.get('/orders').status_code"
            ),
            new_code_cell("import time; time.sleep(0.3); print(status)"),
            new_code_cell("print('/orders HTTP/1.1\" 500' in '\\n'.join(lab.server_log()))"),
        ]
    )
    nb = _run(nb)
    first, second, third = (cell.outputs for cell in nb.cells)
    assert [(o.name, o.text.split(":")[0]) for o in first] == [("stdout", "Defended")]
    assert [(o.name, o.text) for o in second] == [("stdout", "500\n")]
    assert [(o.name, o.text) for o in third] == [("stdout", "True\n")]
