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
in a container. Restoring lives in labapp/restore.py, running one notebook in labapp/nbrun.py;
this module counts, reports and holds the command.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import html
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

import labapp
from labapp.errors import GradingError, LabError
from labapp.nbrun import _PROBE_SOURCE, PROBE, Settings, _run_pytest, _status
from labapp.restore import Canonical, _source, load_canonical, load_release, restore, tampering

__all__ = ["GradingError", "grade_cohort", "load_canonical", "register", "restore"]

DEFAULT_RELEASE = Path(labapp.__file__).resolve().parents[1] / "notebooks"
DEFAULT_CELL_TIMEOUT = 120.0
DEFAULT_NOTEBOOK_TIMEOUT = 900.0
STATUSES = ("pass", "fail", "error", "timeout", "missing")


# -- grading one notebook ---------------------------------------------------------------


@dataclass
class Job:
    learner: str
    canon: Canonical
    path: Path
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """One learner notebook graded: exercise -> (status, detail)."""

    learner: str
    notebook: str
    results: dict[str, tuple[str, str]]
    notes: list[str]
    seconds: float = 0.0
    tampered: bool = False  # a learner cell assigns to the lab or labapp: check by hand


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
    return outcome


# -- the whole cohort -------------------------------------------------------------------


@dataclass
class Learner:
    name: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # notebook name -> outcome
    skipped: list[str] = field(default_factory=list)

    def statuses(self, canon: dict[str, Canonical]) -> dict[str, str]:
        row = {}
        for name, notebook in canon.items():
            outcome = self.outcomes.get(name)
            for exercise, column in zip(notebook.exercises, notebook.columns, strict=True):
                row[column] = outcome.results[exercise][0] if outcome else "missing"
        return row


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
) -> list[Learner]:
    if not submissions.is_dir():
        raise GradingError(f"{submissions}: no such folder of submissions")
    canon = load_release(release)
    learners = [Learner(p.name) for p in _learners(submissions)]
    if not learners:
        raise GradingError(f"{submissions}: no learner folders in it (SUBMISSIONS/<learner>/)")
    jobs = []
    for learner in learners:
        seen: set[str] = set()
        for path in sorted((submissions / learner.name).rglob("*.ipynb")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            if path.name in canon and path.name in seen:
                where = path.relative_to(submissions / learner.name)
                learner.skipped.append(f"{where}: handed in twice; the first copy was graded")
                print(
                    f"{learner.name}/{path.name}: handed in twice, the first graded",
                    file=sys.stderr,
                )
                continue
            seen.add(path.name)
            if path.name in canon:
                jobs.append(Job(learner.name, canon[path.name], path))
            else:
                where = path.relative_to(submissions / learner.name)
                learner.skipped.append(f"{where}: not a notebook of this course")
                print(
                    f"{learner.name}/{path.name}: not a notebook of this release, skipped",
                    file=sys.stderr,
                )
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
    write_csv(out / "grades.csv", learners, canon)
    for learner in learners:
        page = out / "feedback" / f"{learner.name}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(feedback_html(learner, canon), encoding="utf-8")
        print(_summary(learner, canon))
    return learners


def write_csv(path: Path, learners: list[Learner], canon: dict[str, Canonical]) -> None:
    columns = [column for notebook in canon.values() for column in notebook.columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["learner", *columns, "passed", "total", "tampered"])
        for learner in learners:
            row = learner.statuses(canon)
            passed = sum(status == "pass" for status in row.values())
            tampered = [n for n, o in learner.outcomes.items() if o.tampered]
            name = (
                f"'{learner.name}"
                if learner.name.startswith(("=", "+", "-", "@"))
                else (learner.name)
            )
            cells = [name, *(row[c] for c in columns), passed, len(columns), " ".join(tampered)]
            writer.writerow(cells)


def _summary(learner: Learner, canon: dict[str, Canonical]) -> str:
    row = learner.statuses(canon)
    counts = {s: sum(v == s for v in row.values()) for s in STATUSES}
    rest = ", ".join(f"{counts[s]} {s}" for s in STATUSES[1:] if counts[s])
    line = f"{learner.name}: {counts['pass']}/{len(row)} exercises passed"
    return line + (f" ({rest})" if rest else "")


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
td, th { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
pre { white-space: pre-wrap; margin: 0; font-size: .85rem; }
.pass { color: #176f2c; } .fail, .error { color: #b00020; } .timeout { color: #a05a00; }
.missing { color: #666; } .note { background: #fff6d6; padding: .3rem .5rem; }
"""


def feedback_html(learner: Learner, canon: dict[str, Canonical]) -> str:
    e = html.escape
    row = learner.statuses(canon)
    passed = sum(status == "pass" for status in row.values())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback for {e(learner.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Feedback for {e(learner.name)}</h1>",
        f"<p>{passed} of {len(row)} exercises passed.</p>",
    ]
    for name in canon:
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
    if learner.skipped:
        parts.append("<h2>Not graded</h2><ul>")
        parts += [f"<li>{e(n)}</li>" for n in learner.skipped]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- the command ------------------------------------------------------------------------


def _default_out(submissions: Path) -> Path:
    return submissions.resolve().parent / f"{submissions.resolve().name}-grades"


def _grade(args: argparse.Namespace) -> int:
    submissions = Path(args.submissions)
    out = Path(args.out) if args.out else _default_out(submissions)
    try:
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
        )
    except LabError as exc:
        print(f"labapp: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'grades.csv'} and {out / 'feedback'}/")
    return 0


def register(commands: Any) -> None:
    """Add ``labapp grade`` to the subparsers of ``labapp.cli.main``."""
    grade = commands.add_parser(
        "grade",
        help="grade a cohort: SUBMISSIONS/<learner>/NN-....ipynb (runs learners' code!)",
    )
    grade.add_argument("submissions", metavar="SUBMISSIONS")
    grade.add_argument(
        "--release",
        default=str(DEFAULT_RELEASE),
        help="canonical learner notebooks whose grader cells are restored (default: %(default)s)",
    )
    grade.add_argument("--out", help="output folder (default: SUBMISSIONS-grades, next to it)")
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
    grade.set_defaults(run=_grade)
