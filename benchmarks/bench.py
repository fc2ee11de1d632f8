"""Benchmarks for the lab engine: what a learner waits for, and what a kernel holds.

Measured:
1. Lab start to first response: ``start_lab("01-unprotected")`` plus one GET /health,
   50 times (median and p95 ms); ``lab.stop()`` is timed separately.
2. Grader time per lesson: ``lab.grade()`` against the weak defaults, 5 runs, median s
   (it raises DefenseBreached, which is caught: the battery still ran fully); lesson 09's
   ``lab.grade_tests()`` of its solution suite and of a happy-path suite (target 10 s);
   lesson 10's two quizzes, each replaying a day over HTTP, with the solution's answers.
3. nbval wall time per solution notebook, in a pytest subprocess from the repo root.
4. Kernel RSS (VmRSS) of a fresh python3 kernel, before and after starting a lab in it.
6. Verdicts on a busy machine: with 2 x cores busy processes, LABAPP_BENCH_ROUNDS grades
   (default 30) of each lesson's solution (every one must pass) and of each wrong defense
   whose row is about time or concurrency (every one must fail that row), and 3 grades of
   lesson 09's solution suite (every one must pass). Counted, never timed: the figure is
   the number of wrong verdicts, and its target is 0.
5. Cohort grading: ``labapp grade`` of LABAPP_BENCH_LEARNERS learners (default 2) who
   each hand in every solution notebook, with as many workers as cores; wall seconds per
   learner-course, and the wall time projected for 30 and 300 learners on this machine
   (and on 10 such machines with ``--shard K/10``).

Targets are reported next to each figure ("ok" / "over"); they are never asserted, so
this script exits 0 whatever it measures. Results also go to benchmarks/results.json.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import inspect
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager

import labapp
from labapp import DefenseBreached, WrongAnswer, start_lab
from labapp.engine.spec import Lesson
from labapp.lessons import all_lessons, get_lesson
from labapp.tools import authoring
from labapp.tools.cohort import grade_cohort

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
Row = dict[str, Any]


def p95(values: list[float]) -> float:
    """95th percentile, nearest-rank."""
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def row(name: str, value: float | None, unit: str, target: float | None, **extra: Any) -> Row:
    """One figure; ``status`` is "ok"/"over" against its target, never an assertion."""
    status = None
    if value is not None and target is not None:
        status = "ok" if value <= target else "over"
    return {"name": name, "value": value, "unit": unit, "target": target, "status": status, **extra}


def bench_start(iterations: int = 50) -> list[Row]:
    start_ms: list[float] = []
    stop_ms: list[float] = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        lab = start_lab("01-unprotected")
        lab.client.get("/health").raise_for_status()
        t1 = time.perf_counter()
        lab.stop()
        t2 = time.perf_counter()
        start_ms.append((t1 - t0) * 1000)
        stop_ms.append((t2 - t1) * 1000)
    return [
        row("lab start → first response, median", statistics.median(start_ms), "ms", 20),
        row("lab start → first response, p95", p95(start_ms), "ms", None),
        row("lab.stop(), median", statistics.median(stop_ms), "ms", None),
        row("lab.stop(), p95", p95(stop_ms), "ms", None),
    ]


def solution_defense(lesson: Lesson, lab: Any) -> dict[str, Any]:
    """The hooks the lesson's solution notebook writes, with what its cells take from the
    notebook around them (labapp's public names and the running ``lab``)."""
    path = ROOT / "solutions" / lesson.notebook
    given = {name: getattr(labapp, name) for name in labapp.__all__} | {"lab": lab}
    return authoring.solution_hooks(path, [hook.name for hook in lesson.hooks], **given)


def defend_as_solution(lesson: Lesson, lab: Any) -> None:
    """Plug in the solution's hooks; for the capstone, mount the solution's whole app."""
    hooks = solution_defense(lesson, lab)
    if hooks:
        lab.defend(**hooks)
    if "mount" in getattr(lab.net, "exports", ()):
        path = ROOT / "solutions" / lesson.notebook
        given = {name: getattr(labapp, name) for name in labapp.__all__} | {"lab": lab}
        models = authoring.solution_namespace(path, "public", **given)
        lab.mount(
            authoring.solution_namespace(path, "build_app", **{**given, **models})["build_app"]
        )


def _timed_grade(lab: Any) -> float:
    t0 = time.perf_counter()
    with contextlib.suppress(DefenseBreached):  # the weak defaults are meant to fail
        lab.grade()
    return time.perf_counter() - t0


def bench_grader(runs: int = 5) -> list[Row]:
    """grade() against the weak defaults (a fresh lab's first grade), and against the
    solution's defense (what a learner waits for: median of ``runs``)."""
    rows: list[Row] = []
    for lesson in all_lessons():
        if not (lesson.attacks or lesson.checks):
            rows.append(row(f"grade() {lesson.id}", None, "s", 3, note="n/a: a quiz only"))
            continue
        with start_lab(lesson.id) as lab:
            weak = _timed_grade(lab)
            rows.append(row(f"grade() {lesson.id}, weak defaults", weak, "s", 3))
            with contextlib.redirect_stdout(io.StringIO()):
                defend_as_solution(lesson, lab)
            times = [_timed_grade(lab) for _ in range(runs)]
        name = f"grade() {lesson.id}, solution"
        rows.append(row(name, statistics.median(times), "s", 3, runs=times))
    return rows


def _suite_grade(lab: Any, suite: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    with contextlib.suppress(WrongAnswer):  # a gap suite is meant to fail
        lab.grade_tests(suite)
    return time.perf_counter() - t0


def _solution_suite(lab: Any) -> dict[str, Any]:
    """Lesson 09's answer: the suite its steps hint defines (it kills all 18 mutants)."""
    steps = get_lesson("09-testing").all_hints()["tests"][2]
    code = re.search(r"```python\n(.*?)```", steps, re.S)
    assert code is not None, "lesson 09's steps hint holds its suite"
    suite: dict[str, Any] = {"lab": lab}
    exec(code[1], suite)  # noqa: S102 - the course's own hint
    return suite


def bench_suite_grades(runs: int = 5) -> list[Row]:
    """Lesson 09's ``lab.grade_tests()``: the solution's suite and a happy-path suite (every
    mutant survives); the first grade also starts the builds."""
    with start_lab("09-testing") as lab:
        solution = _solution_suite(lab)
        happy = {k: solution[k] for k in ("test_health_is_public", "test_sign_in_and_refresh")}
        happy["sign_in"] = solution["sign_in"]
        first = _suite_grade(lab, solution)
        times = [_suite_grade(lab, solution) for _ in range(runs)]
        gaps = [_suite_grade(lab, happy) for _ in range(runs)]
    name = "grade_tests() 09-testing"
    return [
        row(f"{name}, solution suite, first (starts 19 builds)", first, "s", 10),
        row(f"{name}, solution suite, median", statistics.median(times), "s", 10, runs=times),
        row(f"{name}, happy-path suite, median", statistics.median(gaps), "s", 10, runs=gaps),
    ]


def _quiz_grade(lab: Any, quiz: str, answer: Any) -> float:
    t0 = time.perf_counter()
    lab.check_answer(quiz, answer)  # the solution's answer: it must pass
    return time.perf_counter() - t0


def bench_day_quizzes(runs: int = 5) -> list[Row]:
    """Lesson 10's quizzes with the solution's answers: ``detect`` replays a new day (about
    550 requests) through the log and scores the rules; ``adapt`` replays 184 logins with the
    right password (and the attackers' failures before them) through the decision."""
    lesson = get_lesson("10-log-detect")
    path = ROOT / "solutions" / lesson.notebook
    rows = []
    with start_lab(lesson.id) as lab, contextlib.redirect_stdout(io.StringIO()):
        lab.defend(**solution_defense(lesson, lab))
        answers = {
            "detect": authoring.solution_namespace(path, "detect", lab=lab)["detect"],
            "adapt": authoring.solution_hooks(path, ["assess_risk"], lab=lab)["assess_risk"],
        }
        for quiz, answer in answers.items():
            times = [_quiz_grade(lab, quiz, answer) for _ in range(runs)]
            name = f"check_answer({quiz!r}) {lesson.id}, solution, median"
            rows.append(row(name, statistics.median(times), "s", 3, runs=times))
    return rows


def bench_nbval() -> list[Row]:
    rows: list[Row] = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        rel = str(path.relative_to(ROOT))
        cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", rel]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        tail = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
        rows.append(
            row(f"nbval {path.name}", wall, "s", 20, passed=proc.returncode == 0, summary=tail[0])
        )
    return rows


def bench_cohort() -> list[Row]:
    """Grade a cohort of solved courses as an instructor would, and project it."""
    learners = int(os.environ.get("LABAPP_BENCH_LEARNERS", "2"))
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="labapp-bench-cohort-") as folder:
        submissions, out = Path(folder) / "cohort", Path(folder) / "grades"
        for number in range(1, learners + 1):
            mine = submissions / f"learner-{number:03d}"
            mine.mkdir(parents=True)
            for path in sorted((ROOT / "solutions").glob("*.ipynb")):
                (mine / path.name).write_bytes(path.read_bytes())
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            grades = grade_cohort(submissions, out, release=ROOT / "notebooks", workers=workers)
        wall = time.perf_counter() - t0
    everything = all(status == "pass" for r in grades.rows for status in r.statuses)
    per = wall / learners
    note = f"{learners} learners x {len(grades.columns)} exercises, {workers} workers"
    return [
        row(
            "cohort grading, wall s per learner-course",
            per,
            "s",
            None,
            passed=everything,
            note=note,
        ),
        row("cohort grading, CPU s per learner-course", per * workers, "s", None),
        row("cohort grading, projected wall for 30 learners", 30 * per / 60, "min", None),
        row("cohort grading, projected wall for 300 learners", 300 * per / 60, "min", None),
        row("cohort grading, 300 learners on 10 machines", 300 * per / 60 / 10, "min", None),
    ]


# Rows whose verdict could depend on how busy the machine is (a timing leak, equal work
# counted per request, a concurrent burst), each with a wrong defense from the lesson's tests
# that must fail it: (test module, table, the start of the rule text or the mistake's name).
LOADED = {
    "02-api-keys": [("test_l02_api_keys", "RULES", "(grader) ... and in the same time")],
    "03-passwords": [
        ("test_l03_passwords", "RULES", "for None, verify against DUMMY_HASH"),
        ("test_l03_passwords", "MISTAKES", "keyed on account and Content-Length"),
    ],
    "05-refresh": [("test_l05_refresh", "RULES", "... every call that loses the claim")],
}


@contextlib.contextmanager
def busy_cpu(factor: int = 2) -> Any:
    """``factor`` x cores processes that spin until the block ends."""
    count = factor * (os.cpu_count() or 1)
    spin = [sys.executable, "-c", "while True: pass"]
    hogs = [subprocess.Popen(spin) for _ in range(count)]  # noqa: S603 - our own interpreter
    try:
        yield count
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def _verdict(lab: Any, row_id: str | None = None) -> bool:
    """Did the grade pass (row_id None), or did it fail that row?"""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            lab.grade()
    except DefenseBreached as breach:
        return row_id is not None and row_id in {f.id for f in breach.report.failures}
    return row_id is None


def _wrong_defenses(lab: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, row, hooks) of the load-sensitive wrong defenses of the lab's lesson."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    found = []
    for module_name, table, name in LOADED.get(lab.lesson.id, []):
        module = importlib.import_module(f"tests.lessons.{module_name}")
        if table == "RULES":
            rule = next(r for r in module.RULES if r.text.startswith(name))
            wrong, row_id = rule.wrong, rule.row
        else:
            wrong, row_id = getattr(module, table)[name]
        if callable(wrong):
            wrong = wrong(lab) if inspect.signature(wrong).parameters else wrong()
        found.append((name, row_id, wrong))
    return found


def bench_loaded() -> list[Row]:
    rounds = int(os.environ.get("LABAPP_BENCH_ROUNDS", "30"))
    rows: list[Row] = []
    if rounds < 1:  # the figures' names only: no spinners (the test suite runs this way)
        for lesson_id in LOADED:
            rows.append(row(f"busy: {lesson_id}, not caught on its rows (skipped)", None, "", 0))
        return [row("busy (0 spinners): solutions, wrong verdicts (skipped)", None, "", 0), *rows]
    with busy_cpu() as hogs:
        rows.append(_busy_suite_grades(hogs, min(rounds, 3)))
        for lesson in all_lessons():
            if not lesson.hooks:
                continue
            with start_lab(lesson.id) as lab:
                with contextlib.redirect_stdout(io.StringIO()):
                    lab.defend(**solution_defense(lesson, lab))
                wrong = sum(not _verdict(lab) for _ in range(rounds))
                name = f"busy ({hogs} spinners): {lesson.id} solution, wrong verdicts"
                rows.append(row(name, wrong, f"/{rounds}", 0))
                for text, row_id, hooks in _wrong_defenses(lab):
                    with contextlib.redirect_stdout(io.StringIO()):
                        lab.defend(**solution_defense(lesson, lab))
                        lab.defend(**hooks)  # the solution with one thing wrong
                    missed = sum(not _verdict(lab, row_id) for _ in range(rounds))
                    name = f"busy: {lesson.id} '{text[:40]}' not caught on {row_id}"
                    rows.append(row(name, missed, f"/{rounds}", 0))
    return rows


def _busy_suite_grades(hogs: int, rounds: int) -> Row:
    """Lesson 09's solution suite, graded beside the spinners: every grade must pass (no
    false alarm from a slow build, every mutant killed). A grade takes seconds: a few rounds."""
    wrong = 0
    with start_lab("09-testing") as lab:
        suite = _solution_suite(lab)
        for _ in range(rounds):
            try:
                lab.grade_tests(suite)
            except WrongAnswer:
                wrong += 1
    return row(
        f"busy ({hogs} spinners): 09-testing solution suite, wrong verdicts", wrong, f"/{rounds}", 0
    )


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB → MB
    raise RuntimeError(f"no VmRSS for pid {pid}")


def kernel_pid(km: KernelManager) -> int:
    process = getattr(km.provisioner, "process", None)
    if process is not None and getattr(process, "pid", None):
        return int(process.pid)
    # Fallback: the newest ipykernel_launcher that is a child of this process.
    found: list[tuple[int, int]] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"ipykernel_launcher" in cmdline and int(stat[1]) == os.getpid():
            found.append((int(stat[19]), int(proc.name)))  # (start time, pid)
    if not found:
        raise RuntimeError("kernel process not found")
    return max(found)[1]


def run_code(client: Any, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = client.execute_interactive(code, timeout=60, output_hook=hook)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"kernel error: {reply['content'].get('evalue')}")
    return "".join(out).strip()


def bench_kernel() -> tuple[list[Row], str]:
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    client = km.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        executable = run_code(client, "import sys; print(sys.executable)")
        pid = kernel_pid(km)
        before = vm_rss_mb(pid)
        code = (
            'from labapp import start_lab; lab = start_lab("01-unprotected"); '
            'lab.client.get("/health")'
        )
        run_code(client, code)
        after = vm_rss_mb(pid)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    rows = [
        row("kernel RSS, idle (context)", before, "MB", None),
        row("kernel RSS, lab running", after, "MB", 150),
    ]
    return rows, executable


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def print_table(rows: list[Row]) -> None:
    width = max(len(r["name"]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>9} {'unit':<4}  {'target':>8}  status")
    print("-" * (width + 38))
    for r in rows:
        target = "" if r["target"] is None else f"≤ {r['target']}"
        status = r["status"] or ""
        if "passed" in r:
            status += " (passed)" if r["passed"] else " (FAILED)"
        print(f"{r['name']:<{width}}  {fmt(r['value']):>9} {r['unit']:<4}  {target:>8}  {status}")


def main() -> None:
    # Benchmarks capture flags and pass defenses: keep that out of the course's progress
    # file (the kernels and nbval runs started below inherit the variable).
    with tempfile.TemporaryDirectory(prefix="labapp-bench-progress-") as folder:
        os.environ["LABAPP_PROGRESS"] = str(Path(folder) / ".labapp-progress.json")
        run()


def run() -> None:
    rows = bench_start() + bench_grader() + bench_suite_grades() + bench_day_quizzes()
    rows += bench_nbval()
    rows += bench_cohort() + bench_loaded()
    kernel_rows, kernel_executable = bench_kernel()
    rows += kernel_rows
    print_table(rows)
    print(f"\nkernel sys.executable: {kernel_executable} (this process: {sys.executable})")
    results = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "python": sys.version,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": {pkg: version(pkg) for pkg in ("uvicorn", "fastapi", "httpx")},
        "kernel_executable": kernel_executable,
        "figures": rows,
    }
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
