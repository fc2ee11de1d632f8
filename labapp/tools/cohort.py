"""``labapp grade SUBMISSIONS/``: grade a cohort's saved notebooks under nbval.

``SUBMISSIONS/<learner>/NN-....ipynb`` are the learners' saved notebooks. For each one:

1. **restore** the setup cell and every grader cell from the canonical learner release
   (``notebooks/`` next to this package, or ``--release DIR``), matched by cell id, falling
   back to tag and order; a grader the learner edited, deleted or re-tagged is put back and
   the feedback says so;
2. **run** it under nbval (``python -m pytest NB --nbval-lax``) in a temporary folder, in its
   own process group, with a per-cell timeout and a wall-clock limit for the whole notebook,
   several notebooks at a time, one kernel each;
3. **count** each exercise (a canonical grader cell) as ``pass``, ``fail``, ``error``,
   ``timeout`` or ``missing``, and write ``grades.csv`` and one HTML feedback page per
   learner. See docs/grading.md.

Grading runs the learners' code with the grading user's rights: do it as a throwaway user or
in a container. Restoring lives in restore.py, running one notebook in nbrun.py, both beside
this module; this module counts, reports and holds the command.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from labapp.engine.errors import GradingError, LabError
from labapp.tools.nbrun import _PROBE_SOURCE, PROBE, Settings, _run_pytest, _status
from labapp.tools.progress import FILENAME, hints_in
from labapp.tools.reports import (
    FEEDBACK,
    STATUSES,
    Grades,
    Learner,
    Outcome,
    Row,
    feedback_html,
    highest_hints,
    page_name,
    summary,
    write_grades,
)
from labapp.tools.restore import (
    Canonical,
    _source,
    load_canonical,
    load_release,
    restore,
    tampering,
)
from labapp.tools.shards import merge, parse_shard, pick

__all__ = ["STATUSES", "GradingError", "grade_cohort", "load_canonical", "register", "restore"]

# The course's own learner notebooks: notebooks/ beside the package (an editable install, or
# the course image's /opt/course).
DEFAULT_RELEASE = Path(__file__).resolve().parents[2] / "notebooks"
DEFAULT_CELL_TIMEOUT = 120.0
DEFAULT_NOTEBOOK_TIMEOUT = 900.0


# -- grading one notebook ---------------------------------------------------------------


@dataclass
class Job:
    learner: str
    canon: Canonical
    path: Path
    notes: list[str] = field(default_factory=list)


def grade_notebook(job: Job, settings: Settings) -> Outcome:
    """Restore, run and count one learner notebook; never raises for a learner's fault."""
    started = time.monotonic()
    canon = job.canon

    def everything(status: str, detail: str) -> Outcome:
        results = {exercise: (status, detail) for exercise in canon.exercises}
        return Outcome(job.learner, canon.name, results, job.notes, time.monotonic() - started)

    try:
        learner = nbformat.reads(job.path.read_text(encoding="utf-8"), as_version=4)
        if not isinstance(learner.get("cells"), list):
            raise ValueError("it has no list of cells")
        nb, notes, placed = restore(learner, canon)
        folder = Path(tempfile.mkdtemp(prefix="nb-", dir=settings.workdir))
        target = folder / canon.name
        nbformat.write(nb, target)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the learner's, not ours
        first = str(exc).strip().split("\n")[0][:300]
        return everything("error", f"the notebook could not be read: {first}")
    job.notes.extend(notes)
    suspicious = tampering(learner)
    job.notes.extend(
        f"Check by hand: this line changes the lab or the course's code, which can make a "
        f"grader pass without the work ({line})"
        for line in suspicious
    )
    (folder / f"{PROBE}.py").write_text(_PROBE_SOURCE, encoding="utf-8")
    try:
        run = _run_pytest(folder, target, settings)
    except OSError as exc:
        return everything("error", f"the notebook could not be run: {exc}")
    code = [cell for cell in nb.cells if cell.get("cell_type") == "code"]
    numbers = {id(cell): number for number, cell in enumerate(code)}
    sources = [_source(cell) for cell in code]
    results = {}
    for exercise, index in canon.exercises.items():
        results[exercise] = _status(numbers[id(placed[index])], run, sources, settings)
    outcome = Outcome(job.learner, canon.name, results, job.notes, time.monotonic() - started)
    outcome.tampered = bool(suspicious)
    outcome.hints = hints_in(folder / FILENAME)  # lab.hint() cells the re-run executed
    return outcome


# -- the whole cohort -------------------------------------------------------------------


def row_of(learner: Learner, canon: dict[str, Canonical]) -> Row:
    statuses = []
    for name, notebook in canon.items():
        outcome = learner.outcomes.get(name)
        for exercise in notebook.exercises:
            statuses.append(outcome.results[exercise][0] if outcome else "missing")
    tampered = tuple(name for name, outcome in learner.outcomes.items() if outcome.tampered)
    return Row(learner.name, tuple(statuses), tampered, tuple(learner.hints().items()))


def _learners(submissions: Path) -> list[Path]:
    return sorted(
        p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )


class Progress:
    """``[#######.....] 7/12 notebooks`` on stderr: redrawn in a terminal, a line otherwise."""

    def __init__(self, total: int, width: int = 30) -> None:
        self.total, self.done, self.width = total, 0, width
        self.tty = sys.stderr.isatty()
        self.draw()

    def step(self) -> None:
        self.done += 1
        self.draw()

    def draw(self) -> None:
        filled = self.width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}] {self.done}/{self.total} notebooks"
        end = "\n" if not self.tty or self.done == self.total else ""
        print(("\r" if self.tty else "") + line, end=end, file=sys.stderr, flush=True)


def grade_cohort(
    submissions: Path,
    out: Path,
    release: Path = DEFAULT_RELEASE,
    workers: int | None = None,
    cell_timeout: float = DEFAULT_CELL_TIMEOUT,
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT,
    shard: tuple[int, int] = (1, 1),
) -> Grades:
    """Grade the learners of ``shard`` (K, N): all of them when N is 1."""
    if not submissions.is_dir():
        raise GradingError(f"{submissions}: no such folder of submissions")
    canon = load_release(release)
    cohort = [p.name for p in _learners(submissions)]
    if not cohort:
        raise GradingError(f"{submissions}: no learner folders in it (SUBMISSIONS/<learner>/)")
    learners = [Learner(name) for name in pick(cohort, shard)]
    for learner in learners:
        learner.handed_in_hints = _handed_in_hints(submissions / learner.name)
    if shard != (1, 1):
        print(
            f"shard {shard[0]}/{shard[1]}: {len(learners)} of {len(cohort)} learners",
            file=sys.stderr,
        )
    jobs = [job for learner in learners for job in _jobs(submissions, learner, canon)]
    by_name = {learner.name: learner for learner in learners}
    bar = Progress(len(jobs))
    with tempfile.TemporaryDirectory(prefix="labapp-grade-") as work:
        settings = Settings(cell_timeout, notebook_timeout, Path(work))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
            futures = [pool.submit(grade_notebook, job, settings) for job in jobs]
            for future in concurrent.futures.as_completed(futures):
                outcome = future.result()
                by_name[outcome.learner].outcomes[outcome.notebook] = outcome
                bar.step()
    columns = tuple(column for notebook in canon.values() for column in notebook.columns)
    rows = tuple(row_of(learner, canon) for learner in learners)
    grades = Grades(columns, tuple(cohort), rows, shard)
    write_grades(out, grades)
    for learner, row in zip(learners, rows, strict=True):
        page = out / FEEDBACK / page_name(learner.name)
        page.write_text(feedback_html(learner, list(canon), row), encoding="utf-8")
        print(summary(row))
    return grades


def _handed_in_hints(folder: Path) -> dict[str, int]:
    """Hints in any progress file handed in beside the notebooks (a learner may have asked
    for them in a cell since deleted); the re-run adds the ones still in the notebooks."""
    return highest_hints(hints_in(path) for path in sorted(folder.rglob(FILENAME)))


def _jobs(submissions: Path, learner: Learner, canon: dict[str, Canonical]) -> list[Job]:
    """A learner's notebooks of this release; a duplicate or a stranger is noted and skipped."""
    jobs, seen = [], set()
    for path in sorted((submissions / learner.name).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        where = path.relative_to(submissions / learner.name)
        if path.name in canon and path.name in seen:
            learner.skipped.append(f"{where}: handed in twice; the first copy was graded")
            print(f"{learner.name}/{path.name}: handed in twice, the first graded", file=sys.stderr)
            continue
        seen.add(path.name)
        if path.name in canon:
            jobs.append(Job(learner.name, canon[path.name], path))
        else:
            learner.skipped.append(f"{where}: not a notebook of this course")
            print(
                f"{learner.name}/{path.name}: not a notebook of this release, skipped",
                file=sys.stderr,
            )
    return jobs


# -- the command ------------------------------------------------------------------------


def _default_out(submissions: Path, shard: tuple[int, int] = (1, 1)) -> Path:
    suffix = "" if shard == (1, 1) else f"-shard-{shard[0]}-of-{shard[1]}"
    return submissions.resolve().parent / f"{submissions.resolve().name}-grades{suffix}"


def _grade(args: argparse.Namespace) -> int:
    try:
        if args.merge is not None:
            return _merge(args)
        if args.submissions is None:
            raise GradingError("name the SUBMISSIONS folder to grade, or --merge shard outputs")
        submissions = Path(args.submissions)
        shard = parse_shard(args.shard) if args.shard else (1, 1)
        out = Path(args.out) if args.out else _default_out(submissions, shard)
        if submissions.is_dir() and out.resolve().is_relative_to(submissions.resolve()):
            raise GradingError(f"{out}: the output folder must not be inside {submissions}")
        if args.workers is not None and args.workers < 1:
            raise GradingError("--workers must be 1 or more")
        grade_cohort(
            submissions,
            out,
            release=Path(args.release),
            workers=args.workers,
            cell_timeout=args.cell_timeout,
            notebook_timeout=args.notebook_timeout,
            shard=shard,
        )
    except LabError as exc:
        print(f"labapp: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'grades.csv'} and {out / FEEDBACK}/")
    return 0


def _merge(args: argparse.Namespace) -> int:
    if args.submissions is not None or args.shard:
        raise GradingError("--merge joins finished shards: give it no SUBMISSIONS and no --shard")
    if not args.out:
        raise GradingError("--merge needs --out DIR, the folder for the merged grades")
    out = Path(args.out)
    grades = merge([Path(folder) for folder in args.merge], out)
    for row in grades.rows:
        print(summary(row))
    print(f"merged {len(args.merge)} shard(s): wrote {out / 'grades.csv'} and {out / FEEDBACK}/")
    return 0


def register(commands: Any) -> None:
    """Add ``labapp grade`` to the subparsers of ``labapp.tools.cli.main``."""
    grade = commands.add_parser(
        "grade",
        help="grade a cohort: SUBMISSIONS/<learner>/NN-....ipynb (runs learners' code!)",
        description="Grade a cohort's notebooks under nbval (see docs/grading.md). "
        "On several machines: each runs --shard K/N, then one runs --merge on their outputs.",
    )
    grade.add_argument("submissions", metavar="SUBMISSIONS", nargs="?")
    grade.add_argument(
        "--release",
        default=str(DEFAULT_RELEASE),
        help="canonical learner notebooks whose grader cells are restored (default: %(default)s)",
    )
    grade.add_argument(
        "--out",
        help="output folder (default: SUBMISSIONS-grades next to it; "
        "SUBMISSIONS-grades-shard-K-of-N for a shard)",
    )
    grade.add_argument("--workers", type=int, help="notebooks graded at once (default: CPU count)")
    grade.add_argument(
        "--cell-timeout", type=float, default=DEFAULT_CELL_TIMEOUT, help="seconds per cell"
    )
    grade.add_argument(
        "--notebook-timeout",
        type=float,
        default=DEFAULT_NOTEBOOK_TIMEOUT,
        help="wall-clock seconds per notebook",
    )
    grade.add_argument(
        "--shard",
        metavar="K/N",
        help="grade only shard K of N (1 <= K <= N): every N-th learner, in name order",
    )
    grade.add_argument(
        "--merge",
        nargs="+",
        metavar="OUT",
        help="join the output folders of all N shards into --out (grades nothing)",
    )
    grade.set_defaults(run=_grade)
