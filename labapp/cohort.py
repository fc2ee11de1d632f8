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
in a container.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import csv
import html
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET  # noqa: S405 - parses the junit file our own pytest wrote
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4.nbbase import random_cell_id

import labapp
from labapp.errors import LabError

DEFAULT_RELEASE = Path(labapp.__file__).resolve().parents[1] / "notebooks"
DEFAULT_CELL_TIMEOUT = 120.0
DEFAULT_NOTEBOOK_TIMEOUT = 900.0
STATUSES = ("pass", "fail", "error", "timeout", "missing")
PROTECTED_TAGS = ("grader", "setup")

_EXERCISE = re.compile(r"""lab\.(check_flag|check_answer|grade)\(\s*(?:["']([^"']+)["'])?""")
_LESSON = re.compile(r"""start_lab\(\s*["']([^"']+)["']""")
_ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;?]*[A-Za-z]")
_CELL_TIMEOUT = re.compile(r"Timeout of [\d.]+ seconds exceeded")

PROBE = "_labapp_grading_probe"
JOURNAL = "_labapp_journal.jsonl"
# Loaded into the grading pytest with ``-p``. It journals every cell's result as it happens
# (so a notebook killed at its wall-clock limit still has the results of the cells that
# ran), the exception each failed cell raised, the kernel's process group (so a kill can
# reach it: jupyter_client starts kernels in their own session), and a kernel that died.
# nbval itself only notices a dead kernel when the cell timeout runs out, and then calls it
# a timeout; the probe looks every half second and fails the cell at once.
_PROBE_SOURCE = f"""
import json, time
from queue import Empty

import pytest
from nbval import kernel as _kernel

_RK = _kernel.RunningKernel
_init, _await_reply, _get_message = _RK.__init__, _RK.await_reply, _RK.get_message


def _journal(record):
    with open({JOURNAL!r}, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\\n")


def __init__(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    provisioner = getattr(self.km, "provisioner", None)
    _journal({{"kernel_pgid": getattr(provisioner, "pgid", None)}})


def await_reply(self, msg_id, timeout=None):
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = 0.5 if deadline is None else deadline - time.monotonic()
        try:
            return _await_reply(self, msg_id, timeout=max(0.0, min(0.5, left)))
        except Empty:
            if not self.is_alive():
                self._labapp_dead = True
                _journal({{"kernel_died": True}})
                raise
            if deadline is not None and time.monotonic() >= deadline:
                raise


def get_message(self, stream, timeout=None):
    if getattr(self, "_labapp_dead", False):
        raise Empty
    return _get_message(self, stream, timeout=timeout)


_RK.__init__, _RK.await_reply, _RK.get_message = __init__, await_reply, get_message


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" and report.passed:
        return
    error = next(
        (o for o in getattr(item, "test_outputs", None) or [] if o.get("output_type") == "error"),
        None,
    )
    _journal({{
        "cell": item.name,
        "when": report.when,
        "outcome": report.outcome,
        "xfail": hasattr(report, "wasxfail"),
        "text": report.longreprtext if report.failed else getattr(report, "wasxfail", ""),
        "exception": f"{{error['ename']}}: {{error['evalue']}}" if error else "",
    }})
"""


class GradingError(LabError, ValueError):
    """A grading run that cannot start: no such folder, an empty release."""


# -- the canonical release --------------------------------------------------------------


@dataclass
class Canonical:
    """One notebook of the release: its exercises and the cells that must not change."""

    name: str
    lesson: str
    nb: Any
    exercises: dict[str, int]  # exercise -> index of its grader cell in nb.cells
    labels: dict[int, str]  # protected cell index -> how the feedback names it

    @property
    def columns(self) -> list[str]:
        return [f"{self.lesson}:{exercise}" for exercise in self.exercises]


def _tags(cell: Any) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else []


def _protected(cell: Any) -> str | None:
    return next((tag for tag in PROTECTED_TAGS if tag in _tags(cell)), None)


def load_canonical(path: Path) -> Canonical:
    nb = nbformat.read(path, as_version=4)
    exercises: dict[str, int] = {}
    labels: dict[int, str] = {}
    lesson = path.stem
    for index, cell in enumerate(nb.cells):
        tag = _protected(cell)
        if tag == "setup":
            labels[index] = "the setup cell"
            found = _LESSON.search(cell.source)
            lesson = found[1] if found else lesson
        elif tag == "grader":
            names = []
            for call, name in _EXERCISE.findall(cell.source):
                name = "defend" if call == "grade" else name
                if name and name not in exercises:
                    exercises[name] = index
                    names.append(name)
            shown = ", ".join(repr(n) for n in names) or repr(cell.source.split("\n")[0])
            labels[index] = f"grader cell for {shown}"
    return Canonical(path.name, lesson, nb, exercises, labels)


def load_release(release: Path) -> dict[str, Canonical]:
    if not release.is_dir():
        raise GradingError(f"{release}: no such release folder (give --release DIR)")
    canon = {p.name: load_canonical(p) for p in sorted(release.glob("*.ipynb"))}
    if not canon:
        raise GradingError(f"{release}: no notebooks in this release folder")
    return canon


# -- restoring the grader cells ---------------------------------------------------------


def _changes(learner: Any, canonical: Any) -> str:
    edited = learner.get("cell_type") != canonical.cell_type or (
        _source(learner) != canonical.source
    )
    retagged = sorted(_tags(learner)) != sorted(_tags(canonical))
    return " and ".join(w for w, on in (("edited", edited), ("re-tagged", retagged)) if on)


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def restore(learner: Any, canon: Canonical) -> tuple[Any, list[str], dict[int, Any]]:
    """Put the canonical setup and grader cells back into a learner's notebook.

    Returns the restored notebook (a copy, outputs cleared), one note per cell that was
    restored, and canonical cell index -> the restored cell object.
    """
    nb = copy.deepcopy(learner)
    cells: list[Any] = list(nb.cells)
    canonical_ids = {c.get("id") for c in canon.nb.cells if c.get("id")}
    by_id = {}
    for cell in cells:
        by_id.setdefault(cell.get("id"), cell)
    # Fallback for cells whose id changed (or a notebook saved without ids): the learner's
    # cells that carry the tag and an id the release does not know, in order.
    spare = {
        tag: [c for c in cells if tag in _tags(c) and c.get("id") not in canonical_ids]
        for tag in PROTECTED_TAGS
    }
    notes: list[str] = []
    placed: dict[int, Any] = {}
    for index, wanted in enumerate(canon.nb.cells):
        tag = _protected(wanted)
        if tag is None:
            continue
        fresh = copy.deepcopy(wanted)
        found = by_id.get(wanted.get("id")) if wanted.get("id") else None
        if found is None:
            # Only a cell that does the same job: a stray copy of another grader must not
            # be paired with this one (its place and its note would both be wrong).
            # Failing that, one that grades nothing recognisable any more (edited to `pass`):
            # it stands where the grader stood.
            same = [c for c in spare[tag] if _does(c) == _does(wanted)]
            same = same or [c for c in spare[tag] if not _does(c)]
            if same:
                found = same[0]
                spare[tag].remove(found)
        if found is not None:
            change = _changes(found, wanted)
            cells[next(i for i, c in enumerate(cells) if c is found)] = fresh
        else:
            change = "deleted"
            cells.insert(_insertion_point(cells, canon, index, placed), fresh)
        placed[index] = fresh
        if change:
            notes.append(f"Restored {canon.labels[index]}: it had been {change}")
    seen: set[str] = set()
    for cell in cells:  # unique ids, and ids on every cell (nbformat 4.5)
        if not cell.get("id") or cell["id"] in seen:
            cell["id"] = random_cell_id()
        seen.add(cell["id"])
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.cells = cells
    nb.nbformat, nb.nbformat_minor = 4, max(int(nb.get("nbformat_minor", 5)), 5)
    return nb, notes, placed


def _does(cell: Any) -> tuple[str, ...]:
    """What a protected cell does: the exercises it grades, or the lab it starts."""
    source = _source(cell)
    graded = tuple(
        "defend" if call == "grade" else name for call, name in _EXERCISE.findall(source)
    )
    return graded or tuple(_LESSON.findall(source))


# Cells that change the lab or the course's code from inside the notebook: everything runs
# in the learner's kernel, so such a cell can make any grader pass. Flagged, not failed.
_TAMPERING = re.compile(
    r"""\blab\s*\.\s*\w+\s*(?:=(?!=)|\+=)   # lab.grade = ..., lab.check_flag = ...
    |\bsetattr\s*\(                             # setattr(lab, ...), setattr(Lab, ...)
    |\bLab\s*\.\s*\w+\s*=(?!=)                # Lab.grade = ...
    |\blabapp(?:\.\w+)+\s*=(?!=)               # labapp.lab.Lab = ...
    |\bsys\s*\.\s*modules\b                   # swapping modules
    |\b(?:unittest\.)?mock\b                    # mock.patch
    """,
    re.VERBOSE,
)


def tampering(learner: Any) -> list[str]:
    """The learner's own code cells that assign to the lab or the course's code."""
    found = []
    for number, cell in enumerate(c for c in learner.cells if c.get("cell_type") == "code"):
        if _protected(cell):
            continue
        for line in _source(cell).splitlines():
            if _TAMPERING.search(line.split("#", 1)[0]):
                found.append(f"code cell {number + 1}: {line.strip()[:100]}")
    return found


def _insertion_point(cells: list[Any], canon: Canonical, index: int, placed: dict) -> int:
    """After the nearest earlier canonical cell the learner still has, else the same index."""
    ids = {c.get("id"): i for i, c in enumerate(cells) if c.get("id")}
    for before in range(index - 1, -1, -1):
        if before in placed:
            return next(i for i, c in enumerate(cells) if c is placed[before]) + 1
        cell_id = canon.nb.cells[before].get("id")
        if cell_id in ids:
            return ids[cell_id] + 1
    return min(index, len(cells))


# -- running one notebook ---------------------------------------------------------------


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


@dataclass
class Settings:
    cell_timeout: float
    notebook_timeout: float
    workdir: Path


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


@dataclass
class Run:
    cells: dict[int, dict[str, Any]]  # nbval "Cell N" -> outcome, text, exception, xfail
    died_in: int | None  # the cell in which the kernel died
    killed: bool  # the wall-clock limit ran out
    problem: str  # the run produced no usable results: why


def _run_pytest(folder: Path, target: Path, settings: Settings) -> Run:
    junit = folder / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        target.name,
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={settings.cell_timeout:g}",
        "-p",
        "no:cacheprovider",
        "-p",
        PROBE,
        f"--junitxml={junit}",
        "-q",
        "--color=no",
        "-c",
        os.devnull,
        "--rootdir",
        str(folder),
    ]
    env = dict(os.environ, LABAPP_PROGRESS=str(folder / ".labapp-progress.json"))
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter, our own arguments
        command,
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    killed = False
    try:
        output, _ = proc.communicate(timeout=settings.notebook_timeout)
    except subprocess.TimeoutExpired:
        killed = True
        _killpg(proc.pid)
        output, _ = proc.communicate()
    journal = _read_journal(folder / JOURNAL)
    for record in journal:  # no kernel outlives its notebook, finished or killed
        if record.get("kernel_pgid"):
            _killpg(record["kernel_pgid"])
    cells, died_in = _from_journal(journal)
    if not killed and junit.is_file():
        cells = _from_junit(junit, cells)
    problem = ""
    if not cells and not killed:
        tail = _clean(output.decode("utf-8", "replace")).strip().splitlines()[-5:]
        problem = "pytest could not run the notebook: " + " / ".join(tail)
    return Run(cells, died_in, killed, problem)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _read_journal(path: Path) -> list[dict[str, Any]]:
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a kill
    return records


def _cell_number(name: str) -> int | None:
    match = re.fullmatch(r"Cell (\d+)", name.strip())
    return int(match[1]) if match else None


def _from_journal(journal: list[dict[str, Any]]) -> tuple[dict[int, dict[str, Any]], int | None]:
    cells: dict[int, dict[str, Any]] = {}
    died_in, dying = None, False
    for record in journal:
        if record.get("kernel_died"):
            dying = True
        number = _cell_number(record.get("cell", ""))
        if number is None:
            continue
        if dying and died_in is None:
            died_in = number
        outcome = record.get("outcome")
        if record.get("xfail"):
            outcome = "passed" if outcome == "passed" else "xfailed"
        entry = cells.setdefault(number, {"outcome": "passed", "text": "", "exception": ""})
        if entry["outcome"] == "passed":  # a failure in setup/call/teardown wins
            entry.update(outcome=outcome, text=record.get("text", ""))
            entry["exception"] = record.get("exception", "")
    return cells, died_in


def _from_junit(path: Path, journal: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's junit file
    except ET.ParseError:
        return journal
    cells = {}
    for case in root.iter("testcase"):
        number = _cell_number(case.get("name", ""))
        if number is None:
            continue
        outcome, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, text = "failed", child.text or child.get("message", "")
            elif child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                outcome, text = ("xfailed" if xfail else "skipped"), child.get("message", "")
        exception = journal.get(number, {}).get("exception", "")
        cells[number] = {"outcome": outcome, "text": text, "exception": exception}
    return cells


def _status(number: int, run: Run, sources: list[str], settings: Settings) -> tuple[str, str]:
    """The status of the grader cell nbval calls ``Cell <number>``, and what to tell."""

    def named(n: int) -> str:
        first = sources[n].strip().split("\n")[0] if n < len(sources) else ""
        return f"code cell {n + 1} ({first[:60]!r})"

    if run.died_in is not None and number >= run.died_in:
        return "error", (
            f"the kernel died while running {named(run.died_in)}: that cell ended the Python "
            "process, so it and every later cell could not run"
        )
    cell = run.cells.get(number)
    if cell is None:
        if run.killed:
            running = next(n for n in range(len(sources) + 1) if n not in run.cells)
            if number == running:
                return "timeout", (
                    f"the notebook ran past its {settings.notebook_timeout:g} s wall-clock "
                    "limit while this grader cell ran"
                )
            return "fail", (
                f"never ran: the notebook ran past its {settings.notebook_timeout:g} s "
                f"wall-clock limit in {named(running)}"
            )
        return "error", run.problem or "nbval did not report this grader cell"
    text = _clean(cell["text"])
    if cell["outcome"] == "passed":
        return "pass", ""
    if _CELL_TIMEOUT.search(text) and cell["outcome"] == "failed":
        return "timeout", f"this grader cell ran past the {settings.cell_timeout:g} s cell timeout"
    if cell["outcome"] in ("xfailed", "skipped"):
        late = [n for n, c in sorted(run.cells.items()) if _timed_out(c) and n < number]
        reason = (
            f"{named(late[0])} ran past the {settings.cell_timeout:g} s cell timeout and "
            "was interrupted; this grader then failed"
            if late
            else text or "nbval skipped this cell"
        )
        return "fail", _detail(reason, _clean(cell["exception"]))
    return "fail", _detail(_clean(cell["exception"]), text)


def _timed_out(cell: dict[str, Any]) -> bool:
    return cell["outcome"] == "failed" and bool(_CELL_TIMEOUT.search(_clean(cell["text"])))


def _clean(text: str) -> str:
    return _ANSI.sub("", text)


def _detail(first: str, then: str) -> str:
    """``first``, then ``then`` unless it adds nothing."""
    first, then = first.strip(), then.strip()
    if first and then and then not in first and first not in then:
        return f"{first}\n\n{then}"
    return first or then


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
