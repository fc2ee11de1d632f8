"""The trusted-header attack: spoof whatever headers the learner's ``authorize`` reads.

A list of "internal" headers the grader knows by name would pass a gate that trusts one it
has never heard of (``X-Shop-Staff: yes``). So the attack asks the gate itself: each
privileged request is first sent plain, noting which header fields the hook looked up
(``headers.HeaderReads``); a request the gate denied is then sent again with those fields
set to values the hook might be waiting for: the strings it compared them with, the string
constants in its own code, and the usual suspects (``true``, ``127.0.0.1``, ``admin``...).
A spoof that turns the denial into an answer is a breach. Every field but the bearer
``Authorization`` (verified by ``req.identify()``) is written by the client, so any of them
deciding is a hole (OWASP ASVS 5.0 15.3.4; OWASP API2:2023).
"""

from __future__ import annotations

import contextlib
import re
import sysconfig
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from labapp.engine.grading import Observed
from labapp.lessons.l01_unprotected.headers import EVERY_FIELD, FIELD_NAMES, HeaderReads

# For a hook that reads the whole mapping: the names such a hook is likely to look for.
NAMES = (
    "x-internal",
    "x-internal-call",
    "x-forwarded-for",
    "x-real-ip",
    "x-client-ip",
    "x-originating-ip",
    "true-client-ip",
    "forwarded",
    "x-user",
    "x-username",
    "x-user-id",
    "x-remote-user",
    "x-forwarded-user",
    "x-authenticated-user",
    "x-role",
    "x-user-role",
    "x-roles",
    "x-admin",
    "x-service",
    "x-debug",
    "x-original-url",
    "x-rewrite-url",
)
# Values a trusting gate tends to look for.
VALUES = (
    "true",
    "1",
    "yes",
    "True",
    "127.0.0.1",
    "10.0.0.1",
    "::1",
    "localhost",
    "admin",
    "service",
    "internal",
    "carol",
    "svc-frontend",
    "for=127.0.0.1",
    "/health",
    "99",
    "999999999",
    '{"role": "admin", "admin": true, "user": "carol", "internal": true}',
    "eyJyb2xlIjogImFkbWluIiwgImFkbWluIjogdHJ1ZSwgInVzZXIiOiAiY2Fyb2wifQ==",  # that, base64
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjYXJvbCIsInJvbGUiOiJhZG1pbiJ9.",  # as an unsigned JWT
)
# Fields every client sends unasked: a gate may trust their *absence* ("no User-Agent: our
# own cron job"), so the grader also leaves them out.
SENT_BY_DEFAULT = {"user-agent", "accept", "accept-encoding"}
Spoof = dict[str, str | None]  # field -> value to send, or None to leave the field out
# Fields that frame the message itself (or carry the bearer credential of the scenario).
NOT_SPOOFED = {
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")  # a field name (RFC 9110 §5.6.2)
ROUNDS = 4
_LIBRARIES = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)  # each round may reveal fields read only when another field is present


@dataclass
class Scenario:
    """A privileged request: who sends it, where, and whether identity is down meanwhile."""

    method: str
    route: str
    who: str
    headers: dict[str, str]
    outage: bool = False
    fields: set[str] = field(default_factory=set)  # what the hook read while judging it
    tried: set[frozenset[tuple[str, str]]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return self.route.replace("{order_id}", "1").replace("{product_id}", "1")

    @property
    def kind(self) -> tuple[bool, bool, str]:
        """Scenarios a gate is likely to judge alike (for the long list of guesses): with or
        without a token, during an outage or not, and the route's role prefix."""
        prefix = next((p for p in ("/admin/", "/internal/") if self.route.startswith(p)), "")
        token = any(name.lower() == "authorization" for name in self.headers)
        return (token, self.outage, prefix)


def guess(name: str) -> str:
    """The privileged-looking value a field with this name most likely carries."""
    parts = set(name.split("-"))
    if name == "authorization":
        return "Bearer admin"
    if name == "forwarded":
        return "for=127.0.0.1"
    if name == "cookie":
        return "role=admin; user=carol; internal=true; admin=1"
    if parts & {"role", "roles", "scope", "scopes", "group", "groups", "permissions"}:
        return "admin"
    if parts & {"user", "username", "userid", "uid", "sub", "actor", "as", "impersonate"}:
        return "carol"
    if parts & {"for", "ip", "addr", "address", "host", "client"}:
        return "127.0.0.1"
    if parts & {"url", "uri", "path"}:
        return "/health"
    return "true"


def sendable(value: object) -> bool:
    """A value httpx can send as a header field as it is (printable ASCII, not too long)."""
    return (
        isinstance(value, str) and 0 < len(value) <= 120 and value.isascii() and value.isprintable()
    )


def _sendable_forms(targets: Iterable[str]) -> list[str]:
    """Learned targets as values that survive the trip: HTTP strips a value's outer spaces
    (RFC 9110 §5.5), so a prefix such as "Internal " is sent as "Internal x"."""
    found: list[str] = []
    for target in targets:
        if target and target != target.strip():
            target = ("x" if target[0].isspace() else "") + target
            target += "x" if target[-1].isspace() else ""
        if sendable(target) and target not in found:
            found.append(target)
    return found


def learner_strings(hook: Callable[..., Any], limit: int = 40) -> list[str]:
    """String constants in the hook's code, the functions it calls and the globals it names.

    A gate that waits for ``X-Key: k3y-2024`` or tests ``in {"staff", "ops"}`` compares with
    strings the grader cannot guess, but they are written in the learner's own code. Nearest
    first (the hook's own constants before those of the functions it calls); the course's
    code and the libraries' are not the learner's.
    """
    found: list[str] = []
    seen: set[int] = set()
    queue: deque[tuple[Any, int]] = deque([(hook, 0)])
    while queue and len(found) < limit:
        obj, depth = queue.popleft()
        if depth > 6 or id(obj) in seen:
            continue
        seen.add(id(obj))
        inner: list[Any] = []
        if type(obj) is bytes:  # value.encode() == b"..." compares with bytes
            obj = obj.decode("ascii", "replace")
        elif type(obj) is int and -(10**18) < obj < 10**18:  # int(value) in {3, 7}
            obj = str(obj)
        if type(obj) is str:
            if sendable(obj) and obj not in found:
                found.append(obj)
        elif isinstance(obj, (tuple, list, set, frozenset)):
            inner = list(obj)[:200]
        elif isinstance(obj, dict):
            inner = [item for pair in list(obj.items())[:200] for item in pair]
        elif isinstance(obj, types.CodeType):
            inner = list(obj.co_consts)
        elif isinstance(obj, types.MethodType):
            inner = [obj.__func__]
        elif isinstance(obj, partial):
            inner = [obj.func, obj.args, obj.keywords]
        elif isinstance(obj, types.FunctionType) and not _not_learners(obj):
            inner = [obj.__code__, obj.__defaults__, obj.__kwdefaults__]
            for cell in obj.__closure__ or ():
                with contextlib.suppress(ValueError):  # an empty cell
                    inner.append(cell.cell_contents)
            inner += [obj.__globals__[n] for n in _names(obj.__code__) if n in obj.__globals__]
        queue.extend((item, depth + 1) for item in inner)
    return found


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def spoofs(
    scenario: Scenario, reads: HeaderReads, extra: list[str], *, thorough: bool
) -> list[Spoof]:
    """Header sets to try on one scenario: first the likeliest, then (``thorough``) the rest."""
    fields = {f for f in scenario.fields if f not in NOT_SPOOFED and _TOKEN.fullmatch(f)}
    fields.discard(EVERY_FIELD)
    fields -= {name.lower() for name in scenario.headers}  # its own bearer token stays
    if EVERY_FIELD in scenario.fields:
        names = [*NAMES, *reads.targets.get(FIELD_NAMES, ()), *extra]
        fields |= {n.lower() for n in names if "-" in n and _TOKEN.fullmatch(n.lower())}
        fields -= {name.lower() for name in scenario.headers} | NOT_SPOOFED | {EVERY_FIELD}
    if not fields:
        return []
    learned = {f: _sendable_forms(reads.targets.get(f, ())) for f in sorted(fields)}
    base = {f: (targets[0] if targets else guess(f)) for f, targets in learned.items()}
    found: list[Spoof] = [base]
    found += [{**base, f: t} for f, targets in learned.items() for t in targets]
    if thorough:
        found += [{f: None} for f in sorted(fields & SENT_BY_DEFAULT)]
        found += [{f: value for f in learned} for value in _sendable_forms((*VALUES, *extra))]
    return found


def search(
    scenarios: list[Scenario],
    send: Callable[[Scenario, Spoof], int],
    reads: HeaderReads,
    extra: list[str],
) -> Observed | None:
    """Replay denied scenarios with spoofed headers until one gets through (or none can).

    ``send`` sends a scenario with extra headers and returns the status, noting the fields
    the hook read into ``scenario.fields``. The likeliest spoofs go to every scenario; the
    long list of guesses to one scenario of each kind, to keep the grade fast.
    """
    for _ in range(ROUNDS):
        before = _knowledge(scenarios, reads)
        kinds: set[tuple[bool, bool, str]] = set()
        for scenario in scenarios:
            thorough = scenario.kind not in kinds and bool(scenario.fields)
            if thorough:
                kinds.add(scenario.kind)
            for headers in spoofs(scenario, reads, extra, thorough=thorough):
                key = frozenset(headers.items())
                if key in scenario.tried:
                    continue
                scenario.tried.add(key)
                status = send(scenario, headers)
                if status not in (401, 403):
                    headers, status = _fewest(scenario, headers, status, send)
                    detail = (
                        f"{scenario.method} {scenario.url} {scenario.who}"
                        f"{' during the identity outage' if scenario.outage else ''}, "
                        f"{_shown(headers)} (refused otherwise)"
                    )
                    return Observed(True, status, detail)
        if _knowledge(scenarios, reads) == before:
            return None
    return None


def _shown(headers: Spoof) -> str:
    sent = ", ".join(f"{k}: {v}" for k, v in headers.items() if v is not None)
    left_out = ", ".join(k for k, v in headers.items() if v is None)
    parts = [f"with {sent}" if sent else "", f"without {left_out}" if left_out else ""]
    return " and ".join(part for part in parts if part)


def _fewest(
    scenario: Scenario, headers: Spoof, status: int, send: Callable[[Scenario, Spoof], int]
) -> tuple[Spoof, int]:
    """Drop the spoofed fields that were not needed, so the report names the one that was."""
    if status >= 500 or len(headers) == 1:
        return headers, status
    for name in list(headers):
        fewer = {k: v for k, v in headers.items() if k != name}
        if fewer:
            again = send(scenario, fewer)
            if again not in (401, 403) and again < 500:
                headers, status = fewer, again
    return headers, status


def _knowledge(scenarios: list[Scenario], reads: HeaderReads) -> tuple[Any, ...]:
    fields = tuple(frozenset(s.fields) for s in scenarios)
    return fields, tuple(sorted((k, len(v)) for k, v in reads.targets.items()))


def _not_learners(function: types.FunctionType) -> bool:
    """The course's own code (the weak default, the engine) and the libraries' hold none of
    the learner's strings (their error messages would only crowd the learner's out)."""
    if (function.__module__ or "").startswith("labapp."):
        return True
    return function.__code__.co_filename.startswith(_LIBRARIES)
