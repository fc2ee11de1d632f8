"""Lab: what a notebook holds, one lesson's running lab server and its graders.

``start(lesson)`` is the way in; ``labapp.start_lab(lesson_id)`` finds the lesson by id and
records the learner's progress.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from labapp.engine import registry
from labapp.engine.card import card_html
from labapp.engine.errors import (
    BadHook,
    DefenseBreached,
    HookStillRunning,
    LabStopped,
    UnknownDependency,
    UnknownExercise,
    UnknownHook,
    WrongAnswer,
)
from labapp.engine.flags import FlagBook
from labapp.engine.grading import Report, run_battery
from labapp.engine.guard import Guard, check_signature
from labapp.engine.handlers import install_handlers
from labapp.engine.http import lab_client
from labapp.engine.loopback import LOOPBACK, require_loopback
from labapp.engine.server import LabServer
from labapp.engine.spec import DEFEND, LabState, Lesson
from labapp.engine.store import AuditLog, Store
from labapp.engine.tls import LAB_NAMES, CourseCA, server_context

# Told of each exercise done: (lesson id, exercise name). labapp.start_lab passes the
# progress file's ``record``; the engine itself keeps no score.
Recorder = Callable[[str, str], object]
# Told of each hint shown: (lesson id, exercise name, tier 1..n), so an instructor sees who
# needed the recipe. labapp.start_lab passes the progress file's ``record_hint``.
HintRecorder = Callable[[str, str, int], object]

# An attack's or a quiz's three hints, in order: where to look, the technique by name (with
# its reference), the concrete steps. Discovery first; the recipe only when asked for.
TIERS = ("nudge", "technique", "steps")


def start(
    lesson: Lesson,
    *,
    host: str = LOOPBACK,
    tls: bool = False,
    record: Recorder | None = None,
    record_hint: HintRecorder | None = None,
) -> Lab:
    """Start the lab server of a lesson and return the :class:`Lab` that drives it.

    ``tls=True`` serves the lab over HTTPS with a certificate from a CA made for this lab
    (``lab.ca_file``); lab.client and the graders trust that CA. Lessons that teach TLS
    always do. Starting a lesson again stops this kernel's previous lab of that lesson.
    """
    __tracebackhide__ = True
    require_loopback(host)  # before the old lab is stopped
    old = registry.take(lesson.id)
    if old is not None:
        old.stop()
    lab = Lab(lesson, tls=tls, record=record, record_hint=record_hint)
    registry.put(lesson.id, lab)
    return lab


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with jupyterlab
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _show(obj: Any) -> bool:
    """Display a report in the notebook before an exception hides it behind a traceback;
    True when it was shown."""
    if _in_notebook():
        from IPython.display import display

        display(obj)
        return True
    return False


class Lab:
    """A running lab: its URL, an HTTP client, seeded users, and the exercise graders."""

    def __init__(
        self,
        lesson: Lesson,
        *,
        tls: bool = False,
        record: Recorder | None = None,
        record_hint: HintRecorder | None = None,
    ) -> None:
        self.lesson = lesson
        self._record = record or (lambda lesson_id, exercise: None)
        self._record_hint = record_hint or (lambda lesson_id, exercise, tier: None)
        self._tmp = tempfile.TemporaryDirectory(prefix=f"lab-{lesson.id}-")
        self.workdir = Path(self._tmp.name)
        self.store = Store(self.workdir / "lab.sqlite3")
        self.guard = Guard()
        self.state = LabState(
            lesson_id=lesson.id,
            workdir=self.workdir,
            store=self.store,
            flags=FlagBook(lesson.id, lesson.flag_names),
            guard=self.guard,
            hooks={hook.name: hook.weak for hook in lesson.hooks},
            weak={hook.name: hook.weak for hook in lesson.hooks},
            returns={hook.name: hook.returns for hook in lesson.hooks if hook.returns},
        )
        self._hints_shown: dict[str, int] = {}
        self._side_servers: list[LabServer] = []
        self._stopped = False
        self.ca: CourseCA | None = None
        self.net: Any = None  # the lesson's other servers and tools (its exports: lab.<name>)
        try:
            context = None
            if tls or lesson.tls:
                self.ca = CourseCA(self.workdir / "tls")
                self.server_files = self.ca.issue("server", *LAB_NAMES)
                make = lesson.server_context or (lambda lab: server_context(lab.server_files))
                context = make(self)
                self._client_tls = self.ca.client_context()
            lesson.seed(self.state)
            self.store.add_secret(*self.state.flags.all_flags())
            self.server = LabServer(self._build_app(), ssl_context=context)
            self.server.start()
            self.url = self.server.url
            if self.docs_prefix:
                # Behind jupyter-server-proxy, /docs must fetch /openapi.json under the prefix.
                self.server.app.root_path = self.docs_prefix
            if lesson.network is not None:
                self.net = lesson.network(self)
        except BaseException:
            if hasattr(self, "server"):  # a lesson's network cleans up after itself
                self.server.stop()
            self.store.close()
            self._tmp.cleanup()
            raise
        self.client = lab_client(self.url, **self.client_options())

    # -- the server ---------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        return install_handlers(self.lesson.create_app(self.state))

    @property
    def users(self) -> list[dict[str, Any]]:
        """The seeded users, with the credentials a legitimate client of this lab uses."""
        return self.state.users

    @property
    def docs_prefix(self) -> str:
        """On a JupyterHub, where jupyter-server-proxy serves this lab ("" elsewhere).

        The proxy speaks plain HTTP to the lab, so an HTTPS lab has no proxied address.
        """
        hub = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "")
        if not hub or self.ca is not None:
            return ""
        return f"{hub.rstrip('/')}/proxy/{self.server.port}"

    @property
    def docs_url(self) -> str:
        """The address of this lab's interactive API docs, for a browser."""
        return f"{self.docs_prefix}/docs" if self.docs_prefix else f"{self.url}/docs"

    @property
    def ca_file(self) -> Path | None:
        """The PEM file of the CA this lab's HTTPS certificate comes from (None over HTTP)."""
        return self.ca.ca_file if self.ca is not None else None

    def client_options(self) -> dict[str, Any]:
        """Extra httpx options graders need to reach this lab: over HTTPS, trust its CA."""
        return {"verify": self._client_tls} if self.ca is not None else {}

    def server_log(self) -> list[str]:
        return list(self.server.log)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _alive(self) -> None:
        __tracebackhide__ = True
        if self._stopped:
            raise LabStopped(
                f"this {self.lesson.id} lab was stopped; run start_lab({self.lesson.id!r}) again"
            )

    # -- exercises ----------------------------------------------------------------------

    def defend(self, **hooks: Callable[..., Any]) -> None:
        """Plug your functions into the running server in place of its weak defaults."""
        __tracebackhide__ = True
        self._alive()
        known = {hook.name: hook for hook in self.lesson.hooks}
        if not hooks:
            raise BadHook(f"pass your function by hook name, e.g. lab.defend({_first(known)}=fn)")
        for name, fn in hooks.items():
            if name not in known:
                valid = ", ".join(known) or "(this lesson has no hooks)"
                raise UnknownHook(f"this lab has no hook {name!r}; its hooks are: {valid}")
            problem = check_signature(name, fn, known[name].params)
            if problem:
                raise BadHook(problem)
        before = {name: self.state.hooks[name] for name in hooks}
        self.state.hooks.update(hooks)
        try:
            self._apply(set(hooks))
        except BaseException:
            self.state.hooks.update(before)  # a setting that cannot be applied is not kept,
            with contextlib.suppress(Exception):  # and one applied with it is undone
                self._apply(set(hooks))
            raise
        print(f"Defended: {', '.join(hooks)} now run your code. Next: lab.grade()")

    def undefend(self) -> None:
        """Put the weak defaults back (to replay an attack after defending)."""
        __tracebackhide__ = True
        self._alive()
        self.state.hooks.update({hook.name: hook.weak for hook in self.lesson.hooks})
        self._apply({hook.name for hook in self.lesson.hooks})

    def _apply(self, names: set[str]) -> None:
        """Some hooks are settings (a TLS context): the lesson's servers pick them up now."""
        __tracebackhide__ = True
        apply = getattr(self.net, "apply", None)
        if apply is not None:
            apply(names)

    def grade(self) -> Report:
        """Replay every attack of the lesson and every legitimate check; raise if any fails."""
        __tracebackhide__ = True
        self._alive()
        self._refuse_beside_stuck_hooks()
        try:
            report = run_battery(
                self,
                list(self.lesson.attacks),
                list(self.lesson.checks),
                f"{self.lesson.id} defense",
            )
            if self.lesson.present is not None:  # e.g. the capstone's rows by checklist item
                report = self.lesson.present(report)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                "grade() was interrupted: nothing was graded. Run the cell again."
            ) from None
        if not report.passed:
            breach = DefenseBreached(report.breach_message(), report)
            breach.shown = _show(report)
            raise breach
        if self.lesson.hooks or self.lesson.attacks or self.lesson.checks:
            self._record(self.lesson.id, DEFEND)  # the capstone defends with a whole app
        return report

    def _refuse_beside_stuck_hooks(self) -> None:
        __tracebackhide__ = True
        stuck = self.guard.end_lingering(wait=2.0, with_left_behind=True)
        if stuck:
            calls = ", ".join(item.describe() for item in stuck)
            raise HookStillRunning(
                f"grade() will not judge while a call of your hook is still running: {calls}. "
                "Python cannot stop a thread stuck in a blocking call (time.sleep, a socket "
                "read, input()), and grading beside it would slow or skew the verdicts. Fix "
                "the hook so it returns in time, then restart the kernel (Kernel > Restart "
                "Kernel) and run the notebook again."
            )

    def check_flag(self, name: str, value: object) -> None:
        """Check a captured flag; a wrong one raises WrongFlag saying why (never the answer)."""
        __tracebackhide__ = True
        self._alive()
        self.state.flags.check(name, value)
        print(f"✅ Correct: that is the {name!r} flag of this lab.")
        self._record(self.lesson.id, name)

    def check_answer(self, name: str, answer: Any) -> Report:
        """Grade a quiz answer against the lab's truth."""
        __tracebackhide__ = True
        self._alive()
        quizzes = {quiz.id: quiz for quiz in self.lesson.quizzes}
        if name not in quizzes:
            valid = ", ".join(repr(q) for q in quizzes) or "(none)"
            raise UnknownExercise(f"lesson {self.lesson.id} has no quiz {name!r}; quizzes: {valid}")
        graded = quizzes[name].grade(self, answer)  # its rows, or a report of its own kind
        title = f"{self.lesson.id} {name}"
        report = graded if isinstance(graded, Report) else Report(title, graded)
        if not report.passed:
            wrong = WrongAnswer(report.breach_message(), report)
            wrong.shown = _show(report)
            raise wrong
        self._record(self.lesson.id, name)
        return report

    def hint(self, name: str | None = None) -> None:
        """Print the next hint for an exercise, one at a time.

        An attack's hints are a ladder: a nudge (where to look), the technique (by name, with
        its reference), then the steps. Each hint shown is recorded in the progress file.
        Without a name, the lesson's only exercise (a lesson with several asks which).
        """
        __tracebackhide__ = True
        hints = self.lesson.all_hints()
        if name is None and len(hints) == 1:
            name = next(iter(hints))
        if name not in hints:
            valid = ", ".join(repr(h) for h in hints) or "(none)"
            if name is None:
                raise UnknownExercise(f"which exercise? lab.hint(name), name one of {valid}")
            raise UnknownExercise(f"lesson {self.lesson.id} has no exercise {name!r}; try {valid}")
        shown = self._hints_shown.get(name, 0)
        steps = hints[name]
        if shown >= len(steps):
            last = (
                "The last one is the whole recipe: run it, then compare it with your own code."
                if name in self.lesson.ladders()
                else "Compare them with the rules stated above the exercise, or ask your "
                "instructor."
            )
            print(f"No more hints for {name!r}: all {len(steps)} are above. {last}")
            return
        self._hints_shown[name] = shown + 1
        tier = f" ({TIERS[shown]})" if name in self.lesson.ladders() else ""
        print(f"Hint {shown + 1}/{len(steps)}{tier} for {name!r}: {steps[shown]}")
        self._record_hint(self.lesson.id, name, shown + 1)

    def audit(self, decision: str | None = None) -> AuditLog:
        """The server's record of every authentication and authorization decision.

        ``decision="deny"`` (or ``"allow"``, ``"error"``) keeps only those events.
        """
        rows = self.store.audit_rows()
        return rows if decision is None else AuditLog(r for r in rows if r["decision"] == decision)

    def attacker_server(self, documents: dict[str, Any]) -> str:
        """Serve JSON documents from a second loopback server, as an attacker would.

        ``documents`` maps paths (``"/jwks.json"``) to JSON values; returns the base URL. The
        server stops with the lab. For attacks that make the lab fetch something (a ``jku``).
        """
        __tracebackhide__ = True
        self._alive()
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse as Served
        from starlette.routing import Route

        def serve(value: Any) -> Any:
            async def endpoint(request: Request) -> Served:
                return Served(value)

            return endpoint

        routes = [Route(path, serve(value)) for path, value in documents.items()]
        server = LabServer(Starlette(routes=routes))
        server.start()
        self._side_servers.append(server)
        return server.url

    @contextlib.contextmanager
    def outage(self, dependency: str | None = None) -> Iterator[None]:
        """Simulate a dependency of the server (the identity service...) being down.

        Without a name, the lab's only dependency (most labs have one).
        """
        __tracebackhide__ = True
        if dependency is None and len(self.lesson.dependencies) == 1:
            dependency = self.lesson.dependencies[0]
        if dependency not in self.lesson.dependencies:
            valid = ", ".join(repr(d) for d in self.lesson.dependencies) or "(none)"
            raise UnknownDependency(
                f"this lab has no {dependency!r} service to take down; it depends on: {valid}"
            )
        self.state.outages.add(dependency)
        try:
            yield
        finally:
            self.state.outages.discard(dependency)

    # -- life cycle ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the server and delete the lab's files; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.net is not None:
            self.net.stop()
        for side in self._side_servers:
            side.stop()
        self.server.stop()
        stuck = self.guard.end_lingering(wait=1.0)
        if stuck:
            self.guard.leave_behind(stuck)
            calls = ", ".join(item.describe() for item in stuck)
            print(
                f"Stopped the {self.lesson.id} lab, but a call of your hook is still running: "
                f"{calls}. Python cannot stop it; restart the kernel to end it "
                "(until then, grade() refuses to judge)."
            )
        self.client.close()
        self.store.close()
        self.state.flags.retire()
        self._tmp.cleanup()
        registry.forget(self.lesson.id, self)

    # -- the lesson's own tools ----------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        """``lab.<name>`` for a tool the lesson's network exports (``lab.net.exports``).

        Only names the network lists in its ``exports`` tuple are delegated, so the engine
        knows no lesson and a typo is still an AttributeError that names this lab.
        """
        __tracebackhide__ = True
        # Only called when ordinary lookup fails; read net from __dict__ so that an early
        # failure in __init__ (before net exists) cannot recurse.
        net = self.__dict__.get("net")
        if not name.startswith("__") and name in _exports(net):
            return getattr(net, name)
        lesson = self.__dict__.get("lesson")
        which = f"the {lesson.id} lab" if lesson is not None else "this lab"
        extra = ", ".join(_exports(net))
        also = f"; besides the Lab's own, it has: {extra}" if extra else ""
        raise AttributeError(f"{which} has no attribute {name!r}{also}", name=name, obj=self)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_exports(self.__dict__.get("net"))})

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else f"running at {self.url}"
        return f"<Lab {self.lesson.id}: {state}>"

    def _repr_html_(self) -> str:
        return card_html(self)


def _exports(net: Any) -> tuple[str, ...]:
    """The names a lesson's network offers as ``lab.<name>`` (its ``exports`` tuple)."""
    names = getattr(net, "exports", ()) if net is not None else ()
    return tuple(name for name in names if isinstance(name, str))


def _first(names: dict[str, Any]) -> str:
    return next(iter(names), "hook")
