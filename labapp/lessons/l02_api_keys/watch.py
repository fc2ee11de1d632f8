"""See how a ``find_key`` reads the stored digest: only ``hmac.compare_digest`` may.

``==`` on strings stops at the first differing character, and so does a hand-written loop:
the time then says how much of the value matched (CWE-208). Over loopback that is
nanoseconds, far below what a grader can time, so the grader looks instead. It hands the
learner's ``find_key`` records whose ``stored`` value is a :class:`Watched` string: equal to
the real digest, but every Python-level way of comparing or reading it (``==``, ``!=``,
``in``, iterating, indexing, slicing, ``.encode()`` then ``==``...) is written down.
``hmac.compare_digest`` reads the characters in C and calls none of them.
"""

from __future__ import annotations

from typing import Any, Protocol


class Lookups(Protocol):
    def by_id(self, key_id: str) -> dict[str, Any] | None: ...

    def all(self) -> list[dict[str, Any]]: ...


def _noting(name: str, base: type, *, read: bool) -> Any:
    """``base.name``, noted when it reads the value; a copy it returns stays watched."""
    method = getattr(base, name)

    def noted(self: Any, *args: Any) -> Any:
        if read:
            self.uses.append(name)
        result = method(self, *args)
        if isinstance(result, bytes) and not isinstance(result, WatchedBytes):
            return WatchedBytes(result, self.uses)
        if isinstance(result, str) and not isinstance(result, Watched):
            return Watched(result, self.uses)
        return result

    noted.__name__ = name
    return noted


# The reads that compare or walk the value in Python; ``len()`` and ``bool()`` reveal
# nothing about where two digests differ, and compare_digest itself calls none of these.
_READS = (
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__iter__", "__getitem__",
    "__contains__", "startswith", "endswith", "find", "index", "count",
)  # fmt: skip
_COPIES = ("encode", "lower", "upper", "strip", "casefold", "__str__", "__format__")


class Watched(str):
    """A str that notes every comparison or character-by-character read made of it."""

    uses: list[str]

    def __new__(cls, value: str, uses: list[str]) -> Watched:
        self = super().__new__(cls, value)
        self.uses = uses
        return self

    __hash__ = str.__hash__


class WatchedBytes(bytes):
    """The same for bytes (a learner may ``.encode()`` the digest before comparing)."""

    uses: list[str]

    def __new__(cls, value: bytes, uses: list[str]) -> WatchedBytes:
        self = super().__new__(cls, value)
        self.uses = uses
        return self

    __hash__ = bytes.__hash__


for _name in _READS:
    setattr(Watched, _name, _noting(_name, str, read=True))
    setattr(WatchedBytes, _name, _noting(_name, bytes, read=True))
for _name in _COPIES:
    setattr(Watched, _name, _noting(_name, str, read=False))
for _name in ("decode", "hex", "lower", "upper", "strip"):
    setattr(WatchedBytes, _name, _noting(_name, bytes, read=False))


_SAID = {
    "__eq__": "==",
    "__ne__": "!=",
    "__iter__": "a loop over its characters",
    "__getitem__": "indexing or slicing",
    "__contains__": "`in`",
    "__lt__": "<",
    "__le__": "<=",
    "__gt__": ">",
    "__ge__": ">=",
}


def described(uses: list[str]) -> str:
    """The reads noted, in the words a learner wrote them with (``==``, a loop...)."""
    said = [_SAID.get(use, f".{use}()" if not use.startswith("__") else use) for use in uses]
    return ", ".join(dict.fromkeys(said))


class WatchedKeys:
    """A key store whose records carry a :class:`Watched` ``stored`` value."""

    def __init__(self, keys: Lookups) -> None:
        self._keys = keys
        self.uses: list[str] = []

    def _watch(self, record: dict[str, Any] | None) -> dict[str, Any] | None:
        if record is None:
            return None
        return {**record, "stored": Watched(record["stored"], self.uses)}

    def by_id(self, key_id: str) -> dict[str, Any] | None:
        return self._watch(self._keys.by_id(key_id))

    def all(self) -> list[dict[str, Any]]:
        return [self._watch(record) for record in self._keys.all()]  # type: ignore[misc]
