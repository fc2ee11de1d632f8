"""Lab: what a notebook holds. ``start_lab(lesson_id)`` is the way in."""

from __future__ import annotations

import atexit
import contextlib
import html
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from labapp import progress
from labapp.errors import (
    BadHook,
    DefenseBreached,
    LabStopped,
    UnknownDependency,
    UnknownExercise,
    UnknownHook,
    WrongAnswer,
)
from labapp.flags import FlagBook
from labapp.grading import Report, run_battery
from labapp.guard import Guard, HookFailed, HookTimeout, check_signature
from labapp.http import lab_client
from labapp.lessons import get_lesson
from labapp.server import LOOPBACK, LabServer, require_loopback
from labapp.spec import LabState, Lesson
from labapp.store import AuditLog, Store
from labapp.tls import LAB_NAMES, CourseCA, server_context

_running: dict[str, Lab] = {}
_registry_lock = threading.Lock()


def start_lab(lesson_id: str, *, host: str = LOOPBACK, tls: bool = False) -> Lab:
    """Start the lab server of a lesson and return the :class:`Lab` that drives it.

    ``tls=True`` serves the lab over HTTPS with a certificate from a CA made for this lab
    (``lab.ca_file``); lab.client and the graders trust that CA. Lessons that teach TLS
    always do. Re-running the cell is safe: it stops this kernel's previous lab of the
    same lesson.
    """
    __tracebackhide__ = True
    lesson = get_lesson(lesson_id)
    require_loopback(host)  # before the old lab is stopped
    with _registry_lock:
        old = _running.pop(lesson.id, None)
    if old is not None:
        old.stop()
    lab = Lab(lesson, tls=tls)
    with _registry_lock:
        _running[lesson.id] = lab
    return lab


def stop_all() -> None:
    """Stop every lab this kernel started (also runs at interpreter exit)."""
    with _registry_lock:
        labs = list(_running.values())
    for lab in labs:
        lab.stop()


atexit.register(stop_all)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with jupyterlab
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _show(obj: Any) -> None:
    """Display a report in the notebook before an exception hides it behind a traceback."""
    if _in_notebook():
        from IPython.display import display

        display(obj)


class Lab:
    """A running lab: its URL, an HTTP client, seeded users, and the exercise graders."""

    def __init__(self, lesson: Lesson, *, tls: bool = False) -> None:
        self.lesson = lesson
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
        )
        self._hints_shown: dict[str, int] = {}
        self._side_servers: list[LabServer] = []
        self._stopped = False
        self.ca: CourseCA | None = None
        self.net: Any = None  # the lesson's other servers and tools, if it has any
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
        report = run_battery(
            self, list(self.lesson.attacks), list(self.lesson.checks), f"{self.lesson.id} defense"
        )
        if not report.passed:
            _show(report)
            raise DefenseBreached(report.breach_message(), report)
        if self.lesson.hooks:
            progress.record(self.lesson.id, progress.DEFEND)
        return report

    def check_flag(self, name: str, value: object) -> None:
        """Check a captured flag; a wrong one raises WrongFlag saying why (never the answer)."""
        __tracebackhide__ = True
        self._alive()
        self.state.flags.check(name, value)
        print(f"✅ Correct: that is the {name!r} flag of this lab.")
        progress.record(self.lesson.id, name)

    def check_answer(self, name: str, answer: Any) -> Report:
        """Grade a quiz answer against the lab's truth."""
        __tracebackhide__ = True
        self._alive()
        quizzes = {quiz.id: quiz for quiz in self.lesson.quizzes}
        if name not in quizzes:
            valid = ", ".join(repr(q) for q in quizzes) or "(none)"
            raise UnknownExercise(f"lesson {self.lesson.id} has no quiz {name!r}; quizzes: {valid}")
        report = Report(f"{self.lesson.id} {name}", quizzes[name].grade(self, answer))
        if not report.passed:
            _show(report)
            raise WrongAnswer(report.breach_message(), report)
        progress.record(self.lesson.id, name)
        return report

    def hint(self, name: str) -> None:
        """Print the next hint for an exercise, one at a time."""
        __tracebackhide__ = True
        hints = self.lesson.all_hints()
        if name not in hints:
            valid = ", ".join(repr(h) for h in hints) or "(none)"
            raise UnknownExercise(f"lesson {self.lesson.id} has no exercise {name!r}; try {valid}")
        shown = self._hints_shown.get(name, 0)
        steps = hints[name]
        if shown >= len(steps):
            print(
                f"No more hints for {name!r}: all {len(steps)} are above. "
                "Re-read the 'Why it worked' notes above, or ask your instructor."
            )
            return
        self._hints_shown[name] = shown + 1
        print(f"Hint {shown + 1}/{len(steps)} for {name!r}: {steps[shown]}")

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
        self.client.close()
        self.store.close()
        self.state.flags.retire()
        self._tmp.cleanup()
        with _registry_lock:
            if _running.get(self.lesson.id) is self:
                del _running[self.lesson.id]

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else f"running at {self.url}"
        return f"<Lab {self.lesson.id}: {state}>"

    def _repr_html_(self) -> str:
        e = html.escape
        if self._stopped:
            return f"<p><b>{e(self.lesson.title)}</b>: stopped.</p>"
        routes = sorted(
            (",".join(sorted(getattr(r, "methods", []) - {"HEAD"})), r.path)
            for r in self.server.app.routes
            if getattr(r, "include_in_schema", False)
        )
        route_items = "".join(f"<li><code>{e(m)} {e(p)}</code></li>" for m, p in routes)
        columns = list(dict.fromkeys(key for user in self.users for key in user))
        user_head = "".join(f"<th>{e(c)}</th>" for c in columns)
        user_rows = "".join(
            "<tr>"
            + "".join(f"<td><code>{e(str(user.get(c, '')))}</code></td>" for c in columns)
            + "</tr>"
            for user in self.users
        )
        exercises = ", ".join(
            [f"flag <code>{e(n)}</code>" for n in self.lesson.flag_names]
            + [f"quiz <code>{e(q.id)}</code>" for q in self.lesson.quizzes]
            + [f"hook <code>{e(h.name)}</code>" for h in self.lesson.hooks]
        )
        hooks = "".join(
            f"<li><code>{e(h.name)}({e(', '.join(h.params))})</code>: "
            f"{e((h.doc or '').strip().splitlines()[0] if h.doc else '')}</li>"
            for h in self.lesson.hooks
        )
        hook_list = (
            f"<details><summary>Hooks you can replace ({len(self.lesson.hooks)})</summary>"
            f"<ul>{hooks}</ul></details>"
            if hooks
            else ""
        )
        tls_note = f"; HTTPS, CA in lab.ca_file = {self.ca_file}" if self.ca_file else ""
        return (
            f"<div style='border:1px solid #888;border-radius:6px;padding:8px 12px'>"
            f"<b>🧪 {e(self.lesson.title)}</b> — running at <code>{e(self.url)}</code> "
            f"(loopback only{e(tls_note)})<br>"
            f"API docs: <a href='{e(self.docs_url)}' target='_blank'>{e(self.docs_url)}</a><br>"
            f"<details><summary>Seeded users</summary><table><tr>{user_head}</tr>{user_rows}"
            f"</table></details>"
            f"<details><summary>Endpoints ({len(routes)})</summary><ul>{route_items}</ul></details>"
            f"{hook_list}"
            f"<p>Exercises: {exercises}</p>"
            f"<p>{self.lesson.try_this}</p></div>"
        )


def install_handlers(app: FastAPI) -> FastAPI:
    """The error answers every lab app gives: a hook's crash or hang named, input never echoed."""

    async def hook_failed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=500)

    async def hook_timeout(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=504)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own handler echoes the input back: that can be a password, and an
        # unencodable one (a lone surrogate) turns the 422 into a bare 500.
        errors = [
            {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", ""))}
            for error in getattr(exc, "errors", list)()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_exception_handler(HookFailed, hook_failed)
    app.add_exception_handler(HookTimeout, hook_timeout)
    app.add_exception_handler(RequestValidationError, invalid_request)
    return app


def _first(names: dict[str, Any]) -> str:
    return next(iter(names), "hook")
