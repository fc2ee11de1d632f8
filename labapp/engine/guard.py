"""Run learner code inside the lab server, with a deadline.

A learner's hook runs off the server's event loop, in a daemon thread of its own, so that:

- one that raises becomes a 500 whose report row names the learner's exception;
- one that hangs (``while True``, ``time.sleep(60)``, an ``async def`` that blocks) becomes a
  504 after the deadline, and the server, the grader and ``stop()`` carry on.

Python cannot kill a thread. On a deadline we cancel an async hook's task and raise an
exception *inside* the hook's thread (which ends a pure-Python loop at once, a busy
``async def`` included). A hook stuck in a C call (``time.sleep``, a socket read) cannot be
ended: it is remembered as *lingering*; ``lab.stop()`` tries once more and says plainly
what is left, and ``grade()`` refuses to judge while one is still running (it would slow
or skew the verdicts), until it ends or the kernel restarts.

What a hook prints is kept aside while it runs and shown capped after it returns
(:mod:`labapp.engine.hookio`), so printing cannot push a correct hook past its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import inspect
import os
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labapp.engine import hookio

DEFAULT_DEADLINE = 1.0


class HookTimeout(Exception):
    """A learner hook did not return before its deadline; the server answers 504."""

    def __init__(self, hook: str, deadline: float) -> None:
        super().__init__(f"{hook}() did not return within {deadline:g} s")
        self.hook = hook


class HookFailed(Exception):
    """A learner hook raised; the server answers 500 and the report names the exception."""

    def __init__(self, hook: str, error: BaseException) -> None:
        super().__init__(f"{hook}() raised {type(error).__name__}: {error}")
        self.hook = hook
        self.error = error


class _Abandoned(BaseException):
    """Injected into a hook thread whose deadline passed, to end a runaway loop."""


@dataclass(frozen=True)
class HookIncident:
    hook: str
    kind: str  # "raised", "timed out" or "returned" (something unusable)
    summary: str
    where: str = ""


@dataclass(frozen=True)
class Lingering:
    """A hook call that outlived its deadline and whose thread has not ended (yet)."""

    hook: str
    thread: threading.Thread
    since: float  # time.monotonic() of the deadline

    def describe(self) -> str:
        return f"{self.hook}() (past its deadline {time.monotonic() - self.since:.0f} s ago)"


def max_stretch() -> float:
    """How far a busy machine may stretch a deadline: 5-fold, or LABAPP_DEADLINE_STRETCH
    (the course's tests set 1, so their deadlines are exact whatever else runs)."""
    try:
        return max(1.0, float(os.environ.get("LABAPP_DEADLINE_STRETCH", "5")))
    except ValueError:
        return 5.0


# Lingering hooks a stopped lab could not end: a later lab's grade() refuses while they run.
_left_behind: list[Lingering] = []


@dataclass
class Guard:
    """Calls hooks with a deadline and remembers what went wrong, for the report."""

    deadline: float = DEFAULT_DEADLINE
    incidents: list[HookIncident] = field(default_factory=list)
    # While grading, a hook that hung once is not waited for again: the verdict is already
    # known, and thirty one-second waits would make the grader look hung too.
    grading: bool = False
    hung: set[str] = field(default_factory=set)
    abandoned: list[Lingering] = field(default_factory=list)
    shown: int = 0  # characters of hook output shown during this grade
    unshown: int = 0  # and left out
    _output_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextlib.contextmanager
    def grading_run(self) -> Iterator[None]:
        self.grading, self.hung, self.shown, self.unshown = True, set(), 0, 0
        try:
            yield
        finally:
            self.grading, self.hung = False, set()
            if self.unshown:
                print(
                    f"… {self.unshown} more characters of your hooks' output not shown "
                    f"(each call shows its first {hookio.PER_CALL}, a grade {hookio.PER_GRADE})"
                )

    def allowed(self) -> float:
        """The deadline, stretched on a machine with more runnable work than cores.

        A correct hook that needs 50 ms gets a sliver of a core when eight learners grade at
        once on two: a fixed second would call it hung (and, during a grade, every later call
        too). Stretching by the load, at most five-fold, keeps the verdict; a hook that truly
        hangs is still stopped, a little later.
        """
        try:
            load = os.getloadavg()[0] / (os.cpu_count() or 1)
        except OSError:  # pragma: no cover - no load average on this platform
            load = 1.0
        return round(self.deadline * min(max_stretch(), max(1.0, load)), 1)

    def _show_output(self, hook: str, out: hookio.Buffer) -> None:
        """Print what a hook printed, within the per-call and per-grade caps."""
        text, dropped = out.text, out.dropped
        if not text and not dropped:
            return
        with self._output_lock:
            if self.grading:
                allowed = max(0, hookio.PER_GRADE - self.shown)
                dropped += max(0, len(text) - allowed)
                text = text[:allowed]
                self.shown += len(text)
                self.unshown += dropped
                dropped = 0  # said once, at the end of the grade
            if text:
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
            if dropped:
                sys.stdout.write(f"… {dropped} more characters of {hook}()'s output not shown\n")

    def lingering(self) -> list[Lingering]:
        """Hook calls past their deadline whose threads still run."""
        self.abandoned = [item for item in self.abandoned if item.thread.is_alive()]
        return list(self.abandoned)

    def end_lingering(self, wait: float, *, with_left_behind: bool = False) -> list[Lingering]:
        """Try again to end lingering hooks (and, if asked, those stopped labs left behind),
        waiting up to ``wait`` s in all; return the calls that still run."""
        items = self.lingering() + (left_behind() if with_left_behind else [])
        ends = time.monotonic() + wait
        for item in items:
            _interrupt(item.thread)
        for item in items:
            item.thread.join(max(0.0, ends - time.monotonic()))
        return [item for item in items if item.thread.is_alive()]

    def leave_behind(self, items: list[Lingering]) -> None:
        """A stopping lab hands over what it could not end, so later grades know."""
        _left_behind.extend(items)

    def bad_result(self, hook: str, problem: str) -> HookFailed:
        """A hook returned something the server cannot use: record it, return the error."""
        error = TypeError(problem)
        self.incidents.append(HookIncident(hook, "returned", problem))
        return HookFailed(hook, error)

    async def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        if name in self.hung:
            self.incidents.append(HookIncident(name, "timed out", "hung earlier in this run"))
            raise HookTimeout(name, self.allowed())
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        inner: dict[str, Any] = {}

        def settle(ok: bool, value: Any) -> None:
            if not done.done():
                (done.set_result if ok else done.set_exception)(value)

        def report(ok: bool, value: Any) -> None:
            # The server may have stopped while a slow hook ran: nobody is waiting then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, ok, value)

        def call_hook() -> Any:
            if inspect.iscoroutinefunction(fn):
                # Its own loop, so a blocking call inside `async def` cannot freeze ours.
                hook_loop = asyncio.new_event_loop()
                inner["loop"] = hook_loop
                try:
                    task = hook_loop.create_task(fn(*args))
                    inner["task"] = task
                    return hook_loop.run_until_complete(task)
                finally:
                    hook_loop.close()
            return fn(*args)

        def run() -> None:
            out = hookio.Buffer()
            try:
                with hookio.captured() as out:
                    result = call_hook()
                report(True, result)
            except (_Abandoned, asyncio.CancelledError):
                pass
            except BaseException as exc:  # noqa: BLE001 - learner code may raise anything
                if not isinstance(exc, Exception):  # SystemExit and friends: keep them here
                    exc = RuntimeError(f"{type(exc).__name__}({exc})")
                report(False, exc)
            finally:
                with contextlib.suppress(BaseException):  # an _Abandoned may still arrive
                    self._show_output(name, out)

        # The request's context (contextvars) goes along: lessons may keep per-request facts there.
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(run,), name=f"lab-hook-{name}", daemon=True
        )
        thread.start()
        try:
            allowed = self.allowed()
            return await asyncio.wait_for(asyncio.shield(done), allowed)
        except asyncio.TimeoutError:
            self._abandon(name, thread, inner)
            if self.grading:
                self.hung.add(name)
            self.incidents.append(
                HookIncident(name, "timed out", f"did not return within {allowed:g} s")
            )
            raise HookTimeout(name, allowed) from None
        except Exception as exc:
            self.incidents.append(
                HookIncident(name, "raised", f"{type(exc).__name__}: {exc}", _where(exc))
            )
            raise HookFailed(name, exc) from exc

    def call_blocking(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """:meth:`call` from code that is not on an event loop (a setting, a client factory).

        A cell's code runs inside the kernel's loop, so this gets a thread of its own.
        """
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = asyncio.run(self.call(name, fn, *args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                outcome["error"] = exc

        thread = threading.Thread(target=run, name=f"lab-hook-call-{name}", daemon=True)
        thread.start()
        thread.join(self.allowed() * 2 + 5)
        if "error" in outcome:
            raise outcome["error"]
        if "value" not in outcome:  # pragma: no cover - call() has its own deadline
            raise HookTimeout(name, self.allowed())
        return outcome["value"]

    def _abandon(self, name: str, thread: threading.Thread, inner: dict[str, Any]) -> None:
        task, hook_loop = inner.get("task"), inner.get("loop")
        if task is not None and hook_loop is not None and not hook_loop.is_closed():
            # RuntimeError: the loop closed meanwhile, so the hook finished after all.
            with contextlib.suppress(RuntimeError):
                hook_loop.call_soon_threadsafe(task.cancel)
        # Also into the thread: a busy `async def` never awaits, so never sees the cancel.
        _interrupt(thread)
        self.abandoned.append(Lingering(name, thread, time.monotonic()))


def _interrupt(thread: threading.Thread) -> None:
    """Raise _Abandoned inside a thread at its next Python bytecode (not inside a C call)."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(_Abandoned)
        )


def left_behind() -> list[Lingering]:
    """Lingering hooks of stopped labs in this kernel that still run."""
    _left_behind[:] = [item for item in _left_behind if item.thread.is_alive()]
    return list(_left_behind)


_NOT_LEARNER = (
    str(Path(__file__).resolve().parents[1]),  # labapp itself: the engine and the lessons
    sysconfig.get_paths()["stdlib"],
    sysconfig.get_paths()["purelib"],
)


def _where(exc: BaseException) -> str:
    """The deepest line of the learner's own code in the traceback, for the report."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if not frame.filename.startswith(_NOT_LEARNER):
            return f"line {frame.lineno}: {frame.line}" if frame.line else f"line {frame.lineno}"
    return ""


def check_signature(name: str, fn: Any, params: tuple[str, ...]) -> str | None:
    """Return why ``fn`` cannot be called as ``name(*params)``, or None if it can."""
    if not callable(fn):
        return f"{name} must be a function, not {type(fn).__name__}"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # a builtin without a signature: let the call decide
    try:
        signature.bind(*params)
    except TypeError:
        wanted = ", ".join(params)
        return f"{name} must accept ({wanted}); yours accepts {signature}"
    return None
