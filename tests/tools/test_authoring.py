"""Authoring: solutions/ -> notebooks/, stripped of answers and outputs, and verified."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labapp.tools.authoring import (
    AuthoringError,
    check,
    generate,
    learner_copy,
    plan,
    strip,
    strip_solution,
    unstripped,
)

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "# YOUR CODE HERE\nraise NotImplementedError()"


def _solution() -> nbformat.NotebookNode:
    return new_notebook(
        cells=[
            new_markdown_cell("# Lesson\nWrite `answer()`."),
            new_code_cell(
                "def answer():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION",
                execution_count=3,
                outputs=[new_output("stream", name="stdout", text="hi\n")],
            ),
            new_code_cell("lab.check_flag('x', FLAG)", metadata={"tags": ["grader"]}),
        ]
    )


def _write(path: Path, nb: nbformat.NotebookNode) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    _write(solutions / "01-lesson.ipynb", _solution())
    return solutions, notebooks


def test_top_level_region_becomes_the_placeholder() -> None:
    """A region at column 0 becomes the two placeholder lines; code around it stays."""
    source = "import os\n### BEGIN SOLUTION\nx = 1\ny = 2\n### END SOLUTION\nprint(x)"
    assert strip_solution(source) == f"import os\n{PLACEHOLDER}\nprint(x)"


def test_indented_region_keeps_the_begin_markers_indentation() -> None:
    """A region inside a function body gets the placeholder at the BEGIN marker's indent."""
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
    expected = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    assert strip_solution(source) == expected


def test_two_regions_in_one_cell_are_both_replaced() -> None:
    """Each of two regions in one cell is replaced, and the code between them is kept."""
    source = (
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
        "\nkeep = True\n### BEGIN SOLUTION\nsecret = 2\n### END SOLUTION"
    )
    stripped = strip_solution(source)
    assert stripped.count("raise NotImplementedError()") == 2
    assert "keep = True" in stripped
    assert "return 1" not in stripped
    assert "secret = 2" not in stripped
    assert "SOLUTION" not in stripped


def test_source_without_regions_is_unchanged() -> None:
    """A cell with no markers comes out exactly as it went in."""
    source = "x = 1\n\nprint(x)\n"
    assert strip_solution(source) == source


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
    ],
    ids=["unclosed-begin", "end-without-begin", "nested-begin"],
)
def test_broken_markers_raise_authoring_error(source: str, problem: str) -> None:
    """Unbalanced or nested markers are refused with a message naming where and what."""
    with pytest.raises(AuthoringError, match=problem) as caught:
        strip_solution(source, where="nb cell 4")
    assert "nb cell 4" in str(caught.value)


def test_learner_copy_clears_outputs_and_keeps_cell_ids() -> None:
    """The learner copy has no outputs or execution counts, and the same cell ids."""
    solution = _solution()
    nb = learner_copy(solution)
    assert [c.id for c in nb.cells] == [c.id for c in solution.cells]
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None
    assert "return 42" not in nb.cells[1].source
    assert solution.cells[1].outputs  # the solution itself is left alone
    nbformat.validate(nb)


def test_learner_copy_locks_only_grader_cells() -> None:
    """Cells tagged grader become non-editable and non-deletable; others stay editable."""
    nb = learner_copy(_solution())
    grader = nb.cells[2].metadata
    assert grader["editable"] is False
    assert grader["deletable"] is False
    for cell in nb.cells[:2]:
        assert "editable" not in cell.metadata
        assert "deletable" not in cell.metadata


def test_solution_markers_in_markdown_are_refused() -> None:
    """A markdown cell holding a BEGIN marker raises AuthoringError naming the cell."""
    nb = new_notebook(cells=[new_markdown_cell("### BEGIN SOLUTION\nanswer")])
    with pytest.raises(AuthoringError, match="les.ipynb cell 0"):
        learner_copy(nb, "les.ipynb")


def test_check_is_clean_right_after_generate(dirs: tuple[Path, Path]) -> None:
    """generate() writes the learner copy and check() then finds nothing to report."""
    solutions, notebooks = dirs
    assert generate(solutions, notebooks) == [notebooks / "01-lesson.ipynb"]
    assert check(solutions, notebooks) == []
    nbformat.validate(nbformat.read(notebooks / "01-lesson.ipynb", as_version=4))


def test_generate_is_idempotent(dirs: tuple[Path, Path]) -> None:
    """A second generate() changes no file."""
    generate(*dirs)
    assert generate(*dirs) == []


def test_check_reports_a_missing_learner_notebook(dirs: tuple[Path, Path]) -> None:
    """A solution without its learner copy is reported as missing."""
    (problem,) = check(*dirs)
    assert "01-lesson.ipynb: missing" in problem


def test_check_reports_a_hand_edited_learner_notebook(dirs: tuple[Path, Path]) -> None:
    """Editing the learner copy by hand makes check() report that it differs."""
    solutions, notebooks = dirs
    generate(solutions, notebooks)
    path = notebooks / "01-lesson.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\nA hand edit."
    nbformat.write(nb, path)
    (problem,) = check(solutions, notebooks)
    assert "differs from its solution" in problem


def test_check_reports_a_stray_learner_notebook(dirs: tuple[Path, Path]) -> None:
    """A learner notebook that no solution makes is reported as a stray."""
    solutions, notebooks = dirs
    generate(solutions, notebooks)
    _write(notebooks / "99-stray.ipynb", new_notebook())
    assert plan(solutions, notebooks).strays == [notebooks / "99-stray.ipynb"]
    (problem,) = check(solutions, notebooks)
    assert "99-stray.ipynb: no solution notebook makes this file" in problem


def test_unstripped_flags_outputs_and_execution_counts(tmp_path: Path) -> None:
    """A notebook with outputs, or with only an execution count, is reported; a clean one not."""
    with_outputs = _write(tmp_path / "a.ipynb", _solution())
    count_only = _write(
        tmp_path / "b.ipynb", new_notebook(cells=[new_code_cell("1", execution_count=1)])
    )
    clean = _write(tmp_path / "c.ipynb", new_notebook(cells=[new_code_cell("1")]))
    problems = unstripped([with_outputs, count_only, clean])
    assert len(problems) == 2
    assert str(with_outputs) in problems[0]
    assert str(count_only) in problems[1]


def test_strip_clears_outputs_and_is_idempotent(tmp_path: Path) -> None:
    """strip() clears outputs in place, and a second strip() changes nothing."""
    path = _write(tmp_path / "a.ipynb", _solution())
    assert strip([path]) == [path]
    assert unstripped([path]) == []
    assert "return 42" in path.read_text()  # stripping outputs keeps the solution
    assert strip([path]) == []


def test_repository_notebooks_match_their_solutions() -> None:
    """The committed notebooks/ is exactly what solutions/ makes, and both are output-free."""
    assert check(ROOT / "solutions", ROOT / "notebooks") == []
    paths = sorted((ROOT / "solutions").glob("*.ipynb")) + sorted(
        (ROOT / "notebooks").glob("*.ipynb")
    )
    assert paths
    assert unstripped(paths) == []
