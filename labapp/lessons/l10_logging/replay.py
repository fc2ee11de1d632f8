"""Play a day's steps against the lab over real HTTP, one request at a time.

The player is the load balancer (it sets ``X-Forwarded-For``) and every user's device (it
keeps each actor's tokens and sends their device cookie). Before each request it sets the
service's clock to the step's time: a day replays in about a second, with no sleeping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from labapp.engine.http import lab_client
from labapp.lessons.l10_logging.desk import Desk
from labapp.lessons.l10_logging.service import Clock, Service
from labapp.lessons.l10_logging.traffic import Day, Step, day
from labapp.lessons.l10_logging.trials import Trial, logins


@dataclass(frozen=True)
class Played:
    """What one step got: the status of its first answer, and of the last (after a step-up)."""

    first: int | None
    last: int | None
    step_up: bool = False


class Player:
    def __init__(self, http: httpx.Client, service: Service) -> None:
        self.http, self.service = http, service
        self.sessions: dict[str, dict[str, str]] = {}  # actor -> access, refresh, previous
        self.loot: dict[str, str] = {}  # a thief's copy of someone's refresh token
        self.server_errors: list[str] = []

    def play(self, step: Step) -> Played:
        self.service.clock.set(step.at)
        return getattr(self, "_" + step.action)(step)

    # -- one method per action --------------------------------------------------------

    def _login(self, step: Step) -> Played:
        body = {"username": step.username, "password": step.password}
        first = self._send(step, "POST", "/login", json=body)
        if first is None:
            return Played(None, None)
        last = first
        step_up = first.status_code == 401 and _json(first).get("step_up") == "totp"
        if step_up:
            code = self.service.totp_now(step.username)
            if not step.answers_totp:  # an attacker does not have the user's phone
                code = f"{(int(code) + 1) % 10**6:06d}"
            last = self._send(step, "POST", "/login", json={**body, "totp": code})
        if last is not None and last.status_code == 200:
            self._keep(step.actor, _json(last))
        return Played(first.status_code, last.status_code if last else None, step_up)

    def _api(self, step: Step) -> Played:
        return self._with_token(step, "GET", f"/orders/{step.order}")

    def _logout(self, step: Step) -> Played:
        session = self.sessions.pop(step.actor, None)
        if session is None:
            return Played(None, None)
        auth = {"Authorization": f"Bearer {session['access']}"}
        body = {"refresh_token": session["refresh"]}
        return self._played(self._send(step, "POST", "/logout", json=body, headers=auth))

    def _refresh(self, step: Step) -> Played:
        session = self.sessions.get(step.actor)
        return self._spend(step, session["refresh"] if session else None)

    def _retry_refresh(self, step: Step) -> Played:
        session = self.sessions.get(step.actor)
        return self._spend(step, session.get("previous") if session else None)

    def _steal(self, step: Step) -> Played:
        session = self.sessions.get(step.victim)
        if session is not None:
            self.loot[step.actor] = session["refresh"]
        return Played(None, None)

    def _replay_stolen(self, step: Step) -> Played:
        return self._spend(step, self.loot.get(step.actor))

    # -- plumbing -----------------------------------------------------------------------

    def _spend(self, step: Step, token: str | None) -> Played:
        if token is None:
            return Played(None, None)
        response = self._send(step, "POST", "/refresh", json={"refresh_token": token})
        if response is not None and response.status_code == 200:
            previous = self.sessions.get(step.actor, {}).get("refresh")
            self._keep(step.actor, _json(response), previous)
        return self._played(response)

    def _with_token(self, step: Step, method: str, path: str) -> Played:
        session = self.sessions.get(step.actor)
        if session is None:
            return Played(None, None)
        auth = {"Authorization": f"Bearer {session['access']}"}
        return self._played(self._send(step, method, path, headers=auth))

    def _keep(self, actor: str, answer: dict[str, Any], previous: str | None = None) -> None:
        if "access_token" in answer and "refresh_token" in answer:
            self.sessions[actor] = {
                "access": answer["access_token"],
                "refresh": answer["refresh_token"],
                "previous": previous or "",
            }

    def _send(self, step: Step, method: str, path: str, **options: Any) -> httpx.Response | None:
        headers = {"X-Forwarded-For": step.client, "User-Agent": step.agent}
        if step.device:
            headers["Cookie"] = f"device={step.device}"
        headers.update(options.pop("headers", {}))
        self.http.cookies.clear()  # every actor is its own device: no shared cookie jar
        try:
            response = self.http.request(method, path, headers=headers, **options)
        except httpx.TransportError as exc:
            self.server_errors.append(f"{method} {path}: {type(exc).__name__}")
            return None
        if response.status_code >= 500:
            detail = _json(response).get("detail", response.text[:200])
            self.server_errors.append(f"{method} {path} → {response.status_code}: {detail}")
        return response

    @staticmethod
    def _played(response: httpx.Response | None) -> Played:
        status = response.status_code if response is not None else None
        return Played(status, status)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_events(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The events of a JSON Lines log, and the lines that are not a JSON object."""
    events: list[dict[str, Any]] = []
    bad: list[str] = []
    if not path.exists():
        return events, bad
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if isinstance(value, dict):
            events.append(value)
        else:
            bad.append(line)
    return events, bad


@dataclass
class DayRun:
    """A replayed day: the generator's day, the events your hook logged, what went wrong."""

    day: Day
    events: list[dict[str, Any]]
    bad_lines: list[str]
    server_errors: list[str]


def run_day(url: str, desk: Desk, folder: Path, seed: int) -> DayRun:
    """Replay ``day(seed)`` against a fresh service on the lab's server; read back its log."""
    the_day = day(seed)
    path = folder / f"day-{seed}.jsonl"
    path.unlink(missing_ok=True)
    service = Service(the_day.accounts, Clock(), path)
    with desk.replaying(service, judge_risk=False), lab_client(url) as http:
        player = Player(http, service)
        for step in the_day.steps:
            player.play(step)
    events, bad = read_events(path)
    path.unlink(missing_ok=True)
    return DayRun(the_day, events, bad, player.server_errors)


def run_logins(url: str, desk: Desk, folder: Path, seed: int) -> list[tuple[Trial, Played]]:
    """Replay ``logins(seed)`` with the lab's current ``assess_risk``; each trial's answer."""
    made = logins(seed)
    steps = [(step, index) for index, trial in enumerate(made.trials) for step in trial.steps]
    steps.sort(key=lambda pair: pair[0].at)  # one clock for everyone: the day in order
    service = Service(made.accounts, Clock(), folder / f"logins-{seed}.jsonl")
    answers: dict[int, Played] = {}
    with desk.replaying(service, judge_risk=True), lab_client(url) as http:
        player = Player(http, service)
        for step, index in steps:
            played = player.play(step)
            if step is made.trials[index].steps[-1]:
                answers[index] = played
    service.log_path.unlink(missing_ok=True)
    return [(trial, answers[index]) for index, trial in enumerate(made.trials)]
