"""Lesson 03's rows about telling accounts apart: by the answer, and by the work behind it.

An unknown name, a new account and an old one must get the same status and body for a
wrong password, and cost the same argon2 work; an old sha1 digest must be compared in
constant time. Work is counted (work.py), never timed: a wall-clock row fails correct code
on a busy machine and passes wrong code on a quiet one.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from labapp.engine.grading import Observed
from labapp.lessons.l03_passwords.hashes import legacy_sha1
from labapp.lessons.l03_passwords.traffic import accepted, insert, login, register
from labapp.lessons.l03_passwords.work import Work, counting

GUESS = "Guess-1234"  # one wrong password for every try: a cache would show


def _tries(lab: Any, http: httpx.Client, kinds: dict[str, list[str]]) -> dict[str, list[Any]]:
    """One wrong login per name, each with the work it did: {kind: [(response, Work)]}."""
    seen: dict[str, list[Any]] = {}
    with counting(lab.state.hooks.values()) as tally:
        for kind, names in kinds.items():
            for name in names:
                mark = tally.mark()
                response = login(http, name, GUESS)
                seen.setdefault(kind, []).append((response, tally.since(mark)))
    return seen


def attack_enumerate_users(lab: Any, http: httpx.Client) -> Observed:
    """Unknown user vs known user with a wrong password: status, body, and the work done.

    Known users of both kinds: new (argon2id) and from before the defense (sha1). An old
    account that skips the slow hash answers faster, and gives itself away as surely as a
    message does; the grader counts the argon2 computations rather than timing them.
    """
    kinds = {
        "an unknown user": [f"nobody-{secrets.token_hex(5)}" for _ in range(2)],
        "a new account": [register(http)[0] for _ in range(2)],
        "an old sha1 account": [insert(lab, legacy_sha1, "old")[0] for _ in range(2)],
    }
    seen = _tries(lab, http, kinds)
    unknown, _ = seen["an unknown user"][0]
    for kind, tries in seen.items():
        for response, _ in tries:
            if response.status_code >= 500:
                return Observed(False, response.status_code, f"{kind}: a server error")
            if response.status_code == 429:
                why = "429 after at most 2 failures per name (one throttle_key for everyone?)"
                return Observed(True, 429, f"{kind}: {why}, so enumeration was not ruled out")
            if (response.status_code, response.content) != (unknown.status_code, unknown.content):
                return Observed(
                    True,
                    response.status_code,
                    f"{kind} answers {response.status_code} {response.text[:60]}; "
                    f"an unknown user {unknown.status_code} {unknown.text[:60]}: "
                    "failure_response gives the two reasons different answers",
                )
    real: Work = seen["a new account"][0][1]
    if not real.argon2:
        return Observed(
            True,
            unknown.status_code,
            "no argon2 work was seen when a wrong password met an argon2id hash: "
            "verify_password must check it through argon2-cffi (PasswordHasher or "
            "argon2.low_level), whose work the grader counts",
        )
    for kind, tries in seen.items():
        for _, work in tries:
            if work.argon2 != real.argon2:
                return Observed(
                    True,
                    unknown.status_code,
                    f"same answers, unequal work in verify_password: a new account costs "
                    f"{real.describe()}; {kind} cost {work.describe()}, so it answers at "
                    "another speed (DUMMY_HASH: made once, by HASHER, verified once)",
                )
    return Observed(
        False, unknown.status_code, f"same answers and the same work: {real.describe()}"
    )


def attack_legacy_compare(lab: Any, http: httpx.Client) -> Observed:
    """An old sha1 account and a wrong password: are the digests compared in constant time?"""
    username, _ = insert(lab, legacy_sha1, "old")
    response, work = _tries(lab, http, {"old": [username]})["old"][0]
    if accepted(response):
        return Observed(True, 200, "a wrong password was accepted")
    if response.status_code >= 429:  # a 5xx fails the row by itself
        return Observed(False, response.status_code, "the wrong password was never compared")
    if work.compares == 0:
        return Observed(
            True,
            response.status_code,
            "verify_password compared the sha1 digests without hmac.compare_digest: == stops "
            "at the first difference, so its time tells how much of the stored hash a guess "
            "matched",
        )
    return Observed(False, response.status_code, "compared with hmac.compare_digest")
