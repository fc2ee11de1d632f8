"""One running lab per lesson per kernel, and all of them stopped at exit.

Without it, re-running a notebook's setup cell twenty times left twenty servers (and
eighty file descriptors) alive.
"""

from __future__ import annotations

import atexit
import threading
from typing import Protocol


class Stoppable(Protocol):
    def stop(self) -> None: ...


_running: dict[str, Stoppable] = {}
_lock = threading.Lock()


def take(lesson_id: str) -> Stoppable | None:
    """Remove and return the running lab of a lesson (the caller stops it)."""
    with _lock:
        return _running.pop(lesson_id, None)


def put(lesson_id: str, lab: Stoppable) -> None:
    with _lock:
        _running[lesson_id] = lab


def forget(lesson_id: str, lab: Stoppable) -> None:
    """A lab that stopped leaves the registry, unless a newer lab took its place."""
    with _lock:
        if _running.get(lesson_id) is lab:
            del _running[lesson_id]


def running() -> dict[str, Stoppable]:
    with _lock:
        return dict(_running)


def stop_all() -> None:
    """Stop every lab this kernel started (also runs at interpreter exit)."""
    for lab in running().values():
        lab.stop()


atexit.register(stop_all)
