"""The headers an ``authorize`` hook sees, and a note of what it looked at among them.

Every header but the bearer ``Authorization`` (which ``req.identify()`` verifies) is a claim
the client writes. To test a defense against *every* such header, not only those the grader
knows by name, the grader must learn which ones the learner's hook reads and what it
compares them with; then it sends those headers with the values the hook was looking for.
While the grader runs, the hook's ``req.headers`` notes each field name looked up (``get``,
``[]``, ``in``), a read of the whole mapping (iteration, ``len``, ``dict()``, ``repr``), and
each string a value was compared with (``==``, ``startswith``, ``in``...). Outside grading it
is a plain, case-insensitive, read-only mapping of plain strings.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

EVERY_FIELD = "*"  # the whole mapping was read: any header at all may matter
FIELD_NAMES = ""  # comparisons made with field *names* (found while iterating)


class HeaderReads:
    """What the hook looked at, in order, for one lab (the grader reads it between requests)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.active = False  # noted only while the grader watches: see watching()
        self.fields: list[str] = []  # every name looked up, lower-case, in order
        self.targets: dict[str, list[str]] = {}  # field -> strings its value was compared with

    @contextlib.contextmanager
    def watching(self) -> Iterator[HeaderReads]:
        """Note what the hook reads from now until the block ends (and start afresh)."""
        with self._lock:
            self.fields, self.targets, self.active = [], {}, True
        try:
            yield self
        finally:
            self.active = False

    def looked_up(self, name: str) -> None:
        with self._lock:
            self.fields.append(str.lower(name))  # a plain str: a Traced one would note itself

    def compared(self, name: str, target: object) -> None:
        found = target if isinstance(target, tuple) else (target,)
        with self._lock:
            seen = self.targets.setdefault(name, [])
            for item in found:
                # A header compared with another header teaches nothing.
                if type(item) is str and item not in seen and len(seen) < 50:
                    seen.append(item)

    def since(self, mark: int) -> set[str]:
        """The field names looked up after ``mark`` (a length of ``fields`` taken before)."""
        with self._lock:
            return set(self.fields[mark:])


class Traced(str):
    """A header value (or name) that notes what the hook compares it with."""

    _name: str
    _reads: HeaderReads

    def __new__(cls, value: str, name: str, reads: HeaderReads) -> Traced:
        traced = super().__new__(cls, value)
        traced._name, traced._reads = name, reads
        return traced

    def _keep(self, value: Any) -> Any:
        return Traced(value, self._name, self._reads) if type(value) is str else value

    def __eq__(self, other: object) -> bool:
        self._reads.compared(self._name, other)
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        self._reads.compared(self._name, other)
        return str.__ne__(self, other)

    __hash__ = str.__hash__

    def __contains__(self, part: object) -> bool:
        self._reads.compared(self._name, part)
        return str.__contains__(self, part)  # type: ignore[operator]

    def startswith(self, prefix: Any, *args: Any) -> bool:
        self._reads.compared(self._name, prefix)
        return str.startswith(self, prefix, *args)

    def endswith(self, suffix: Any, *args: Any) -> bool:
        self._reads.compared(self._name, suffix)
        return str.endswith(self, suffix, *args)

    def find(self, part: Any, *args: Any) -> int:
        self._reads.compared(self._name, part)
        return str.find(self, part, *args)

    def count(self, part: Any, *args: Any) -> int:
        self._reads.compared(self._name, part)
        return str.count(self, part, *args)

    # What a hook does to a value before comparing it keeps the value traced.
    def lower(self) -> str:
        return self._keep(str.lower(self))

    def upper(self) -> str:
        return self._keep(str.upper(self))

    def casefold(self) -> str:
        return self._keep(str.casefold(self))

    def strip(self, chars: str | None = None) -> str:
        return self._keep(str.strip(self, chars))

    def lstrip(self, chars: str | None = None) -> str:
        return self._keep(str.lstrip(self, chars))

    def rstrip(self, chars: str | None = None) -> str:
        return self._keep(str.rstrip(self, chars))

    def removeprefix(self, prefix: str) -> str:
        self._reads.compared(self._name, prefix)
        return self._keep(str.removeprefix(self, prefix))

    def removesuffix(self, suffix: str) -> str:
        self._reads.compared(self._name, suffix)
        return self._keep(str.removesuffix(self, suffix))

    def __getitem__(self, index: Any) -> str:
        return self._keep(str.__getitem__(self, index))

    def split(self, sep: str | None = None, maxsplit: int = -1) -> list[str]:
        return [self._keep(part) for part in str.split(self, sep, maxsplit)]

    def rsplit(self, sep: str | None = None, maxsplit: int = -1) -> list[str]:
        return [self._keep(part) for part in str.rsplit(self, sep, maxsplit)]

    def partition(self, sep: str) -> tuple[str, str, str]:
        return tuple(self._keep(part) for part in str.partition(self, sep))  # type: ignore[return-value]

    def rpartition(self, sep: str) -> tuple[str, str, str]:
        return tuple(self._keep(part) for part in str.rpartition(self, sep))  # type: ignore[return-value]

    def __repr__(self) -> str:
        return str.__repr__(self)

    def __reduce__(self) -> tuple[Any, ...]:  # a copy (or a pickle) is a plain str
        return (str, (str.__str__(self),))


class WatchedHeaders(Mapping[str, str]):
    """Request headers for a hook: case-insensitive (RFC 9110 §5.1), read-only, watched.

    A field sent more than once arrives as one value joined with ", " (RFC 9110 §5.3), as a
    proxy would combine it. With ``reads`` (while grading), lookups and comparisons are noted.
    """

    def __init__(self, raw: Iterable[tuple[str, str]], reads: HeaderReads | None = None) -> None:
        fields: dict[str, str] = {}
        for name, value in raw:
            name = name.lower()
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
        self._fields = fields
        self._reads = reads

    def _note(self, name: str) -> None:
        if self._reads is not None:
            self._reads.looked_up(name)

    def __getitem__(self, name: str) -> str:
        key = str.lower(name) if isinstance(name, str) else name  # plain, even from a Traced
        if isinstance(key, str):
            self._note(key)
        value = self._fields[key]  # KeyError for an absent field, as a dict would
        return value if self._reads is None else Traced(value, key, self._reads)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = str.lower(name)
        self._note(key)
        return key in self._fields

    def __iter__(self) -> Iterator[str]:
        self._note(EVERY_FIELD)
        for name in list(self._fields):
            yield name if self._reads is None else Traced(name, FIELD_NAMES, self._reads)

    def __len__(self) -> int:
        self._note(EVERY_FIELD)
        return len(self._fields)

    def __repr__(self) -> str:
        self._note(EVERY_FIELD)
        return repr(self._fields)

    def __copy__(self) -> WatchedHeaders:  # read-only: a copy may be the same object
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> WatchedHeaders:
        self._note(EVERY_FIELD)
        return WatchedHeaders(self._fields.items())  # a plain copy, unwatched
