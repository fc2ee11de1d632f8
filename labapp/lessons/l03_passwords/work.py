"""Count the work a login does, instead of timing it.

"Unknown users cost the same as real ones" is a property of *work*: the same argon2
computations, at the same parameters. A row that reads the clock to judge it fails correct
code on a busy machine (and passes wrong code on a quiet one); counting is exact whatever
the load. While a row runs, :func:`counting` tallies every argon2 computation (a hash or a
verify, through ``PasswordHasher`` or ``argon2.low_level``) with the memory, passes and
lanes that set its cost, and every ``hmac.compare_digest`` call.

The counters wrap the real functions (the work is still done, by the library) where they
are looked up at call time: argon2-cffi's own modules, ``hmac`` and ``secrets``, and the
globals of the learner's hooks (for a ``from argon2.low_level import verify_secret``). Every
name is put back when the row ends.
"""

from __future__ import annotations

import contextlib
import hmac
import inspect
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import argon2
from argon2 import _legacy, _password_hasher, extract_parameters, low_level
from argon2.exceptions import InvalidHashError

Cost = tuple[int, int, int]  # (memory KiB, passes, lanes): what one argon2 computation costs


@dataclass(frozen=True)
class Work:
    """What one request did: its argon2 computations (sorted costs) and constant-time compares."""

    argon2: tuple[Cost, ...] = ()
    compares: int = 0

    def describe(self) -> str:
        if not self.argon2:
            return "no argon2 computation"
        each = [f"argon2 (m={m} KiB, t={t}, p={p})" for m, t, p in self.argon2]
        return " + ".join(each)


@dataclass
class Tally:
    """Everything counted since the row began; ``mark()``/``since()`` cut it per request."""

    costs: list[Cost] = field(default_factory=list)
    compares: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, cost: Cost | None = None, compare: bool = False) -> None:
        with self.lock:
            if cost is not None:
                self.costs.append(cost)
            self.compares += compare

    def mark(self) -> tuple[int, int]:
        with self.lock:
            return len(self.costs), self.compares

    def since(self, mark: tuple[int, int]) -> Work:
        """The work done since ``mark`` (the row sends one request at a time)."""
        with self.lock:
            return Work(tuple(sorted(self.costs[mark[0] :])), self.compares - mark[1])


def _cost_of(encoded: Any) -> Cost | None:
    """The cost an encoded argon2 hash records, or None when it is not one (no work done)."""
    try:
        text = encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)
        p = extract_parameters(text)
    except (InvalidHashError, UnicodeDecodeError, ValueError):
        return None
    return p.memory_cost, p.time_cost, p.parallelism


def _counters(tally: Tally) -> dict[int, tuple[Any, Callable[..., Any]]]:
    """id(real function) -> (real function, a counting wrapper that calls it)."""
    verify = low_level.verify_secret
    hashers = (low_level.hash_secret, low_level.hash_secret_raw)
    compare = hmac.compare_digest

    def counted_verify(*args: Any, **kwargs: Any) -> Any:
        try:
            return verify(*args, **kwargs)
        finally:  # a mismatch raises after the work is done
            encoded = args[0] if args else kwargs.get("hash")
            tally.add(_cost_of(encoded))

    def counted_hash(real: Callable[..., Any]) -> Callable[..., Any]:
        params = inspect.signature(real)

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            bound = params.bind(*args, **kwargs).arguments
            tally.add((bound["memory_cost"], bound["time_cost"], bound["parallelism"]))
            return result

        return counted

    def counted_compare(a: Any, b: Any) -> bool:
        tally.add(compare=True)
        return compare(a, b)

    found: dict[int, tuple[Any, Callable[..., Any]]] = {id(verify): (verify, counted_verify)}
    found.update({id(real): (real, counted_hash(real)) for real in hashers})
    found[id(compare)] = (compare, counted_compare)
    return found


def _globals_of(hook: Any) -> dict[str, Any] | None:
    """The module namespace a learner's function looks its names up in."""
    for attribute in ("func", "__func__", "__wrapped__"):  # partial, bound method, decorated
        hook = getattr(hook, attribute, hook)
    found = getattr(hook, "__globals__", None)
    return found if isinstance(found, dict) else None


@contextlib.contextmanager
def counting(hooks: Iterable[Any] = ()) -> Iterator[Tally]:
    """Count argon2 work and constant-time compares while the block runs."""
    tally = Tally()
    counters = _counters(tally)
    spaces = [vars(m) for m in (low_level, _password_hasher, _legacy, argon2, hmac, secrets)]
    spaces += [g for g in map(_globals_of, hooks) if g is not None]
    swapped: list[tuple[dict[str, Any], str, Any, Any]] = []
    for space in {id(s): s for s in spaces}.values():
        for name, value in list(space.items()):
            if callable(value) and id(value) in counters and counters[id(value)][0] is value:
                space[name] = counters[id(value)][1]
                swapped.append((space, name, value, space[name]))
    try:
        yield tally
    finally:
        for space, name, real, wrapper in swapped:
            if space.get(name) is wrapper:  # unless someone rebound it meanwhile
                space[name] = real
