"""Run one notebook under nbval for grading, and read what happened to each cell.

The notebook runs as ``python -m pytest NB --nbval-lax`` in a temporary folder, in its own
process group, with a per-cell timeout and a wall-clock limit; a small probe plugin journals
each cell's result as it happens and notices a dead kernel at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET  # noqa: S405 - parses the junit file our own pytest wrote
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labapp.tools.progress import FILENAME

_CELL_TIMEOUT = re.compile(r"Timeout of [\d.]+ seconds exceeded")
_ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;?]*[A-Za-z]")

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


@dataclass
class Settings:
    cell_timeout: float
    notebook_timeout: float
    workdir: Path


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
    env = dict(os.environ, LABAPP_PROGRESS=str(folder / FILENAME))
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
