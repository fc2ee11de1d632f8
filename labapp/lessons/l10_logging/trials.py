"""The logins a risk decision is graded on: owners and attackers, all with the right password.

Normal logins come in fixed shares per day (so the friction budget means the same on every
seed): most from a known device at home in office hours; some from a new phone, from a trip
abroad, late at night; a few with all of a new device, a new address and the middle of the
night, which a careful decision may challenge. Every attacker holds the user's password:
from a credential-stuffing list (after failing on other accounts from the same address),
through a residential proxy in the user's own country at night, or after a phishing page,
from abroad in the daytime.
"""

from __future__ import annotations

from dataclasses import dataclass

from labapp.lessons.l10_logging.service import Account
from labapp.lessons.l10_logging.traffic import BOTS, BROWSERS, NAMES, Maker, Step

# profile -> how many of the 144 normal logins have it (the rest are "usual")
NORMAL_SHARES = {"new-device": 14, "trip": 7, "night": 7, "typo": 10, "new-device-night": 3}
ATTACKERS = {"stuffing-list": 20, "proxy-at-night": 10, "phished": 10}
LOGINS_PER_USER = 4


@dataclass(frozen=True)
class Trial:
    """One login with the right password: whose, and what the lab knows it to be."""

    steps: tuple[Step, ...]  # failed attempts first, the login with the right password last
    profile: str
    attack: bool


@dataclass
class Logins:
    seed: int
    accounts: list[Account]
    trials: list[Trial]


def logins(seed: int) -> Logins:
    make = Maker(seed)
    rng = make.rng
    device = {name: f"{rng.getrandbits(48):012x}" for name in NAMES}
    for account in make.accounts:
        account.known_devices.add(device[account.username])
    profiles = [p for p, n in NORMAL_SHARES.items() for _ in range(n)]
    profiles += ["usual"] * (len(NAMES) * LOGINS_PER_USER - len(profiles))
    rng.shuffle(profiles)
    owners = [name for name in NAMES for _ in range(LOGINS_PER_USER)]
    trials: list[Trial] = []

    def login(name: str, at: float, client: str, cookie: str | None, agent: str, **extra):
        return Step(
            at, name, "login", name, client, agent, make.passwords[name], device=cookie, **extra
        )

    for name, profile in zip(owners, profiles, strict=True):
        hour = rng.uniform(0.5, 5.5) if "night" in profile else rng.uniform(8, 18)
        at = make.local(name, hour)
        client, cookie = make.address[name], device[name]
        if profile in ("new-device", "new-device-night"):
            cookie = None
            if profile == "new-device-night" or rng.random() < 0.5:
                client = make.fresh(make.home[name])
        if profile == "trip":
            client = make.fresh(make.abroad(name))
        agent = rng.choice(BROWSERS)
        steps = []
        if profile == "typo":
            for _ in range(rng.randint(1, 2)):
                steps.append(
                    Step(
                        at - rng.uniform(10, 60),
                        name,
                        "login",
                        name,
                        client,
                        agent,
                        make.passwords[name] + "1",
                        device=cookie,
                    )
                )
            steps.sort(key=lambda step: step.at)
        steps.append(login(name, at, client, cookie, agent, answers_totp=True))
        trials.append(Trial(tuple(steps), profile, attack=False))

    victims = [name for name in NAMES for _ in range(2)]
    rng.shuffle(victims)
    kinds = [kind for kind, n in ATTACKERS.items() for _ in range(n)]
    for victim, kind in zip(victims, kinds, strict=False):
        if kind == "proxy-at-night":
            at = make.local(victim, rng.uniform(0.5, 5.5))
            client, agent = make.fresh(make.home[victim]), rng.choice(BROWSERS)
        else:
            at = make.local(victim, rng.uniform(8, 18))
            client = make.fresh(make.abroad(victim))
            agent = rng.choice(BOTS if kind == "stuffing-list" else BROWSERS)
        steps = []
        if kind == "stuffing-list":  # the same list failed on other accounts first
            for tried in range(rng.randint(3, 5)):
                who = f"{rng.choice(NAMES)}.{rng.choice(('smith', 'lee', 'kim'))}{tried}"
                steps.append(
                    Step(
                        at - rng.uniform(30, 600),
                        victim,
                        "login",
                        who,
                        client,
                        agent,
                        f"leak-{rng.randint(0, 10**6)}",
                    )
                )
            steps.sort(key=lambda step: step.at)
        steps.append(
            Step(
                at,
                f"attacker-{victim}",
                "login",
                victim,
                client,
                agent,
                make.passwords[victim],
                label="attack",
            )
        )
        trials.append(Trial(tuple(steps), kind, attack=True))

    trials.sort(key=lambda trial: trial.steps[-1].at)
    return Logins(seed, make.accounts, trials)
