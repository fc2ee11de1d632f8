"""Run learner code inside the lab server, with a deadline.

A learner's hook runs off the server's event loop, in a daemon thread of its own, so that:

- one that raises becomes a 500 whose report row names the learner's exception;
- one that hangs (``while True``, ``time.sleep(60)``, an ``async def`` that blocks) becomes a
  504 after the deadline, and the server, the grader and ``stop()`` carry on.

Python cannot kill a thread. On a deadline we cancel an async hook's task and raise an
exception *inside* a sync hook's thread (which ends a pure-Python loop at once); a hook
stuck in a C call (``time.sleep``) finishes on its own, in a daemon thread that cannot
block the kernel from exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import inspect
import sysconfig
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class Guard:
    """Calls hooks with a deadline and remembers what went wrong, for the report."""

    deadline: float = DEFAULT_DEADLINE
    incidents: list[HookIncident] = field(default_factory=list)
    # While grading, a hook that hung once is not waited for again: the verdict is already
    # known, and thirty one-second waits would make the grader look hung too.
    grading: bool = False
    hung: set[str] = field(default_factory=set)

    @contextlib.contextmanager
    def grading_run(self) -> Iterator[None]:
        self.grading, self.hung = True, set()
        try:
            yield
        finally:
            self.grading, self.hung = False, set()

    def bad_result(self, hook: str, problem: str) -> HookFailed:
        """A hook returned something the server cannot use: record it, return the error."""
        error = TypeError(problem)
        self.incidents.append(HookIncident(hook, "returned", problem))
        return HookFailed(hook, error)

    async def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        if name in self.hung:
            self.incidents.append(HookIncident(name, "timed out", "hung earlier in this run"))
            raise HookTimeout(name, self.deadline)
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

        def run() -> None:
            try:
                if inspect.iscoroutinefunction(fn):
                    # Its own loop, so a blocking call inside `async def` cannot freeze ours.
                    hook_loop = asyncio.new_event_loop()
                    inner["loop"] = hook_loop
                    try:
                        task = hook_loop.create_task(fn(*args))
                        inner["task"] = task
                        result = hook_loop.run_until_complete(task)
                    finally:
                        hook_loop.close()
                else:
                    result = fn(*args)
                report(True, result)
            except _Abandoned:
                pass
            except asyncio.CancelledError:
                pass
            except BaseException as exc:  # noqa: BLE001 - learner code may raise anything
                if not isinstance(exc, Exception):  # SystemExit and friends: keep them here
                    exc = RuntimeError(f"{type(exc).__name__}({exc})")
                report(False, exc)

        # The request's context (contextvars) goes along: lessons may keep per-request facts there.
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(run,), name=f"lab-hook-{name}", daemon=True
        )
        thread.start()
        try:
            return await asyncio.wait_for(asyncio.shield(done), self.deadline)
        except asyncio.TimeoutError:
            self._abandon(thread, inner)
            if self.grading:
                self.hung.add(name)
            self.incidents.append(
                HookIncident(name, "timed out", f"did not return within {self.deadline:g} s")
            )
            raise HookTimeout(name, self.deadline) from None
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
        thread.join(self.deadline + 5)
        if "error" in outcome:
            raise outcome["error"]
        if "value" not in outcome:  # pragma: no cover - call() has its own deadline
            raise HookTimeout(name, self.deadline)
        return outcome["value"]

    @staticmethod
    def _abandon(thread: threading.Thread, inner: dict[str, Any]) -> None:
        task, hook_loop = inner.get("task"), inner.get("loop")
        if task is not None and hook_loop is not None and not hook_loop.is_closed():
            # RuntimeError: the loop closed meanwhile, so the hook finished after all.
            with contextlib.suppress(RuntimeError):
                hook_loop.call_soon_threadsafe(task.cancel)
        elif thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread.ident), ctypes.py_object(_Abandoned)
            )


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
