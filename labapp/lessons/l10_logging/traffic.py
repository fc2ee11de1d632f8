"""Lesson 10's traffic: a day of requests with the truth about them, made from a seed.

``day(seed)`` is the day the detection rules read: 36 users in three regions going about
their office hours (with typos, forgotten passwords, a retrying mobile app and a real trip
abroad), and five kinds of attack hidden among them. ``logins(seed)`` is what the risk
decision is graded on: logins with the right password, by their owners and by attackers who
hold it. One ``random.Random(seed)`` makes each, so a seed is a day you can replay exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from labapp.lessons.l10_logging.people import HASHER, REGIONS, addresses
from labapp.lessons.l10_logging.service import Account

DAY = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # a Monday; every replay is this day
HOUR = 3600.0
NAMES = [
    "ada",
    "ali",
    "amir",
    "ana",
    "ben",
    "bo",
    "chen",
    "dana",
    "eli",
    "emma",
    "finn",
    "gus",
    "hana",
    "ines",
    "ivan",
    "jo",
    "kai",
    "lena",
    "luis",
    "mai",
    "maya",
    "mo",
    "nia",
    "noor",
    "omar",
    "pia",
    "raj",
    "rosa",
    "sami",
    "tara",
    "theo",
    "uma",
    "vera",
    "wes",
    "yara",
    "zoe",
]
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/145.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 16) Chrome/142.0 Mobile",
)
BOTS = ("python-requests/2.32.5", "Go-http-client/2.0", "curl/8.17.0", "okhttp/4.12.0")
SPRAYED = "Autumn2026!"
KINDS = ("stuffing", "spraying", "brute_force", "token_replay", "impossible_travel")
SUBJECT = {  # what an alert of each kind names
    "stuffing": "client",
    "spraying": "client",
    "brute_force": "username",
    "token_replay": "username",
    "impossible_travel": "username",
}


@dataclass(frozen=True)
class Step:
    """One request of the day, sent by ``actor`` (whose session it uses) at ``at``."""

    at: float
    actor: str
    action: str  # login, api, refresh, retry_refresh, logout, steal, replay_stolen
    username: str
    client: str
    agent: str
    password: str = ""
    order: int = 0  # for "api": the order it asks for
    victim: str = ""  # for "steal": whose refresh token the actor copies
    device: str | None = None
    answers_totp: bool = False  # a step-up asks for a code: does the actor have the app?
    label: str = "normal"  # the truth: "normal", or the attack it belongs to


@dataclass
class Day:
    seed: int
    accounts: list[Account]
    passwords: dict[str, str]
    steps: list[Step]
    # kind -> subject -> (first, last) time of the incident
    truth: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def mark(self, kind: str, subject: str, at: float) -> None:
        first, last = self.truth.setdefault(kind, {}).get(subject, (at, at))
        self.truth[kind][subject] = (min(first, at), max(last, at))


class Maker:
    """The shared parts of both generators: people, their passwords, fresh addresses."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        regions = list(REGIONS)
        self.home: dict[str, str] = {}  # username -> home country
        self.region: dict[str, str] = {}
        self.offset: dict[str, int] = {}
        self.accounts: list[Account] = []
        self.passwords: dict[str, str] = {}
        self.used: set[str] = set()
        self.address: dict[str, str] = {}
        for number, name in enumerate(NAMES):
            region = regions[number % 3]
            countries, offset = REGIONS[region]
            home = rng.choice(countries)
            password = "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(14))
            secret = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(32))
            self.home[name], self.region[name], self.offset[name] = home, region, offset
            self.passwords[name] = password
            self.accounts.append(Account(name, "customer", HASHER.hash(password), home, secret))
            self.address[name] = self.fresh(home)
            self.accounts[-1].known_addresses.add(self.address[name])

    def fresh(self, country: str) -> str:
        """An address of ``country`` nobody in this day has used yet."""
        pool = [a for a in addresses(country) if a not in self.used]
        chosen = self.rng.choice(pool)
        self.used.add(chosen)
        return chosen

    def abroad(self, name: str) -> str:
        """A country in another region than ``name``'s."""
        others = [r for r in REGIONS if r != self.region[name]]
        return self.rng.choice(REGIONS[self.rng.choice(others)][0])

    def local(self, name: str, hour: float) -> float:
        """The day's timestamp of ``hour`` o'clock in ``name``'s home zone."""
        return DAY + (hour - self.offset[name]) * HOUR


def day(seed: int) -> Day:
    """The day of traffic made from ``seed`` (the same seed, the same day)."""
    make = Maker(seed)
    rng = make.rng
    names = list(NAMES)
    rng.shuffle(names)
    # Every special role goes to different people.
    forgetful, retry_a, retry_b, traveller = names[:4]
    replay_a, replay_b, travel_a, travel_b, brute_a, brute_b = names[4:10]
    result = Day(seed, make.accounts, make.passwords, [])
    steps = result.steps
    orders = {name: 102 + 2 * number for number, name in enumerate(sorted(NAMES), start=0)}

    def session(name: str, start: float, client: str, label: str = "normal") -> float:
        """A working session: login, an order or two, sometimes an expired token and a
        refresh, sometimes a logout. Returns when it ended."""
        agent = rng.choice(BROWSERS)
        at = start
        if rng.random() < 0.03:  # a typo in the username: an unknown user
            steps.append(Step(at, name, "login", name + "x", client, agent, make.passwords[name]))
            at += rng.uniform(5, 30)
        for _ in range(rng.choices((0, 1, 2), (0.84, 0.13, 0.03))[0]):  # typos
            steps.append(Step(at, name, "login", name, client, agent, make.passwords[name] + "1"))
            at += rng.uniform(5, 40)
        steps.append(
            Step(at, name, "login", name, client, agent, make.passwords[name], label=label)
        )
        for _ in range(rng.randint(1, 2)):
            at += rng.uniform(30, 600)
            other = rng.random() < 0.05  # a link to someone else's order: denied
            order = rng.choice(list(orders.values())) if other else orders[name]
            steps.append(Step(at, name, "api", name, client, agent, order=order))
        if rng.random() < 0.3:  # still at work 20 minutes on: the token has expired
            at = start + rng.uniform(16, 25) * 60
            steps.append(Step(at, name, "api", name, client, agent, order=orders[name]))
            at += 1
            steps.append(Step(at, name, "refresh", name, client, agent))
            at += rng.uniform(5, 60)
            steps.append(Step(at, name, "api", name, client, agent, order=orders[name]))
        if rng.random() < 0.5:
            at += rng.uniform(60, 900)
            steps.append(Step(at, name, "logout", name, client, agent))
        return at

    # -- normal users: one to three sessions in their office hours -------------------
    for name in NAMES:
        if name == traveller:
            continue
        for _ in range(rng.choice((1, 2, 2, 3))):
            session(name, make.local(name, rng.uniform(8, 17.5)), make.address[name])

    # -- decoys: what looks like an attack and is not ----------------------------------
    at = make.local(forgetful, rng.uniform(9, 16))
    for _ in range(4):  # four wrong passwords in two minutes, then the right one
        steps.append(
            Step(
                at,
                forgetful,
                "login",
                forgetful,
                make.address[forgetful],
                BROWSERS[0],
                make.passwords[forgetful] + "?",
            )
        )
        at += rng.uniform(10, 30)
    steps.append(
        Step(
            at,
            forgetful,
            "login",
            forgetful,
            make.address[forgetful],
            BROWSERS[0],
            make.passwords[forgetful],
        )
    )
    for name in (retry_a, retry_b):  # a mobile app resends a refresh it thinks was lost
        client, agent, phone = make.address[name], BROWSERS[2], f"{name}/phone"
        at = make.local(name, rng.uniform(9, 15))
        steps.append(Step(at, phone, "login", name, client, agent, make.passwords[name]))
        at += rng.uniform(300, 900)
        steps.append(Step(at, phone, "refresh", name, client, agent))
        steps.append(Step(at + rng.uniform(0.2, 1.5), phone, "retry_refresh", name, client, agent))
    # a real trip: a morning at home, an evening eleven hours later on another continent
    end = session(traveller, make.local(traveller, rng.uniform(7, 8)), make.address[traveller])
    session(traveller, end + rng.uniform(11, 13) * HOUR, make.fresh(make.abroad(traveller)))

    # -- credential stuffing: many addresses, a leaked list, one or two tries each -----
    start = DAY + rng.uniform(1, 21) * HOUR
    for _ in range(40):
        client, agent = make.fresh(rng.choice(list(make.home.values()))), rng.choice(BOTS)
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = start + rng.uniform(0, 15 * 60)
            if rng.random() < 0.7:
                who = f"{rng.choice(NAMES)}.{rng.choice(('smith', 'lee', 'kim', 'garcia'))}"
                who += str(rng.randint(1, 999))
            else:
                who = rng.choice(NAMES)
            steps.append(
                Step(
                    at,
                    client,
                    "login",
                    who,
                    client,
                    agent,
                    f"leak-{rng.randint(0, 10**6)}",
                    label="stuffing",
                )
            )
            result.mark("stuffing", client, at)

    # -- password spraying: one password, many users, slowly ----------------------------
    for _ in range(2):
        client, agent = make.fresh(rng.choice(list(make.home.values()))), rng.choice(BOTS)
        at = DAY + rng.uniform(0, 20) * HOUR
        for who in rng.sample(NAMES, rng.randint(12, 16)):
            steps.append(Step(at, client, "login", who, client, agent, SPRAYED, label="spraying"))
            result.mark("spraying", client, at)
            at += rng.uniform(4, 8) * 60

    # -- a slow brute force: one user, one guess every few minutes, for hours ----------
    for target in (brute_a, brute_b):
        client, agent = make.fresh(make.abroad(target)), rng.choice(BOTS)
        at = DAY + rng.uniform(0, 19) * HOUR
        for guess in range(rng.randint(45, 60)):
            steps.append(
                Step(
                    at,
                    client,
                    "login",
                    target,
                    client,
                    agent,
                    f"guess{guess:04d}",
                    label="brute_force",
                )
            )
            result.mark("brute_force", target, at)
            at += rng.uniform(150, 240)

    # -- a stolen refresh token, replayed from another network ---------------------------
    for victim, thief_first in ((replay_a, False), (replay_b, True)):
        client, agent = make.address[victim], BROWSERS[1]
        thief, stolen_from = f"thief-{victim}", make.fresh(make.abroad(victim))
        laptop = f"{victim}/laptop"  # a session of its own: the victim's others do not touch it
        start = make.local(victim, rng.uniform(9, 14))
        steps.append(Step(start, laptop, "login", victim, client, agent, make.passwords[victim]))
        steps.append(Step(start + 300, thief, "steal", victim, stolen_from, BOTS[0], victim=laptop))
        mine, theirs = (
            (start + 1200, start + 2400) if not thief_first else (start + 2400, start + 600)
        )
        steps.append(Step(mine, laptop, "refresh", victim, client, agent))
        steps.append(
            Step(theirs, thief, "replay_stolen", victim, stolen_from, BOTS[0], label="token_replay")
        )
        result.mark("token_replay", victim, start)
        result.mark("token_replay", victim, max(mine, theirs))

    # -- impossible travel: a login at home, then one an hour away on another continent --
    for victim in (travel_a, travel_b):
        start = make.local(victim, rng.uniform(9, 15))
        session(victim, start, make.address[victim])
        at = start + rng.uniform(20, 90) * 60
        steps.append(
            Step(
                at,
                f"intruder-{victim}",
                "login",
                victim,
                make.fresh(make.abroad(victim)),
                rng.choice(BROWSERS),
                make.passwords[victim],
                label="impossible_travel",
            )
        )
        result.mark("impossible_travel", victim, start)
        result.mark("impossible_travel", victim, at)

    steps.sort(key=lambda step: step.at)
    return result
