"""Read a Strict-Transport-Security value as a browser does (RFC 6797 §6.1).

A browser that cannot parse the header ignores all of it (§6.1: a header that does not
conform to the syntax is ignored), so "max-age=31536000, includeSubDomains" protects no
one, however close it looks. The grader therefore parses, rather than searching for
"max-age" somewhere in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # an RFC 9110 token
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_DIRECTIVE = re.compile(rf"[ \t]*(?:({_NAME})[ \t]*(?:=[ \t]*({_NAME}|{_QUOTED}))?)?[ \t]*")


@dataclass(frozen=True)
class HSTS:
    """What a browser takes from the header: the policy, or why it ignores the header."""

    max_age: int = 0
    include_subdomains: bool = False
    problem: str = ""  # non-empty: the browser ignores the whole header


def parse_hsts(value: str) -> HSTS:
    """``directive *( ";" directive )``, each at most once; max-age is digits (§6.1.1)."""
    directives: dict[str, str | None] = {}
    position = 0
    while True:
        found = _DIRECTIVE.match(value, position)
        assert found is not None  # every part of the pattern is optional
        name, raw = found.group(1), found.group(2)
        position = found.end()
        if name:
            key = name.lower()  # directive names are case-insensitive (§6.1)
            if key in directives:
                return HSTS(problem=f"the directive {name!r} appears twice (§6.1)")
            directives[key] = raw[1:-1] if raw and raw.startswith('"') else raw
        if position == len(value):
            break
        if value[position] != ";":
            rest = value[position : position + 20]
            return HSTS(problem=f"directives are separated by ';' (§6.1), found {rest!r}")
        position += 1
    if "max-age" not in directives:
        return HSTS(problem="no max-age directive (it is required, §6.1.1)")
    age = directives["max-age"] or ""
    if not (age.isascii() and age.isdigit()):
        return HSTS(problem=f"max-age={age!r}: seconds, in digits only (§6.1.1)")
    if "includesubdomains" in directives and directives["includesubdomains"] is not None:
        return HSTS(problem="includeSubDomains takes no value (§6.1.2)")
    return HSTS(int(age), "includesubdomains" in directives)
