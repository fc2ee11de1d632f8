"""The labapp command: called in-process through main(), and once as the installed script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from labapp.tools.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _solution() -> nbformat.NotebookNode:
    return new_notebook(
        cells=[
            new_code_cell(
                "### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
                execution_count=1,
                outputs=[new_output("stream", name="stdout", text="1\n")],
            )
        ]
    )


def _notebooks_args(solutions: Path, notebooks: Path, *extra: str) -> list[str]:
    return ["notebooks", *extra, "--solutions", str(solutions), "--out", str(notebooks)]


def test_lessons_lists_every_lesson(capsys: pytest.CaptureFixture[str]) -> None:
    """`labapp lessons` prints lessons 00 and 01 and exits 0."""
    assert main(["lessons"]) == 0
    out = capsys.readouterr().out
    assert "00-welcome" in out
    assert "01-unprotected" in out


def test_notebooks_writes_the_learner_copies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`labapp notebooks` writes the stripped learner copy and names it."""
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nbformat.write(_solution(), solutions / "01.ipynb")
    assert main(_notebooks_args(solutions, notebooks)) == 0
    assert "wrote 1 notebook(s)" in capsys.readouterr().out
    learner = nbformat.read(notebooks / "01.ipynb", as_version=4)
    assert "raise NotImplementedError()" in learner.cells[0].source
    assert learner.cells[0].outputs == []


def test_notebooks_check_fails_after_a_hand_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`labapp notebooks --check` exits 0 on a consistent pair, and 1 naming the edited file."""
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nbformat.write(_solution(), solutions / "01.ipynb")
    main(_notebooks_args(solutions, notebooks))
    capsys.readouterr()

    assert main(_notebooks_args(solutions, notebooks, "--check")) == 0
    assert "is exactly what" in capsys.readouterr().out

    learner = notebooks / "01.ipynb"
    learner.write_text(learner.read_text().replace("# YOUR CODE HERE", "x = 1"))
    assert main(_notebooks_args(solutions, notebooks, "--check")) == 1
    out = capsys.readouterr().out
    assert f"{learner}: differs from its solution" in out


def test_strip_check_fails_until_strip_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`labapp strip --check` exits 1 on a notebook with outputs, and 0 once `labapp strip` ran."""
    path = tmp_path / "dirty.ipynb"
    nbformat.write(_solution(), path)
    assert main(["strip", "--check", str(tmp_path)]) == 1
    assert f"{path}: has outputs" in capsys.readouterr().out

    assert main(["strip", str(path)]) == 0
    assert "stripped 1 notebook(s)" in capsys.readouterr().out
    assert main(["strip", "--check", str(path)]) == 0
    assert "1 notebook(s) are free of outputs" in capsys.readouterr().out


def test_authoring_error_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A solution with an unclosed region makes `labapp notebooks` exit 2 with a one-line error."""
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell("### BEGIN SOLUTION")]), solutions / "x.ipynb")
    assert main(_notebooks_args(solutions, tmp_path / "notebooks")) == 2
    assert "labapp: x.ipynb cell 0" in capsys.readouterr().err


def test_installed_script_checks_the_repository_notebooks() -> None:
    """The installed `labapp notebooks --check`, run in the repository root, exits 0."""
    script = Path(sys.executable).parent / "labapp"
    result = subprocess.run(
        [str(script), "notebooks", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "notebooks/ is exactly what solutions/ makes." in result.stdout


def test_check_outside_the_course_root_is_an_error_not_a_pass(tmp_path, capsys) -> None:
    """With no solutions/ folder, --check fails loudly instead of checking nothing."""
    assert main(["notebooks", "--check", "--solutions", str(tmp_path / "nope")]) == 2
    assert "run this from the course's root" in capsys.readouterr().err


def test_strip_of_a_missing_path_is_a_one_line_error(tmp_path, capsys) -> None:
    """A wrong path gives a `labapp:` message and exit 2, not a traceback."""
    assert main(["strip", "--check", str(tmp_path / "missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err


def test_the_cohort_commands_are_wired_in(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`labapp release` and `labapp grade` are reachable from the command itself."""
    assert main(["release", str(tmp_path / "release")]) == 0
    assert (tmp_path / "release" / "notebooks").is_dir()
    assert not (tmp_path / "release" / "solutions").exists()
    assert main(["grade", str(tmp_path / "no-such-folder")]) == 2
    assert "labapp:" in capsys.readouterr().err
