"""Attacks, legitimate checks, and the report a grader cell shows.

A defense passes only when every attack of the lesson is stopped *and* every legitimate
check still works, so a defense that denies everything fails. A 5xx is never a pass: a
server that crashes on an attack has not defended against it.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from labapp.engine.http import lab_client

if TYPE_CHECKING:
    from labapp.engine.lab import Lab


@dataclass(frozen=True)
class Observed:
    """What one attack or check saw: did the request get through, and with which status."""

    succeeded: bool
    status: int | None = None
    detail: str = ""
    # Why it failed, when the row's kind alone says the wrong thing: a legit check that fails
    # because a near miss of a password logged in has granted too much, not denied too much.
    cause: str = ""


@dataclass(frozen=True)
class Attack:
    """One attack of a lesson: it breaches the weak server and must fail against a defense.

    ``run`` performs the attack over real HTTP and returns ``Observed(succeeded=True)`` when
    it got through. ``hints`` help a learner perform it; ``fix`` tells a defender whose
    defense it breached what to change. ``flag`` says whether the lesson has a flag of the
    same name.
    """

    id: str
    description: str
    hints: tuple[str, ...]
    run: Callable[[Lab, httpx.Client], Observed]
    fix: str = ""
    flag: bool = True
    transport_error_blocks: bool = False  # True only where a lesson says so (TLS)
    expected: str = ""  # what "blocked" means here, when it is not a 4xx (a handshake)


@dataclass(frozen=True)
class Check:
    """One legitimate use the defended server must still allow."""

    id: str
    description: str
    run: Callable[[Lab, httpx.Client], Observed]
    hint: str = ""  # what a failure here means, when "denying too much?" would mislead
    expected: str = ""  # what "works" means here, when it is not a 2xx (an event logged)


@dataclass(frozen=True)
class Row:
    kind: str  # "attack", "legit" or "answer"
    id: str
    description: str
    expected: str
    observed: str
    passed: bool
    hint: str = ""
    cause: str = ""  # why a failed row failed, in a few words; derived from kind if empty

    def why(self) -> str:
        """The direction of a failure: granted too much, denied too much, or crashed."""
        if self.passed:
            return ""
        if self.cause:
            return self.cause
        return {
            "attack": "granted too much: the attack got through",
            "legit": "denied too much: a real user was refused",
        }.get(self.kind, "wrong answer")


@dataclass
class Report:
    """One row per check; renders as an HTML table in JupyterLab and as text elsewhere."""

    title: str
    rows: list[Row]
    log: list[str] = field(default_factory=list)
    log_title = "Server log"  # what ``log`` holds (a class attribute, not a field)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if not row.passed]

    def summary(self) -> str:
        ok = sum(row.passed for row in self.rows)
        return f"{self.title}: {ok}/{len(self.rows)} checks passed"

    def breach_message(self) -> str:
        lines = [self.summary() + ". Still getting through or broken:"]
        for row in self.failures:
            lines.append(
                f"  ✗ [{row.kind}] {row.id} ({row.why()}): expected {row.expected}; "
                f"observed {row.observed}"
            )
            if row.hint:
                lines.append(f"      hint: {row.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        lines = [self.summary()]
        for row in self.rows:
            mark = "PASS" if row.passed else "FAIL"
            why = f" ({row.why()})" if not row.passed else ""
            lines.append(
                f"  {mark}  [{row.kind}] {row.id}{why}: {row.description} "
                f"(expected {row.expected}; observed {row.observed})"
            )
            if row.hint and not row.passed:
                lines.append(f"        hint: {row.hint}")
        if self.log and not self.passed:  # the log explains failures; a full pass needs none
            lines.append(f"{self.log_title} (last lines):")
            lines += [f"  {line}" for line in self.log[-15:]]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        colour = "#1a7f37" if self.passed else "#cf222e"
        head = "".join(
            f"<th>{c}</th>" for c in ("", "kind", "check", "expected", "observed", "hint")
        )
        body = []
        for row in self.rows:
            mark = "✅" if row.passed else "❌"
            hint = "" if row.passed else e(row.hint)
            why = "" if row.passed else f"<br><small style='color:#cf222e'>{e(row.why())}</small>"
            body.append(
                f"<tr><td>{mark}</td><td>{e(row.kind)}</td>"
                f"<td><b>{e(row.id)}</b><br><small>{e(row.description)}</small>{why}</td>"
                f"<td>{e(row.expected)}</td><td>{e(row.observed)}</td><td>{hint}</td></tr>"
            )
        log = ""
        if self.log:
            lines = e("\n".join(self.log[-15:]))
            log = f"<details><summary>{e(self.log_title)}</summary><pre>{lines}</pre></details>"
        return (
            f"<div><p style='color:{colour}'><b>{e(self.summary())}</b></p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"{log}</div>"
        )


def grader_client(
    base_url: str, *, statuses: list[int] | None = None, **options: Any
) -> httpx.Client:
    """A lab client that also records every status it sees (a 5xx is never a pass).

    A row that needs another client (another port, a client certificate) passes the row's
    ``http.statuses`` so that what that client sees is judged too.
    """
    statuses = [] if statuses is None else statuses

    def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    client = lab_client(base_url, event_hooks={"response": [record]}, **options)
    client.statuses = statuses  # type: ignore[attr-defined]
    return client


def run_item(lab: Lab, item: Attack | Check) -> Row:
    """Run one attack or check against the lab and judge it."""
    is_attack = isinstance(item, Attack)
    incidents_before = len(lab.guard.incidents)
    transport_error = broken = False
    with grader_client(lab.url, **lab.client_options()) as http:
        try:
            observed = item.run(lab, http)
        except httpx.TransportError as exc:
            transport_error = True
            observed = Observed(False, None, f"transport error {type(exc).__name__}: {exc}")
        except Exception as exc:  # an answer the check could not read is never a pass
            broken = True
            observed = Observed(False, None, f"could not complete: {type(exc).__name__}: {exc}")
        statuses = list(http.statuses)  # type: ignore[attr-defined]
    server_errors = [s for s in statuses if s >= 500]
    incidents = lab.guard.incidents[incidents_before:]
    if isinstance(item, Attack):
        # A dropped connection is a rejection only where the lesson says so (TLS).
        passed = not observed.succeeded and not server_errors
        passed = passed and not broken and (not transport_error or item.transport_error_blocks)
        expected = item.expected or (
            "blocked (4xx or a refused handshake)"
            if item.transport_error_blocks
            else "blocked (4xx)"
        )
        # Never the attack's own hints: those teach the attacker where to look.
        hint = item.fix or "refuse this request with a 4xx (see the lesson's rules)"
    else:
        passed = observed.succeeded and not server_errors and not transport_error
        expected = item.expected or "works (2xx)"
        hint = item.hint or (
            "a real user must still be able to do this: is your defense denying too much?"
        )
    observed_text = observed.detail if broken else _describe(observed, is_attack)
    cause = observed.cause
    if transport_error and not passed:
        cause = "the connection failed" + ("" if is_attack else ": a real user could not connect")
    if server_errors:
        if observed.status is None or observed.status < 500:
            observed_text += f"; server error {server_errors[0]} on the way"
        observed_text += " (a 5xx is never a pass)"
        crash = (
            "your hook must return an answer, not raise or hang: a crash is not a defense"
            if lab.lesson.hooks
            else "your app must answer every request with a status below 500: a crash is not a "
            "defense (the server log below names the exception)"
        )
        if any(incident.kind == "returned" for incident in incidents):
            crash = (
                "return exactly what the hook's contract says, on every path (see what came back)"
            )
        # Keep the row's own lesson beside the crash: a 500 on an algorithm row is fixed by
        # pinning the algorithm, not by a try/except alone. The default legit advice
        # ("denying too much?") would mislead here, so only a check's own hint is kept.
        lesson = item.fix if is_attack else getattr(item, "hint", "")
        # Said as what comes next, not as the diagnosis: the crash (the observed column
        # names the exception and the learner's line) is the failure to fix first.
        hint = crash
        if lesson:
            hint += f". Once it stops crashing, the fix this row teaches: {lesson}"
        cause = "crashed (5xx) on " + ("an attack" if is_attack else "a real user's request")
    for incident in list(dict.fromkeys(incidents))[:2]:  # the same failure once
        if incident.summary.startswith(f"{incident.hook}() "):  # it names the hook itself
            observed_text += f"; {incident.summary}"
        else:
            observed_text += f"; {incident.hook}() {incident.kind}: {incident.summary}"
        if incident.where:
            observed_text += f" at {incident.where}"
    kind = "attack" if is_attack else "legit"
    return Row(kind, item.id, item.description, expected, observed_text, passed, hint, cause)


def _describe(observed: Observed, is_attack: bool) -> str:
    status = f" (HTTP {observed.status})" if observed.status is not None else ""
    if observed.status is not None and observed.status >= 500:
        verdict = "server error"
    elif is_attack:
        verdict = "got through" if observed.succeeded else "blocked"
    else:
        verdict = "worked" if observed.succeeded else "refused"
    text = f"{verdict}{status}"
    return f"{text}: {observed.detail}" if observed.detail else text


def run_battery(lab: Lab, attacks: list[Attack], checks: list[Check], title: str) -> Report:
    with lab.guard.grading_run():
        rows = [run_item(lab, item) for item in [*attacks, *checks]]
    return Report(title, rows, list(lab.server_log()))
