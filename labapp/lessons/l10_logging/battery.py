"""What lesson 10's graders replay.

``lab.grade()`` judges the log (``audit_event``): one row per kind of event, each checked
for its fields; one row per rule (no secret in any form, one event per line, no event lost
under load); and the attack of the exercise (the admin's token read back from the log).
The two quizzes replay days: ``detect`` is scored per attack kind against the truth of a
fresh day, ``adapt`` by who its decisions stopped and whom they bothered.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed, Report, Row
from labapp.engine.guard import HookFailed, HookTimeout, check_signature
from labapp.lessons.l10_logging import figures, hints
from labapp.lessons.l10_logging.hooks import hooks_as, quiet_audit_event, reference_log
from labapp.lessons.l10_logging.people import PEOPLE
from labapp.lessons.l10_logging.replay import Played, run_day, run_logins
from labapp.lessons.l10_logging.scoring import (
    PRECISION,
    RECALL,
    BadAlerts,
    read_alerts,
    score,
    unknown_kinds,
)
from labapp.lessons.l10_logging.traffic import KINDS

PASSWORDS = {name: password for name, _, password, _, _ in PEOPLE}
FIELDS = ("time", "kind", "who", "outcome", "reason", "client", "request_id")
# Characters that end a line for some reader (str.splitlines, a terminal, a log viewer) or
# drive a terminal: C0 controls, DEL, C1 controls (NEL, CSI...), U+2028 and U+2029.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
FRICTION, STOPPED = 0.05, 0.95
NOT_LOGGED = "the log does not say what happened"


# -- helpers every row uses -------------------------------------------------------------


def _service(lab: Any) -> Any:
    return lab.server.app.state.desk.service


def _lines(lab: Any, response: httpx.Response) -> list[str]:
    return list(_service(lab).by_request.get(response.headers.get("x-request-id", ""), []))


def _event(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _doc_address() -> str:
    return f"198.51.100.{secrets.randbelow(200) + 20}"


def sign_in(lab: Any, http: httpx.Client, name: str, client: str = "") -> httpx.Response:
    """Log in as a seeded user, answering a step-up with the user's TOTP code."""
    headers = {"X-Forwarded-For": client} if client else {}
    body: dict[str, str] = {"username": name, "password": PASSWORDS[name]}

    def send(code: str) -> httpx.Response:
        return http.post("/login", json={**body, "totp": code}, headers=headers)

    if name == "carol":  # her account always asks
        return _service(lab).with_code(name, send)
    response = http.post("/login", json=body, headers=headers)
    if response.status_code == 401 and "step_up" in response.text:
        response = _service(lab).with_code(name, send)
    return response


def _bearer(response: httpx.Response) -> dict[str, str]:
    token = response.json().get("access_token") if response.status_code == 200 else None
    if not token:  # say why the row cannot go on, not which key was missing
        raise RuntimeError(
            f"the login this row needs failed: {response.status_code} {response.text:.120}"
        )
    return {"Authorization": f"Bearer {token}"}


# -- one row per kind of event ------------------------------------------------------------


def _judge_event(lab: Any, response: httpx.Response, kind: str, want: dict[str, Any]) -> Observed:
    lines = _lines(lab, response)
    events = [e for e in map(_event, lines) if e is not None and e.get("kind") == kind]
    if not events:
        seen = ", ".join(repr(line[:60]) for line in lines) or "nothing"
        return Observed(False, None, f"no JSON line with kind {kind!r}: {seen}", cause=NOT_LOGGED)
    event = events[0]
    want = {**want, "kind": kind, "request_id": response.headers.get("x-request-id")}
    wrong = [
        f"{key}={event.get(key)!r} (want {value!r})"
        for key, value in want.items()
        if event.get(key) != value
    ]
    missing = [key for key in FIELDS if key not in event]
    stamp = _service(lab).stamps.get(want["request_id"] or "", "")
    if missing:
        wrong.insert(0, "missing " + ", ".join(missing))
    elif _instant(event["time"]) != _instant(stamp):
        wrong.append(f"time={event['time']!r} (want fields['time'], {stamp!r})")
    if wrong:
        return Observed(False, None, "; ".join(wrong), cause=NOT_LOGGED)
    return Observed(True, None, f"{kind} logged with its fields")


def _instant(value: Any) -> float | None:
    """The moment an ISO 8601 time names; None without a time zone (a local time is a guess)."""
    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return stamp.timestamp() if stamp.utcoffset() is not None else None


def _login_failure(lab: Any, http: httpx.Client) -> Observed:
    client = _doc_address()
    body = {"username": "alice", "password": "not her password"}
    response = http.post("/login", json=body, headers={"X-Forwarded-For": client})
    want = {"who": "alice", "outcome": "failure", "reason": "bad_password", "client": client}
    return _judge_event(lab, response, "login.failure", want)


def _login_success(lab: Any, http: httpx.Client) -> Observed:
    client = _doc_address()
    response = sign_in(lab, http, "alice", client)
    want = {"who": "alice", "outcome": "success", "reason": "password", "client": client}
    return _judge_event(lab, response, "login.success", want)


def _token_issued(lab: Any, http: httpx.Client) -> Observed:
    response = sign_in(lab, http, "bob")
    want = {"who": "bob", "outcome": "success", "reason": "login", "client": "127.0.0.1"}
    return _judge_event(lab, response, "token.issued", want)


def _carol(lab: Any, http: httpx.Client, totp: str | None) -> httpx.Response:
    body = {"username": "carol", "password": PASSWORDS["carol"]}
    if totp is not None:
        body["totp"] = totp
    return http.post("/login", json=body)


def _mfa_challenge(lab: Any, http: httpx.Client) -> Observed:
    want = {"who": "carol", "outcome": "challenge", "reason": "step_up", "client": "127.0.0.1"}
    return _judge_event(lab, _carol(lab, http, None), "mfa.challenge", want)


def _mfa_failure(lab: Any, http: httpx.Client) -> Observed:
    code = _service(lab).totp_now("carol")
    wrong = f"{(int(code) + 500_000) % 10**6:06d}"
    want = {"who": "carol", "outcome": "failure", "reason": "bad_totp", "client": "127.0.0.1"}
    return _judge_event(lab, _carol(lab, http, wrong), "mfa.failure", want)


def _mfa_success(lab: Any, http: httpx.Client) -> Observed:
    response = sign_in(lab, http, "carol")
    want = {"who": "carol", "outcome": "success", "reason": "totp", "client": "127.0.0.1"}
    return _judge_event(lab, response, "mfa.success", want)


def _token_refused(lab: Any, http: httpx.Client) -> Observed:
    expired = _service(lab).expired_token("alice")
    response = http.get("/me", headers={"Authorization": f"Bearer {expired}"})
    want = {"who": None, "outcome": "failure", "reason": "expired", "client": "127.0.0.1"}
    return _judge_event(lab, response, "token.refused", want)


def _authz_denied(lab: Any, http: httpx.Client) -> Observed:
    bob = sign_in(lab, http, "bob")
    alices = min(n for n, owner in _service(lab).orders.items() if owner == "alice")
    response = http.get(f"/orders/{alices}", headers=_bearer(bob))
    want = {"who": "bob", "outcome": "failure", "reason": "not_owner", "client": "127.0.0.1"}
    return _judge_event(lab, response, "authz.denied", want)


def _refresh_reuse(lab: Any, http: httpx.Client) -> Observed:
    first = sign_in(lab, http, "alice").json()["refresh_token"]
    http.post("/refresh", json={"refresh_token": first})
    response = http.post("/refresh", json={"refresh_token": first})
    want = {"who": "alice", "outcome": "failure", "reason": "reused", "client": "127.0.0.1"}
    return _judge_event(lab, response, "refresh.reuse", want)


def _logout(lab: Any, http: httpx.Client) -> Observed:
    session = sign_in(lab, http, "bob")
    body = {"refresh_token": session.json()["refresh_token"]}
    response = http.post("/logout", json=body, headers=_bearer(session))
    want = {"who": "bob", "outcome": "success", "reason": "user", "client": "127.0.0.1"}
    return _judge_event(lab, response, "logout", want)


EVENT_ROWS = (
    ("login.failure", "a wrong password, from a forwarded address", _login_failure),
    ("login.success", "a login with the right password", _login_success),
    ("mfa.challenge", "carol asked for her TOTP code", _mfa_challenge),
    ("mfa.failure", "carol's wrong TOTP code", _mfa_failure),
    ("mfa.success", "carol's right TOTP code", _mfa_success),
    ("token.issued", "the tokens a login hands out", _token_issued),
    ("token.refused", "an expired access token", _token_refused),
    ("authz.denied", "bob asks for alice's order", _authz_denied),
    ("refresh.reuse", "a refresh token spent twice", _refresh_reuse),
    ("logout", "bob logs out", _logout),
)
CHECKS = tuple(
    Check(
        f"logged-{kind}",
        f"{what}: logged as kind {kind}, with {', '.join(FIELDS)}",
        run,
        hint=hints.FIELDS_HINT,
        expected="one JSON line with these fields",
    )
    for kind, what, run in EVENT_ROWS
)


# -- the rules ----------------------------------------------------------------------------


def _forms(secret: str, guessable: bool) -> dict[str, str]:
    """The ways a secret can sit in a log line: as is, escaped or encoded; and for a secret
    people choose (a password), its fast digests too, which a dictionary attack reverses."""
    raw = secret.encode()
    forms = {
        "as is": secret,
        "JSON-escaped": json.dumps(secret)[1:-1],
        "URL-encoded": urllib.parse.quote(secret, safe=""),
        "form-encoded": urllib.parse.quote_plus(secret),
        "base64": base64.b64encode(raw).decode().rstrip("="),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
    }
    if guessable:
        for name in ("md5", "sha1", "sha256"):
            digest = hashlib.new(name, raw).hexdigest()
            forms |= {f"{name} digest": digest, f"{name.upper()} digest": digest.upper()}
    return forms


def _found(what: str, secret: str, text: str) -> str | None:
    for form, value in _forms(secret, guessable="password" in what).items():
        if secret.isdigit():  # a TOTP code: only as a number of its own
            if re.search(rf"(?<![0-9]){re.escape(value)}(?![0-9])", text):
                return form
        elif value in text:
            return form
    return None


def _secrets_in_log(lab: Any, http: httpx.Client) -> Observed:
    key, cookie = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    extra = {"X-Api-Key": key, "Cookie": f"session={cookie}"}
    named: dict[str, str] = {"the API key header": key, "the session cookie": cookie}
    seen: list[httpx.Response] = []
    wrong = http.post(
        "/login", json={"username": "alice", "password": PASSWORDS["alice"] + "!"}, headers=extra
    )
    alice = sign_in(lab, http, "alice")
    seen += [wrong, alice]
    named["alice's password"] = PASSWORDS["alice"]
    named["alice's near-miss password"] = PASSWORDS["alice"] + "!"
    _bearer(alice)  # a failed login stops the row with its reason
    tokens = alice.json()
    named["alice's access token"] = tokens["access_token"]
    named["alice's refresh token"] = tokens["refresh_token"]
    token = tokens["access_token"]
    # Someone else's order, the token also in the query string: a denial, and its event.
    bobs = min(n for n, owner in _service(lab).orders.items() if owner == "bob")
    seen.append(
        http.get(f"/orders/{bobs}?access_token={token}", headers={**extra, **_bearer(alice)})
    )
    seen.append(http.post("/refresh", json={"refresh_token": tokens["refresh_token"]}))
    renewed = seen[-1].json()
    named["alice's second refresh token"] = renewed.get("refresh_token", "")
    seen.append(http.post("/refresh", json={"refresh_token": tokens["refresh_token"]}))
    codes: list[str] = []

    def carol_with(code: str) -> httpx.Response:
        codes.append(code)
        return _carol(lab, http, code)

    carol = _service(lab).with_code("carol", carol_with)
    named["carol's password"] = PASSWORDS["carol"]
    named |= {f"carol's TOTP code {code}": code for code in codes}
    seen.append(carol)
    if carol.status_code == 200:
        named["carol's access token"] = carol.json()["access_token"]
        seen.append(
            http.post(
                "/logout",
                json={"refresh_token": carol.json()["refresh_token"]},
                headers=_bearer(carol),
            )
        )
    text = "\n".join(line for response in seen for line in _lines(lab, response))
    leaks = [
        f"{what} ({form})"
        for what, value in named.items()
        if value and (form := _found(what, value, text))
    ]
    if leaks:
        return Observed(True, None, "found in the log: " + "; ".join(leaks))
    return Observed(False, None, f"none of {len(named)} secrets in {text.count(chr(10)) + 1} lines")


def _log_leak(lab: Any, http: httpx.Client) -> Observed:
    carol = sign_in(lab, http, "carol")
    if carol.status_code != 200:
        return Observed(False, carol.status_code, "carol could not log in to be robbed")
    token = carol.json()["access_token"]
    http.get("/admin/report", headers={"Authorization": f"Bearer {token}"})
    sam = sign_in(lab, http, "sam")
    lines = http.get("/admin/logs", headers=_bearer(sam)).json().get("lines", [])
    if any(token in line for line in lines):
        report = http.get("/admin/report", headers={"Authorization": f"Bearer {token}"})
        return Observed(
            report.status_code == 200,
            report.status_code,
            "sam read carol's token in /admin/logs and used it",
        )
    return Observed(False, None, "carol's token is not in the log sam can read")


INJECTIONS = (
    'eve\n{"kind": "login.success", "who": "carol", "outcome": "success"}',
    "eve\r\n2026-11-29T00:00:00Z login.success who=carol",
    "eve\u2028login.success carol",
    "eve\x85login.success carol",
    "eve\x1b[2J\x1b[1;1Hall clear",
    "eve\x9b31mred",
    "eve\x00hidden",
)


def _log_injection(lab: Any, http: httpx.Client) -> Observed:
    problems: list[str] = []
    sent = [
        ({"username": name, "password": "wrong"}, {}, f"username {name[:10]!r}…")
        for name in INJECTIONS
    ]
    # obs-text: a header value may carry these bytes, and Starlette reads them as Latin-1
    agent = {"User-Agent": b"Mozilla/5.0 \x85\x9b31m"}
    sent.append(({"username": "eve", "password": "wrong"}, agent, "User-Agent with NEL, CSI"))
    for body, headers, what in sent:
        response = http.post("/login", json=body, headers=headers)
        lines = _lines(lab, response)
        asked = _service(lab).asked.get(response.headers.get("x-request-id", ""), 0)
        for line in lines:
            unsafe = UNSAFE.search(line)
            if unsafe or len(line.splitlines()) > 1:
                char = unsafe.group() if unsafe else "\n"
                problems.append(f"{what}: {_named(char)} written as is")
                break
            if _event(line) is None:
                problems.append(f"{what}: a line that is not a JSON object")
                break
        else:
            if len(lines) != asked:
                problems.append(f"{what}: {len(lines)} lines for {asked} events")
    if problems:
        return Observed(True, None, "; ".join(problems[:3]))
    return Observed(False, None, f"{len(sent)} hostile requests, one JSON line per event")


def _named(char: str) -> str:
    names = {
        "\n": "LF",
        "\r": "CR",
        "\x00": "NUL",
        "\x1b": "ESC",
        "\x85": "NEL",
        "\x9b": "CSI",
        "\u2028": "LINE SEPARATOR",
    }
    return f"U+{ord(char):04X}" + (f" ({names[char]})" if char in names else "")


def _events_lost(lab: Any, http: httpx.Client) -> Observed:
    """Forty logins at once from forty addresses (half right, half wrong): every one logged."""

    def attempt(number: int) -> httpx.Response:
        right = number % 2 == 0
        password = PASSWORDS["bob"] if right else f"guess-{number}"
        headers = {"X-Forwarded-For": f"203.0.113.{number + 10}"}
        return http.post("/login", json={"username": "bob", "password": password}, headers=headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(attempt, range(40)))
    service = _service(lab)
    lost = 0
    asked = 0
    for response in responses:
        rid = response.headers.get("x-request-id", "")
        asked += service.asked.get(rid, 0)
        lost += service.asked.get(rid, 0) - len(service.by_request.get(rid, []))
    if lost > 0:
        return Observed(
            False,
            None,
            f"{lost} of {asked} events never reached the log",
            cause="events lost: " + NOT_LOGGED,
        )
    return Observed(True, None, f"all {asked} events of 40 simultaneous logins logged")


ATTACKS = (
    Attack(
        "log-leak",
        "sam (support) reads the admin's live token in the log and uses it",
        hints.LEAK,
        _log_leak,
        fix=hints.LEAK_FIX,
        expected="no token in the log",
    ),
    Attack(
        "secrets-in-log",
        "passwords, a TOTP code, tokens, an API key and a cookie, sent in bodies, headers "
        "and a query string: none may reach the log, encoded or (a password) digested",
        (),
        _secrets_in_log,
        fix=hints.SECRETS_FIX,
        flag=False,
        expected="no secret in the log",
    ),
    Attack(
        "log-injection",
        "usernames and a User-Agent carrying CR, LF, U+2028, NEL, ANSI and C1 escapes, NUL",
        (),
        _log_injection,
        fix=hints.INJECTION_FIX,
        flag=False,
        expected="one JSON line per event, no control character",
    ),
)
CHECKS += (
    Check(
        "events-lost",
        "forty logins at once from forty addresses: every event they make is in the log",
        _events_lost,
        hint=hints.LOST_FIX,
        expected="one line per event",
    ),
)


# -- the quizzes ----------------------------------------------------------------------------


@dataclass
class Pictured(Report):
    """A report with a picture under its table (PNG bytes, drawn by ``figures``)."""

    png: bytes = b""
    note: str = ""

    def _repr_html_(self) -> str:
        note = f"<p>{html.escape(self.note)}</p>" if self.note else ""
        image = base64.b64encode(self.png).decode() if self.png else ""
        picture = f"<img src='data:image/png;base64,{image}'/>" if image else ""
        return super()._repr_html_() + note + picture

    def __str__(self) -> str:
        return super().__str__() + (f"\n{self.note}" if self.note else "")

    __repr__ = __str__


def _crashed(
    row_id: str, description: str, expected: str, observed: str, hint: str, cause: str = "crashed"
) -> Row:
    return Row("answer", row_id, description, expected, observed, False, hint, cause)


def grade_detect(lab: Any, detect: Any) -> Report:
    """Replay a new day through the log, run ``detect`` on its events, score each kind."""
    title = "10-log-detect detect"
    problem = check_signature("detect", detect, ("events",))
    if problem:
        row = _crashed(
            "detect",
            "detect(events) returns alerts",
            "a function of events",
            problem,
            hints.DETECT[0],
        )
        return Pictured(title, [row])
    seed = secrets.randbelow(10**6)
    with reference_log(lab.state) as note:
        run = run_day(lab.url, lab.server.app.state.desk, lab.workdir, seed)
    title = f"10-log-detect detect (day {seed}: lab.replay_day({seed}) replays it)"
    rows: list[Row] = []
    if run.server_errors or run.bad_lines:
        shown = run.server_errors or [f"{len(run.bad_lines)} lines: {run.bad_lines[0]!r:.80}"]
        rows.append(
            _crashed(
                "day-logged",
                "the day's events reach the log as JSON objects",
                "every request answered, every line a JSON object",
                "; ".join(shown[:2]),
                "Run lab.grade() first: your log must pass.",
            )
        )
        return Pictured(title, rows, note=note)
    try:
        answer = lab.guard.call_blocking("detect", detect, [dict(e) for e in run.events])
        alerts = read_alerts(answer)
    except (HookFailed, HookTimeout, BadAlerts) as exc:
        shape = isinstance(exc, BadAlerts)
        where = "" if shape or not lab.guard.incidents else lab.guard.incidents[-1].where
        rows.append(
            _crashed(
                "detect",
                "detect(events) returns a list of alerts",
                "a list of {'kind', 'subject', 'at'} dicts",
                str(exc) + (f" at {where}" if where else ""),
                "Try it on lab.replay_day() first and look at what it returns.",
                "wrong answer shape" if shape else "crashed",
            )
        )
        return Pictured(title, rows, note=note)
    unknown = unknown_kinds(alerts)
    rows.append(
        Row(
            "answer",
            "alert-kinds",
            "every alert names a kind of this lab",
            ", ".join(KINDS),
            ", ".join(unknown) + " unknown" if unknown else "all known",
            not unknown,
            "Spell the kinds as listed: " + ", ".join(KINDS),
        )
    )
    scores = score(alerts, run.day.truth)
    for result in scores:
        observed = (
            f"recall {len(result.found)}/{len(result.found) + len(result.missed)}, "
            f"precision {len(result.found)}/{len(result.found) + len(result.false)}"
        )
        if result.missed:
            observed += "; missed " + ", ".join(result.missed[:4])
        if result.false:
            observed += "; false alarms " + ", ".join(result.false[:4])
        rows.append(
            Row(
                "answer",
                f"detect-{result.kind}",
                DETECTED[result.kind],
                f"recall ≥ {RECALL:.0%} and precision ≥ {PRECISION:.0%}",
                observed,
                result.passed,
                hints.KIND_HINTS[result.kind],
                "missed attacks" if result.recall < RECALL else "false alarms",
            )
        )
    png = figures.timeline(run.events, alerts, {r.kind: set(r.false) for r in scores})
    return Pictured(title, rows, png=png, note=note)


DETECTED = {
    "stuffing": "credential stuffing: each address of the botnet (subject: the address)",
    "spraying": "password spraying: each spraying address (subject: the address)",
    "brute_force": "a slow brute force: each account under attack (subject: the username)",
    "token_replay": "a stolen refresh token replayed: each victim (subject: the username)",
    "impossible_travel": "impossible travel: each account (subject: the username)",
}


def grade_adapt(lab: Any, assess_risk: Any) -> Report:
    """Replay owners' and attackers' logins with the right password through ``assess_risk``."""
    title = "10-log-detect adapt"
    problem = check_signature("assess_risk", assess_risk, ("context",))
    if problem:
        row = _crashed(
            "decisions",
            "assess_risk(context) decides",
            "a function of context",
            problem,
            hints.ADAPT[0],
        )
        return Pictured(title, [row])
    seed = secrets.randbelow(10**6)
    before = len(lab.guard.incidents)  # this replay's incidents name what went wrong
    with hooks_as(lab.state, assess_risk=assess_risk, audit_event=quiet_audit_event):
        played = run_logins(lab.url, lab.server.app.state.desk, lab.workdir, seed)
    title = f"10-log-detect adapt (logins of day {seed})"
    answers = {True: [], False: []}
    for trial, result in played:
        answers[trial.attack].append(_decision(result))
    normal, attack = answers[False], answers[True]
    errors = normal.count("error") + attack.count("error")
    stopped = sum(answer in ("step_up", "deny") for answer in attack)
    bothered = sum(answer in ("step_up", "deny") for answer in normal)
    denied = normal.count("deny")
    incidents = list(dict.fromkeys(_said(i) for i in lab.guard.incidents[before:]))
    profiles: dict[bool, dict[str, list[str]]] = {True: {}, False: {}}
    for trial, result in played:
        profiles[trial.attack].setdefault(trial.profile, []).append(_decision(result))
    rows = [
        Row(
            "answer",
            "decisions",
            "every login got a decision (allow, step_up or deny)",
            "no error",
            f"{errors} errors: " + "; ".join(incidents) if errors else "no error",
            errors == 0,
            "Return one of 'allow', 'step_up', 'deny', quickly, for any context.",
            "crashed",
        ),
        Row(
            "attack",
            "attackers-stopped",
            "attackers holding the right password are stepped up (they have no TOTP app) or denied",
            f"≥ {STOPPED:.0%} of {len(attack)}",
            f"{stopped}/{len(attack)} stopped" + _which(profiles[True], ("allow",), "got in"),
            stopped >= STOPPED * len(attack),
            hints.ADAPT_ATTACK,
            "attackers got in with a stolen password",
        ),
        Row(
            "legit",
            "friction",
            "owners' own logins challenged (stepped up or denied)",
            f"≤ {FRICTION:.0%} of {len(normal)}",
            f"{bothered}/{len(normal)} challenged"
            + _which(profiles[False], ("step_up", "deny"), "challenged"),
            bothered <= FRICTION * len(normal),
            hints.ADAPT_FRICTION,
            "too much friction: owners challenged",
        ),
        Row(
            "legit",
            "no-lockout",
            "owners are never denied: a step-up lets them prove it",
            "0 denied",
            f"{denied} denied",
            denied == 0,
            hints.ADAPT_LOCKOUT,
        ),
    ]
    png = figures.decisions(normal, attack, FRICTION)
    return Pictured(title, rows, png=png)


def _said(incident: Any) -> str:
    text = incident.summary
    return text if text.startswith(f"{incident.hook}()") else f"{incident.hook}() {text}"


def _which(by_profile: dict[str, list[str]], answers: tuple[str, ...], verb: str) -> str:
    """Which kinds of login got these answers: "; challenged: new-device 14, trip 7"."""
    counts = {
        profile: sum(answer in answers for answer in got)
        for profile, got in sorted(by_profile.items())
    }
    shown = ", ".join(f"{profile} {n}" for profile, n in counts.items() if n)
    return f"; {verb}: {shown}" if shown else ""


def _decision(result: Played) -> str:
    if result.first is None or result.first >= 500:
        return "error"
    if result.first == 403:
        return "deny"
    return "step_up" if result.step_up else "allow"
