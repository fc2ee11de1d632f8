"""`labapp grade`: a small cohort graded for real under nbval, every way a notebook can go.

One grading run (module fixture) covers six learners on lessons 00 and 01: solved, untouched,
a tamperer (grader cells edited, deleted, re-tagged), a notebook that is not JSON, a kernel
that dies, and cells that hang. Cell timeout 10 s; a wall-clock limit of 45 s per notebook
that no notebook of this run reaches, however loaded the machine (a test of its own below).
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from labapp.tools import cohort
from labapp.tools.cli import main as labapp_main
from tests.conftest import ROOT

N00 = "00-welcome-threat-modeling.ipynb"
N01 = "01-unprotected-endpoints.ipynb"
EXERCISES_01 = ["read-all-orders", "internal-export", "trusted-header", "fail-open", "defend"]
COLUMNS = ["00-welcome:classify", *(f"01-unprotected:{name}" for name in EXERCISES_01)]
# Cell ids of notebooks/01 (the same in solutions/01).
EXERCISE_ORDERS, GRADER_ORDERS = "bf24ee27", "227fd393"
EXERCISE_EXPORT, GRADER_EXPORT = "b7adfa61", "31818b9d"
GRADER_HEADER = "11533612"
GRADER_DEFEND = "f464bf8d"
EXERCISE_CLASSIFY = "1eab9258"
SCRIPT = "<script>alert(1)</script>"
CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 10, 45
HANDED_IN_PROGRESS = (
    '{"version": 1, "lessons": {}, '
    '"hints": {"00-welcome": {"classify": {"tier": 3, "at": "2026-11-29T10:00:00+00:00"}}}}'
)


def _learner(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / name, as_version=4)


def _solution(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / name, as_version=4)


def _cell(nb: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    return next(cell for cell in nb.cells if cell.id == cell_id)


def _put(submissions: Path, learner: str, name: str, nb: nbformat.NotebookNode | str) -> None:
    folder = submissions / learner
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, str):
        (folder / name).write_text(nb)
    else:
        nbformat.write(nb, folder / name)


def _cohort(submissions: Path) -> None:
    _put(submissions, "solved", N00, _solution(N00))
    solved = _solution(N01)  # asked for one hint in a cell, and three in a cell since deleted
    solved.cells.insert(2, nbformat.v4.new_code_cell('lab.hint("read-all-orders")'))
    _put(submissions, "solved", N01, solved)
    (submissions / "solved" / ".labapp-progress.json").write_text(HANDED_IN_PROGRESS)

    _put(submissions, "untouched", N00, _learner(N00))
    _put(submissions, "untouched", N01, _learner(N01))

    tampered = _learner(N01)
    _cell(tampered, EXERCISE_ORDERS).source = f'flag_orders = "{SCRIPT}"'
    _cell(tampered, GRADER_ORDERS).source = "pass"
    _cell(tampered, GRADER_HEADER).metadata["tags"] = ["nbval-skip"]
    tampered.cells.remove(_cell(tampered, GRADER_EXPORT))
    _put(submissions, "tamperer", N01, tampered)

    _put(submissions, "broken", N00, '{"cells": [')
    _put(submissions, "broken", N01, _solution(N01))

    crashed = _learner(N00)
    _cell(crashed, EXERCISE_CLASSIFY).source = "import os\nos._exit(1)"
    _put(submissions, "crasher", N00, crashed)
    _put(submissions, "crasher", "99-not-in-the-course.ipynb", _learner(N00))

    cheat = _learner(N01)  # one line makes every grader pass: flagged for a human
    _cell(
        cheat, EXERCISE_ORDERS
    ).source = "lab.check_flag = lambda *args: None\nlab.grade = lambda: None\nflag_orders = 'x'"
    _put(submissions, "cheater", N01, cheat)

    shuffled = _solution(N01)  # one grader deleted, another with a new id: both in place
    shuffled.cells.remove(_cell(shuffled, GRADER_EXPORT))
    _cell(shuffled, GRADER_DEFEND).id = "pasted1"
    _put(submissions, "shuffled", N01, shuffled)
    _put(submissions / "nested", "work/notebooks", N00, _solution(N00))

    hanging = _learner(N01)
    _cell(hanging, EXERCISE_ORDERS).source = "import time; time.sleep(600)"
    _cell(hanging, EXERCISE_EXPORT).source = "import time; time.sleep(600)"
    _put(submissions, "sleeper", N01, hanging)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


class Graded:
    def __init__(self, base: Path) -> None:
        self.release = base / "release"
        self.release.mkdir()
        for name in (N00, N01):
            shutil.copy(ROOT / "notebooks" / name, self.release / name)
        self.submissions = base / "cohort"
        _cohort(self.submissions)
        before = _snapshot(self.submissions)
        self.out = base / "grades"
        stdout, stderr = io.StringIO(), io.StringIO()
        started = time.monotonic()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            self.code = labapp_main(
                [
                    "grade",
                    str(self.submissions),
                    "--release",
                    str(self.release),
                    "--out",
                    str(self.out),
                    "--workers",
                    "2",
                    "--cell-timeout",
                    str(CELL_TIMEOUT),
                    "--notebook-timeout",
                    str(NOTEBOOK_TIMEOUT),
                ]
            )
        self.seconds = time.monotonic() - started
        self.stdout, self.stderr = stdout.getvalue(), stderr.getvalue()
        self.untouched = _snapshot(self.submissions) == before
        with (self.out / "grades.csv").open(newline="") as rows:
            self.rows = list(csv.DictReader(rows))
        self.grades = {row["learner"]: row for row in self.rows}

    def statuses(self, learner: str) -> list[str]:
        return [self.grades[learner][column] for column in COLUMNS]

    def feedback(self, learner: str) -> str:
        return (self.out / "feedback" / f"{learner}.html").read_text()


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    return Graded(tmp_path_factory.mktemp("grading"))


def test_the_run_finishes_and_leaves_the_submissions_alone(graded: Graded) -> None:
    """Exit 0 despite hangs and crashes, within the limits; nothing written into SUBMISSIONS/."""
    assert graded.code == 0, graded.stderr
    # Not a speed test: the sleepers ask for 600 s each, so finishing well inside that shows
    # the wall-clock limit ended them (12 notebooks on 2 workers take about 25 s here).
    assert graded.seconds < 400
    assert graded.untouched


def test_a_learner_whose_notebook_is_the_solution_passes_every_exercise(graded: Graded) -> None:
    assert graded.statuses("solved") == ["pass"] * 6
    assert graded.grades["solved"]["passed"] == "6"


def test_an_untouched_learner_notebook_fails_every_exercise(graded: Graded) -> None:
    assert graded.statuses("untouched") == ["fail"] * 6
    page = graded.feedback("untouched")
    # The grader's own message reaches the feedback: what still gets through, with hints.
    assert "DefenseBreached" in page and "hint:" in page
    assert "\x1b[" not in page and "#x1B" not in page


def test_edited_deleted_and_retagged_grader_cells_are_restored(graded: Graded) -> None:
    """Editing a grader to `pass`, deleting one, re-tagging one: all still graded, and said so."""
    assert graded.statuses("tamperer") == ["missing"] + ["fail"] * 5
    page = graded.feedback("tamperer")
    assert "Restored grader cell for &#x27;read-all-orders&#x27;: it had been edited" in page
    assert "Restored grader cell for &#x27;internal-export&#x27;: it had been deleted" in page
    assert "Restored grader cell for &#x27;trusted-header&#x27;: it had been re-tagged" in page
    assert "not defined" in page  # the restored internal-export grader really ran


def test_feedback_escapes_what_learners_wrote(graded: Graded) -> None:
    """The tamperer's flag is a <script>: it appears escaped, never as markup."""
    page = graded.feedback("tamperer")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_hanging_cell_is_interrupted_and_the_graders_after_it_still_run(graded: Graded) -> None:
    """Each sleep is interrupted at the 10 s cell timeout; the graders run, and fail."""
    row = graded.statuses("sleeper")
    assert row[0] == "missing"
    assert row[1:] == ["fail"] * 5  # the flags were never set: the cells that set them hung
    page = graded.feedback("sleeper")
    assert f"ran past the {CELL_TIMEOUT} s cell timeout and was interrupted" in page


def test_the_wall_clock_limit_ends_a_notebook_and_its_graders_fail(tmp_path: Path) -> None:
    """A cell timeout longer than the notebook's limit: the wall clock kills the run."""
    hanging = _learner(N01)
    _cell(hanging, EXERCISE_ORDERS).source = "import time; time.sleep(600)"
    _put(tmp_path / "cohort", "slow", N01, hanging)
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy(ROOT / "notebooks" / N01, release / N01)
    args = ["grade", str(tmp_path / "cohort"), "--release", str(release)]
    args += ["--out", str(tmp_path / "grades"), "--cell-timeout", "300"]
    args += ["--notebook-timeout", "12"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert labapp_main(args) == 0
    with (tmp_path / "grades" / "grades.csv").open(newline="") as rows:
        row = next(csv.DictReader(rows))
    assert [row[c] for c in COLUMNS[1:]] == ["fail"] * 5
    page = (tmp_path / "grades" / "feedback" / "slow.html").read_text()
    assert "never ran: the notebook ran past its 12 s wall-clock limit" in page


def test_a_kernel_crash_is_an_error_for_that_notebook(graded: Graded) -> None:
    assert graded.statuses("crasher") == ["error"] + ["missing"] * 5
    assert "the kernel died while running code cell" in graded.feedback("crasher")


def test_invalid_json_is_an_error_for_that_notebook_only(graded: Graded) -> None:
    assert graded.statuses("broken") == ["error"] + ["pass"] * 5
    assert "could not be read" in graded.feedback("broken")


def test_grades_csv_has_a_column_per_exercise_and_totals(graded: Graded) -> None:
    assert list(graded.rows[0]) == ["learner", *COLUMNS, "passed", "total", "hints", "tampered"]
    assert [row["learner"] for row in graded.rows] == sorted(graded.grades)
    assert len(graded.rows) == 9
    for row in graded.rows:
        assert row["total"] == "6"
        assert row["passed"] == str(sum(row[c] == "pass" for c in COLUMNS))
        assert {row[c] for c in COLUMNS} <= set(cohort.STATUSES)
    assert graded.grades["broken"]["passed"] == "5"


def test_hints_count_what_the_rerun_and_the_handed_in_progress_file_show(graded: Graded) -> None:
    """One tier seen in a re-run cell plus three in the handed-in file; others saw none."""
    assert graded.grades["solved"]["hints"] == "4"
    others = {name: row["hints"] for name, row in graded.grades.items() if name != "solved"}
    assert set(others.values()) == {"0"}, others
    page = graded.feedback("solved")
    assert "00-welcome:classify: 3: steps" in page
    assert "01-unprotected:read-all-orders: 1: nudge" in page


def test_a_notebook_not_in_the_release_is_reported_and_skipped(graded: Graded) -> None:
    assert "crasher/99-not-in-the-course.ipynb: not a notebook of this release" in graded.stderr
    assert "99-not-in-the-course.ipynb: not a notebook of this course" in graded.feedback("crasher")


def test_progress_bar_then_one_summary_line_per_learner(graded: Graded) -> None:
    bars = [line for line in graded.stderr.splitlines() if line.startswith("[")]
    assert bars[0] == "[" + "." * 30 + "] 0/12 notebooks"
    assert bars[-1] == "[" + "#" * 30 + "] 12/12 notebooks"
    assert len(bars) == 13
    assert "solved: 6/6 exercises passed\n" in graded.stdout
    assert "untouched: 0/6 exercises passed (6 fail)" in graded.stdout
    assert "broken: 5/6 exercises passed (1 error)" in graded.stdout


# -- no kernel needed -------------------------------------------------------------------


def test_restore_falls_back_to_tag_and_order_when_ids_changed() -> None:
    """A notebook whose cells lost their ids still gets its graders back, in place."""
    canon = cohort.load_canonical(ROOT / "notebooks" / N01)
    learner = _learner(N01)
    for number, cell in enumerate(learner.cells):
        cell.id = f"changed-{number}"
    grader = next(cell for cell in learner.cells if "grader" in cell.metadata.get("tags", []))
    grader.source = "pass"
    nb, notes, placed = cohort.restore(learner, canon)
    assert notes == ["Restored grader cell for 'read-all-orders': it had been edited"]
    assert [cell.source for cell in nb.cells] == [cell.source for cell in canon.nb.cells]
    assert set(placed) == set(canon.labels)


def test_a_deleted_grader_goes_back_after_the_cell_before_it() -> None:
    canon = cohort.load_canonical(ROOT / "notebooks" / N01)
    learner = _learner(N01)
    learner.cells.remove(_cell(learner, GRADER_EXPORT))
    learner.cells.remove(_cell(learner, EXERCISE_EXPORT))  # and the cell before it
    nb, notes, _ = cohort.restore(learner, canon)
    ids = [cell.id for cell in nb.cells]
    canonical_ids = [cell.id for cell in canon.nb.cells]
    assert ids == [i for i in canonical_ids if i != EXERCISE_EXPORT]
    assert notes == ["Restored grader cell for 'internal-export': it had been deleted"]
    nbformat.validate(nb)


def test_the_exercises_come_from_the_canonical_grader_cells() -> None:
    canon = cohort.load_canonical(ROOT / "notebooks" / N01)
    assert canon.lesson == "01-unprotected"
    assert list(canon.exercises) == EXERCISES_01
    assert cohort.load_canonical(ROOT / "notebooks" / N00).columns == [COLUMNS[0]]


def test_a_lessons_own_grader_call_is_its_exercise() -> None:
    """lab.grade_tests() grades exercise "tests", the column the progress file records."""
    canon = cohort.load_canonical(ROOT / "notebooks" / "09-testing-failure-paths.ipynb")
    assert canon.lesson == "09-testing"
    assert canon.columns == ["09-testing:tests"]


def test_a_missing_submissions_folder_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert labapp_main(["grade", str(tmp_path / "nope")]) == 2
    assert "labapp: " in capsys.readouterr().err
    (tmp_path / "cohort").mkdir()
    assert labapp_main(["grade", str(tmp_path / "cohort"), "--out", str(tmp_path / "g")]) == 2
    assert "no learner folders" in capsys.readouterr().err


def test_the_default_release_and_output_folders() -> None:
    assert cohort.DEFAULT_RELEASE == ROOT / "notebooks"
    assert cohort._default_out(Path("/x/cohort-2026")) == Path("/x/cohort-2026-grades")


def test_a_learner_cell_that_patches_the_lab_is_flagged_for_a_human(graded: Graded) -> None:
    """Everything runs in the learner's kernel: a patched lab.grade passes; the CSV says so."""
    assert graded.grades["cheater"]["tampered"] == N01
    assert graded.grades["solved"]["tampered"] == ""
    assert "Check by hand" in graded.feedback("cheater")
    assert "lab.check_flag = lambda *args: None" in graded.feedback("cheater")


def test_a_grader_with_a_new_id_is_matched_by_what_it_grades(graded: Graded) -> None:
    """A deleted grader and a re-pasted one (new id): both back in place, the work passes."""
    assert [graded.grades["shuffled"][c] for c in COLUMNS[1:]] == ["pass"] * 5
    page = graded.feedback("shuffled")
    assert "Restored grader cell for &#x27;internal-export&#x27;: it had been deleted" in page
    assert "defend" not in page.split("Restored", 1)[-1].split("</p>", 1)[0]


def test_shards_run_as_processes_merge_to_what_one_run_wrote(
    graded: Graded, tmp_path: Path
) -> None:
    """Three `labapp grade --shard K/3` processes at once, then --merge: the same grades.csv,
    grades.json and feedback index as the single run, and a feedback page per learner."""
    outs = [tmp_path / f"shard-{k}" for k in (1, 2, 3)]
    args = ["--release", str(graded.release), "--workers", "1"]
    args += ["--cell-timeout", str(CELL_TIMEOUT), "--notebook-timeout", str(NOTEBOOK_TIMEOUT)]
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "labapp", "grade", str(graded.submissions), *args]
            + ["--shard", f"{k}/3", "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k, out in zip((1, 2, 3), outs, strict=True)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr
    names = []
    for out in outs:
        with (out / "grades.csv").open(newline="") as rows:
            names += [row["learner"] for row in csv.DictReader(rows)]
    assert sorted(names) == sorted(graded.grades) and len(names) == len(set(names))
    merged = tmp_path / "merged"
    with contextlib.redirect_stdout(io.StringIO()):
        assert labapp_main(["grade", "--merge", *map(str, outs), "--out", str(merged)]) == 0
    for name in ("grades.csv", "grades.json", "feedback/index.html"):
        assert (merged / name).read_text() == (graded.out / name).read_text(), name
    pages = sorted(p.name for p in (merged / "feedback").iterdir())
    assert pages == sorted(p.name for p in (graded.out / "feedback").iterdir())


def test_the_feedback_index_links_every_learner(graded: Graded) -> None:
    index = (graded.out / "feedback" / "index.html").read_text()
    for learner in graded.grades:
        assert f"href='{learner}.html'" in index
    assert "<td>6/6</td>" in index  # the solved learner


def test_notebooks_in_nested_folders_are_graded(graded: Graded) -> None:
    assert graded.grades["nested"]["00-welcome:classify"] == "pass"
