"""What a learner's hook prints: kept aside while it runs, shown capped when it returns.

A ``print`` in a hook runs on the server's thread, thousands of times in one grade. Written
straight to the notebook it floods the grader's cell and, worse, the time spent writing
counts against the hook's deadline. So while a hook runs, its thread's writes go to a
buffer that keeps the first :data:`PER_CALL` characters and only counts the rest; the guard
shows the buffer after the call, within a budget per grade (:data:`PER_GRADE`), and says
how much it left out.

``sys.stdout`` and ``sys.stderr`` are swapped for a thread-aware stream only while some
hook runs, and put back when the last one ends (unless someone else replaced them since).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

PER_CALL = 2_000  # characters of one call's output shown
PER_GRADE = 20_000  # characters of all hooks' output shown during one grade()


class Buffer:
    """The first ``limit`` characters written, and a count of the rest."""

    def __init__(self, limit: int = PER_CALL) -> None:
        self.limit, self.parts, self.kept, self.dropped = limit, [], 0, 0

    def write(self, text: str) -> None:
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))

    @property
    def text(self) -> str:
        return "".join(self.parts)


_local = threading.local()
_lock = threading.Lock()
_active = 0
_saved: dict[str, TextIO] = {}


class _Stream:
    """Stands in for sys.stdout/stderr: a hook thread's writes go to its buffer."""

    def __init__(self, original: TextIO) -> None:
        self._original = original

    def write(self, text: str) -> int:
        buffer = getattr(_local, "buffer", None)
        if buffer is None:
            return self._original.write(text)
        buffer.write(str(text))
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "buffer", None) is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def _swap_in() -> None:
    global _active
    with _lock:
        _active += 1
        if _active == 1:
            for name in ("stdout", "stderr"):
                current = getattr(sys, name)
                _saved[name] = current
                setattr(sys, name, _Stream(current))


def _swap_out() -> None:
    global _active
    with _lock:
        _active -= 1
        if _active == 0:
            for name, original in _saved.items():
                if isinstance(getattr(sys, name), _Stream):  # else someone replaced it since
                    setattr(sys, name, original)
            _saved.clear()


@contextlib.contextmanager
def captured(limit: int = PER_CALL) -> Iterator[Buffer]:
    """Within this block, what *this thread* prints goes to the returned buffer."""
    buffer = Buffer(limit)
    _swap_in()
    _local.buffer = buffer
    try:
        yield buffer
    finally:
        _local.buffer = None
        _swap_out()
