"""Run a learner's tests in one in-process pytest session, once per build of the API.

The tests are the ``test*`` functions and ``Test*`` classes of the notebook's namespace
(or of a module a course test passes). A plugin puts them in a module object pytest
collects (the way ipytest does, without its temporary file in the notebook's folder),
parametrizes ``target`` (which the ``api`` fixture depends on) over every build, and
records each test's outcome per build. A ``@given`` test runs under the grader's settings
(derandomized, no deadline, 25 examples, no shrinking: a failing example found is enough to
kill a mutant), put back afterwards. ``make bench`` measures the solution's suite (33 tests
on 19 builds) at about 7 s.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from labapp.lessons.l09_testing import fixtures
from labapp.lessons.l09_testing.mutants import SOUND

PLUGIN = fixtures.__name__
SUITE_FILE = "test_your_suite.py"
DEADLINE = 120.0  # seconds for a whole suite on every build; a stuck test stops the run
GRADING = {
    "derandomize": True,  # every build sees the same examples: a kill is reproducible
    "database": None,  # no .hypothesis folder, and no example carried over between builds
    "deadline": None,  # real HTTP on a busy machine: a slow round trip is not a failure
    "phases": [Phase.explicit, Phase.generate],  # no shrinking: a failure is enough to kill
    "suppress_health_check": [HealthCheck.too_slow],
}
MAX_EXAMPLES = 25  # per build (x 19): enough for the crash a property test is written for
# In the notebook: no deadline either (a loaded hub is slow), and no .hypothesis folder.
settings.register_profile("labapp", deadline=None, database=None)
_IGNORED = {"In", "Out", "exit", "quit", "get_ipython", "_", "__", "___"}


def ipytest_options(workdir: Path) -> dict[str, Any]:
    """The notebook's ``ipytest.autoconfig(...)``: keep every cell's tests (``clean=False``,
    so the grader finds them all), load the lab's fixtures, and ignore the course's own
    pytest settings (a config file of the lab's, in its temp folder)."""
    return {
        "clean": False,
        "addopts": [
            *("-q", "-p", PLUGIN, "-c", str(_ini(workdir)), "-p", "no:cacheprovider"),
            *("-W", "ignore::pytest.PytestAssertRewriteWarning"),  # already-imported plugins
            "--tb=short",  # a failing request's traceback is pages of httpx otherwise
            # Plugins a notebook's tests never use: they cost the first run 1.5 s (measured).
            *("-p", "no:nbval", "-p", "no:xdist", "-p", "no:xdist.looponfail"),
        ],
    }


def _ini(workdir: Path) -> Path:
    ini = workdir / "pytest.ini"
    if not ini.exists():
        ini.write_text("[pytest]\n")
    return ini


@dataclass
class Outcome:
    test: str  # the learner's test id, without the build: test_x or test_x[alice-GET]
    target: str | None  # None: the test does not use the api fixture
    passed: bool
    skipped: bool = False
    error: str = ""  # "AssertionError: assert 200 == 401", first line


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    collected: int = 0
    problem: str = ""  # the session could not run or finish: why
    output: str = ""  # pytest's own output, for a learner who wants the details
    seconds: float = 0.0


def suite_module(suite: Any) -> types.ModuleType:
    """A module object with the learner's tests and helpers (from a namespace dict, a module
    or a list of functions), and none of the lab's fixture
    names (the grader's versions of ``api``, ``tokens``... win over any look-alike)."""
    if isinstance(suite, types.ModuleType):
        namespace = vars(suite)
    elif isinstance(suite, dict):
        namespace = suite
    elif isinstance(suite, Iterable) and not isinstance(suite, str | bytes):
        namespace = {getattr(item, "__name__", repr(item)): item for item in suite}
    else:
        raise TypeError(
            "grade_tests() takes nothing (your notebook's tests), a module, a dict or a list "
            f"of test functions, not {type(suite).__name__}"
        )
    module = types.ModuleType("your_tests")
    for name, value in namespace.items():
        if name in fixtures.NAMES or name in _IGNORED or name.startswith("__"):
            continue
        module.__dict__[name] = value
    return module


def replaced_fixtures(suite: Any) -> list[str]:
    """Fixtures of the learner's own named like the lab's (the grader uses the lab's)."""
    namespace = vars(suite) if isinstance(suite, types.ModuleType) else suite
    if not isinstance(namespace, dict):
        return []
    return [
        name
        for name in fixtures.NAMES
        if hasattr(namespace.get(name), "_fixture_function_marker")
        and namespace[name] is not getattr(fixtures, name)
    ]


class _Grading:
    """The plugin: the suite as a module, ``target`` over every build, outcomes recorded."""

    def __init__(self, module: types.ModuleType, path: Path, targets: tuple[str, ...]) -> None:
        self.module, self.path, self.targets = module, path, targets
        self.run = Run()
        self.deadline = time.monotonic() + DEADLINE
        self.bound: dict[Any, Any] = {}  # a @given test -> its own settings, put back after
        self.running = ""

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(self, module_path: Path, parent: Any) -> Any:
        if Path(module_path) != self.path:
            return None
        module = self.module

        class Suite(pytest.Module):
            def _getobj(self) -> types.ModuleType:
                return module

        return Suite.from_parent(parent, path=module_path)

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "target" in metafunc.fixturenames:
            ids = [f"@{target}" for target in self.targets]
            metafunc.parametrize("target", self.targets, ids=ids, scope="session")

    def pytest_collection_finish(self, session: Any) -> None:
        self.run.collected = len(session.items)
        for item in session.items:  # a @given test's settings were fixed when it was defined
            test = getattr(item, "obj", None)
            bound = getattr(test, "_hypothesis_internal_use_settings", None)
            if bound is not None and test not in self.bound:
                self.bound[test] = bound
                examples = min(bound.max_examples, MAX_EXAMPLES)
                test._hypothesis_internal_use_settings = settings(  # type: ignore[union-attr]
                    bound, max_examples=examples, **GRADING
                )

    def restore(self) -> None:
        for test, bound in self.bound.items():
            test._hypothesis_internal_use_settings = bound

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.running = nodeid.split("::")[-1]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: Any) -> None:
        if time.monotonic() > self.deadline and not self.run.problem:
            self.run.problem = (
                f"the suite ran out of time ({DEADLINE:.0f} s for every build) before "
                f"{_label(item, None)}: keep each test to a few requests (and a property "
                "test to a few dozen examples)"
            )
            item.session.shouldstop = self.run.problem

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        report = yield
        if report.when == "call" or (report.when == "setup" and not report.passed):
            params = getattr(getattr(item, "callspec", None), "params", {})
            target = params.get("target")
            error = ""
            if call.excinfo is not None and not report.skipped:
                message = str(call.excinfo.value).strip().splitlines()
                error = call.excinfo.typename + (f": {message[0]}" if message else "")
                error = error if len(error) <= 160 else error[:157] + "..."
                if report.when == "setup":
                    error = f"error in setup: {error}"
            self.run.outcomes.append(
                Outcome(_label(item, target), target, report.passed, report.skipped, error)
            )
        return report


def _label(item: Any, target: str | None) -> str:
    name = item.name
    if target is not None:
        name = name.replace(f"-@{target}", "").replace(f"@{target}-", "")
        name = name.replace(f"[@{target}]", "")
    return name


def run_suite(suite: Any, workdir: Path, targets: tuple[str, ...] = (SOUND,)) -> Run:
    """Run ``suite`` against ``targets`` (the lab must be running); never raises."""
    folder = workdir / "grading"
    folder.mkdir(exist_ok=True)
    path = folder / SUITE_FILE
    path.write_text("# the learner's tests are collected from the notebook, not from here\n")
    plugin = _Grading(suite_module(suite), path, targets)
    args = [str(path), "-c", str(_ini(workdir)), "--rootdir", str(folder), "-q"]
    args += ["-p", "no:cacheprovider", "-p", "no:faulthandler", "--capture=sys"]
    args += ["-W", "ignore::pytest.PytestAssertRewriteWarning", "--color=no", "--tb=short"]
    output = io.StringIO()
    started = time.monotonic()

    def session() -> None:
        try:
            quiet = contextlib.redirect_stdout(output), contextlib.redirect_stderr(output)
            try:
                with _no_autoload(), quiet[0], quiet[1]:
                    code = pytest.main(args, plugins=[fixtures, plugin])
            finally:
                plugin.restore()
            if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
                plugin.run.problem = f"pytest could not run the suite ({code.name})"
        except BaseException as exc:  # noqa: BLE001 - reported, never raised into a cell
            plugin.run.problem = f"the suite could not run: {type(exc).__name__}: {exc}"

    worker = threading.Thread(target=session, name="labapp-grade-tests", daemon=True)
    worker.start()
    worker.join(DEADLINE + 15)
    if worker.is_alive():
        running = plugin.running or "the first test"
        plugin.run.problem = (
            f"the suite did not finish in {DEADLINE + 15:.0f} s: {running} never returned. A "
            "test that waits forever cannot be graded; fix it, then restart the kernel to end it"
        )
    plugin.run.output = output.getvalue()
    plugin.run.seconds = time.monotonic() - started
    return plugin.run


@contextlib.contextmanager
def _no_autoload() -> Iterator[None]:
    # Only the plugins named here: not nbval, xdist or any other installed entry point.
    before = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = before
