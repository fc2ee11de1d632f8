"""Per-lab secret flags.

A flag is ``FLAG{<lesson>:<name>:<mac>}`` where ``mac`` is an HMAC over the lesson and name
under a key drawn fresh from ``secrets`` at every lab start. No flag can be hard-coded in a
notebook: the only way to hold the current lab's flag is to make the lab reveal it, which
only a working exploit does.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from labapp.engine.errors import UnknownExercise, WrongFlag

_FLAG = re.compile(r"FLAG\{(?P<lesson>[\w.-]+):(?P<name>[\w.-]+):(?P<mac>[0-9a-f]{32})\}")
# Keys of labs that have been stopped in this kernel, to recognise a stale flag.
_retired_keys: list[bytes] = []


class FlagBook:
    """The flags of one lab start."""

    def __init__(self, lesson: str, names: Iterable[str]) -> None:
        self.lesson = lesson
        self.names = tuple(names)
        self._key = secrets.token_bytes(32)

    def _mac(self, name: str, key: bytes | None = None) -> str:
        message = f"{self.lesson}:{name}".encode()
        return hmac.new(key or self._key, message, hashlib.sha256).hexdigest()[:32]

    def flag(self, name: str) -> str:
        """The flag for exercise ``name``; lesson code calls this only on a working exploit."""
        self._known(name)
        return f"FLAG{{{self.lesson}:{name}:{self._mac(name)}}}"

    def all_flags(self) -> list[str]:
        """Every flag value, so the store can keep them out of the audit log."""
        return [self.flag(name) for name in self.names]

    def retire(self) -> None:
        _retired_keys.append(self._key)
        del _retired_keys[:-50]

    def _known(self, name: str) -> None:
        if name not in self.names:
            valid = ", ".join(repr(n) for n in self.names) or "(this lesson has no flags)"
            raise UnknownExercise(f"lesson {self.lesson} has no flag named {name!r}; try {valid}")

    def check(self, name: str, value: object) -> None:
        """Raise :class:`WrongFlag` explaining what is wrong; never reveal the right flag."""
        self._known(name)
        if not isinstance(value, str):
            raise WrongFlag(
                f"a flag is a string like 'FLAG{{{self.lesson}:{name}:…}}', "
                f"not {type(value).__name__}; copy it from the server's response"
            )
        match = _FLAG.fullmatch(value.strip())
        if match is None:
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise WrongFlag(
                f"{shown!r} is not a flag: flags look like "
                f"'FLAG{{{self.lesson}:{name}:<32 hex>}}'. "
                "Did you copy the whole thing, braces included?"
            )
        lesson, got_name, mac = match["lesson"], match["name"], match["mac"]
        if lesson != self.lesson:
            raise WrongFlag(f"that flag belongs to lesson {lesson}, not {self.lesson}")
        if got_name != name:
            raise WrongFlag(f"that is the flag of exercise {got_name!r}; this cell checks {name!r}")
        if hmac.compare_digest(mac, self._mac(name)):
            return
        if any(hmac.compare_digest(mac, self._mac(name, key)) for key in _retired_keys):
            raise WrongFlag(
                "that flag is from an earlier start of this lab. Flags are fresh every time "
                "the lab starts: run your attack again against the current lab"
            )
        raise WrongFlag(
            f"that is not the flag of {name!r} for this lab: it was altered, or it came from "
            "another kernel. Run your attack again against the current lab"
        )
