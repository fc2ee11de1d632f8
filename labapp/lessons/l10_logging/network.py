"""Lesson 10's tools beside the server: a replayed day, the geo table, the day's plot.

Started with the lab, the network also plays the morning before you arrive: carol, the
admin, logs in with her password and TOTP code and reads the sales report. The weak log
keeps all of it.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from labapp.engine.http import lab_client
from labapp.lessons.l10_logging.hooks import reference_log
from labapp.lessons.l10_logging.people import PEOPLE, country
from labapp.lessons.l10_logging.replay import run_day

if TYPE_CHECKING:
    from labapp.engine.lab import Lab


class Tools:
    exports = ("replay_day", "country")

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.desk = lab.server.app.state.desk
        self.morning()

    def morning(self) -> None:
        """carol logs in (password and TOTP) and reads the report; alice checks an order."""
        service = self.desk.service
        passwords = {name: password for name, _, password, _, _ in PEOPLE}
        with lab_client(self.lab.url) as http:
            body = {"username": "carol", "password": passwords["carol"]}
            answer = service.with_code(
                "carol", lambda code: http.post("/login", json={**body, "totp": code})
            )
            token = answer.json()["access_token"]
            http.get("/admin/report", headers={"Authorization": f"Bearer {token}"})

    def replay_day(self, seed: int | None = None) -> list[dict[str, Any]]:
        """Replay a day of traffic (a new one, or the day of ``seed``) through your
        ``audit_event`` hook, and return the events it logged (the JSON objects)."""
        seed = secrets.randbelow(10**6) if seed is None else seed
        with reference_log(self.lab.state) as note:
            run = run_day(self.lab.url, self.desk, self.lab.workdir, seed)
        if note:
            print(note)
        print(
            f"Day {seed}: {len(run.day.steps)} requests, {len(run.events)} events logged"
            + (f", {len(run.bad_lines)} lines that are not JSON" if run.bad_lines else "")
        )
        return run.events

    @staticmethod
    def country(address: str) -> str:
        """The country of an address in the lab's geo table ("??" if it has none)."""
        return country(address)

    def stop(self) -> None:
        """Nothing runs beside the lab's own server."""
