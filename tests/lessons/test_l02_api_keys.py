"""Lesson 02: every key attack breaches the weak API; the solution stops all; wrong ones fail."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import urandom
from typing import Any

import pytest

from labapp import DefenseBreached, Lab
from labapp.engine.grading import run_item
from labapp.lessons.common import session_token
from labapp.lessons.l02_api_keys import LESSON
from labapp.lessons.l02_api_keys.entropy import structure
from labapp.lessons.l02_api_keys.keyformat import well_formed
from labapp.lessons.l02_api_keys.weak import DELAY_PER_CHAR, weak_equals, weak_find_key
from tests.conftest import ROOT, solution_namespace

HOOKS = ("mint_key", "store_key", "find_key", "extract_key", "allowed")
READ, WRITE = "shipments:read", "shipments:write"


def solution() -> dict:
    """The five hooks the solution notebook defines."""
    namespace = solution_namespace("02-api-keys.ipynb", "mint_key")
    return {name: namespace[name] for name in HOOKS}


def _get(lab: Lab, key: str):
    return lab.client.get("/shipments", headers={"X-API-Key": key})


def _admin(lab: Lab) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(lab.state, 'carol')}"}


@pytest.mark.parametrize("attack", [a.id for a in LESSON.attacks])
def test_each_attack_breaches_the_weak_api(lab02: Lab, attack: str) -> None:
    """Against the shipped hooks, every attack of the lesson gets through."""
    item = next(a for a in LESSON.attacks if a.id == attack)
    assert not run_item(lab02, item).passed


def test_a_key_harvested_from_the_access_log_reveals_the_flag(lab02: Lab) -> None:
    """The proxy log holds a partner's key in a URL; it works in the header."""
    log = "\n".join(lab02.client.get("/ops/access-log").json())
    key = re.search(r"api_key=([^&\s]+)", log)[1]
    lab02.check_flag("key-in-url", _get(lab02, key).json()["flag"])


def test_a_key_from_the_leaked_backup_reveals_the_flag(lab02: Lab) -> None:
    """The backup is the keys table in plaintext: hooli's key works as-is."""
    rows = lab02.client.get("/backup/keys.json").json()
    hooli = next(row["key"] for row in rows if row["partner"] == "hooli")
    lab02.check_flag("plaintext-at-rest", _get(lab02, hooli).json()["flag"])


def test_the_key_before_yours_reveals_the_flag(lab02: Lab) -> None:
    """Sequential keys: the learner's number minus one belongs to another partner."""
    number = int(lab02.users[0]["api_key"].removeprefix("pk_"))
    lab02.check_flag("guessable-key", _get(lab02, f"pk_{number - 1}").json()["flag"])


def test_the_device_key_reveals_the_flag(lab02: Lab) -> None:
    """The device's short key earns the flag (the notebook recovers it by timing)."""
    device = lab02.store.one("SELECT key_id FROM api_keys WHERE partner = 'wayne-iot'")["key_id"]
    assert re.fullmatch(r"iot-[0-9a-f]{4}", device)
    lab02.check_flag("timing-leak", _get(lab02, device).json()["flag"])


def test_a_read_only_key_writing_reveals_the_flag(lab02: Lab) -> None:
    """The learner's own read-only key books a shipment on the weak API."""
    response = lab02.client.post(
        "/shipments", headers={"X-API-Key": lab02.users[0]["api_key"]}, json={"destination": "x"}
    )
    lab02.check_flag("over-broad-key", response.json()["flag"])


def test_legitimate_partners_get_no_flag(lab02: Lab) -> None:
    """Reading with one's own key, or acme's, earns nothing."""
    assert "flag" not in _get(lab02, lab02.users[0]["api_key"]).json()
    acme = lab02.store.one("SELECT key_id FROM api_keys WHERE partner = 'acme'")["key_id"]
    assert "flag" not in _get(lab02, acme).json()


def test_the_solution_stops_every_attack_and_keeps_partners_working(lab02: Lab) -> None:
    """The solution notebook's five hooks pass every row, and again when re-run."""
    lab02.defend(**solution())
    assert lab02.grade().passed
    assert lab02.grade().passed  # learners re-run grader cells: no state may trip it


def test_an_admin_minting_a_key_for_a_victim_earns_no_flag(lab02: Lab) -> None:
    """Flags belong to the victims' original keys, not to keys minted for them later."""
    minted = lab02.client.post(
        "/admin/keys", headers=_admin(lab02), json={"partner": "wayne-iot", "scopes": [READ]}
    ).json()["key"]
    assert "flag" not in _get(lab02, minted).json()
    assert all("token" not in user for user in lab02.users)  # no admin token in the card


def test_minted_keys_are_well_formed_unique_and_never_stored(lab02: Lab) -> None:
    """Keys from the solution's mint carry 128 random bits and a checksum; only hashes rest."""
    hooks = solution()
    keys = {hooks["mint_key"]() for _ in range(200)}
    assert len(keys) == 200 and all(well_formed(key) for key in keys)
    key = next(iter(keys))
    assert hooks["store_key"](key)["stored"] == hashlib.sha256(key.encode()).hexdigest()
    assert not well_formed(key[:-1] + ("0" if key[-1] != "0" else "1"))


def test_a_csprng_mint_never_shows_structure() -> None:
    """300 batches of 50 solution keys: the structure checks stay silent (no flaky rows)."""
    mint = solution()["mint_key"]
    assert [
        problem for _ in range(300) if (problem := structure([mint() for _ in range(50)]))
    ] == []


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (lambda n: uuid.uuid4().hex, "the secret's character 13"),  # the version nibble
        (lambda n: f"{time.time_ns():032x}", "the secret's character 1"),
        (lambda n: f"{n:032x}", "the secret's character 1"),
        (lambda n: f"{secrets.randbelow(10**32):032d}", "never use"),
    ],
    ids=["uuid4", "clock", "counter", "decimal"],
)
def test_structure_names_what_a_csprng_would_not_make(make, found: str) -> None:
    """A fixed nibble, a clock's or counter's slow digits, a short alphabet: each is named."""
    keys = [_key(secrets.token_hex(4), make(n)) for n in range(50)]
    assert found in (structure(keys) or "")


# -- the solution's building blocks, for the defenses below ---------------------------------

KEY_PATTERN = re.compile(r"ak_([0-9a-f]{8})_[0-9a-f]{32}_([0-9a-f]{8})")


def checksum(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


def _key(key_id: str, secret: str) -> str:
    body = f"ak_{key_id}_{secret}"
    return f"{body}_{checksum(body)}"


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _checked_id(presented: str) -> str | None:
    """The key id of a well-formed key whose checksum fits, else None."""
    match = KEY_PATTERN.fullmatch(presented)
    return match[1] if match and match[2] == checksum(presented[:-9]) else None


def _with(**overrides: Callable[..., Any]) -> dict[str, Callable[..., Any]]:
    hooks = solution()
    hooks.update(overrides)
    return hooks


def hashed_with(digest: Callable[[str], str]) -> dict[str, Callable[..., Any]]:
    """A store_key and a find_key that agree on ``digest``: a working, consistent defense."""

    def store_key(key):
        return {"key_id": key[3:11], "stored": digest(key)}

    def find_key(presented, keys):
        key_id = _checked_id(presented)
        record = keys.by_id(key_id) if key_id else None
        if not record or record["revoked"]:
            return None
        return record if hmac.compare_digest(digest(presented), record["stored"]) else None

    return {"store_key": store_key, "find_key": find_key}


def _secret() -> str:
    return secrets.token_hex(16)


def minted_from(key_id: Callable[[], str], secret: Callable[[], str]) -> Callable[[], str]:
    def mint_key():
        return _key(key_id(), secret())

    return mint_key


def finding(lookup: Callable[..., Any]) -> Callable[..., Any]:
    """A find_key that checks format and checksum, then ``lookup(presented, key_id, keys)``."""

    def find_key(presented, keys):
        key_id = _checked_id(presented)
        return lookup(presented, key_id, keys) if key_id else None

    return find_key


def _live(record):
    return record if record and not record["revoked"] else None


# -- wrong defenses: each breaks a rule -------------------------------------------------------


def checksum_of_the_secret_only():
    body = f"ak_{secrets.token_hex(4)}_{secrets.token_hex(16)}"
    return f"{body}_{checksum(body[12:])}"


def query_too(req):
    return req.headers.get("x-api-key") or req.query.get("api_key")


def merged_request(req):
    """'Wherever the client put it': the query and the headers as one dict."""
    return {**req.query, **req.headers}.get("x-api-key")


def cookie_too(req):
    cookies = dict(
        part.strip().split("=", 1)
        for part in req.headers.get("cookie", "").split(";")
        if "=" in part
    )
    return req.headers.get("x-api-key") or cookies.get("api_key")


def bearer_too(req):
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    return req.headers.get("x-api-key") or (value if scheme.lower() == "bearer" else None)


def short_secret():
    return _key(secrets.token_hex(4), secrets.token_hex(8))  # 64 bits


def plaintext_store(key):
    return {"key_id": key[3:11], "stored": key}


def plaintext_find(presented, keys):
    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    return record if record and not record["revoked"] and record["stored"] == presented else None


def early_exit_find(presented, keys):
    """Plaintext at rest and the lab's own early-exit compare: the leak the lesson exploits."""
    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    if record is None or record["revoked"]:
        return None
    return record if weak_equals(presented, record["stored"]) else None


def slow_loop_find(presented, keys):
    """The same leak, hand-written: a character loop that sleeps like the lab's hardware."""
    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    if record is None or record["revoked"] or len(presented) != len(record["stored"]):
        return None
    for a, b in zip(presented, record["stored"], strict=True):
        if a != b:
            return None
        time.sleep(DELAY_PER_CHAR)
    return record


def id_only_find(presented, keys):
    """Finds the record by its public id and never compares the secret."""
    key_id = _checked_id(presented)
    return _live(keys.by_id(key_id)) if key_id else None


def secret_only_store(key):
    return {"key_id": key[3:11], "stored": key[12:44]}


def secret_only_find(presented, keys):
    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    ok = record and not record["revoked"] and record["stored"] == presented[12:44]
    return record if ok else None


def random_mint():
    import random

    return _key(f"{random.getrandbits(32):08x}", f"{random.getrandbits(128):032x}")


def legacy_fallback_find(presented, keys):
    """'Backward compatibility': old keys keep working through the old lookup."""
    return solution()["find_key"](presented, keys) or weak_find_key(presented, keys)


def device_fallback_find(presented, keys):
    """'The devices cannot be updated': their old keys alone keep working."""
    if presented.startswith("iot-"):
        return next((r for r in keys.all() if r["stored"] == presented), None)
    return solution()["find_key"](presented, keys)


def ignores_revocation(presented, keys):
    key_id = _checked_id(presented)
    record = keys.by_id(key_id) if key_id else None
    return record if record and hmac.compare_digest(sha256(presented), record["stored"]) else None


def equals_compare(presented, keys):
    key_id = _checked_id(presented)
    record = _live(keys.by_id(key_id)) if key_id else None
    return record if record and sha256(presented) == record["stored"] else None


def loop_compare(presented, keys):
    """compare_digest rewritten by hand, with an early exit."""
    key_id = _checked_id(presented)
    record = _live(keys.by_id(key_id)) if key_id else None
    if record is None:
        return None
    for a, b in zip(sha256(presented), record["stored"], strict=True):
        if a != b:
            return None
    return record


def bytes_equals_compare(presented, keys):
    key_id = _checked_id(presented)
    record = _live(keys.by_id(key_id)) if key_id else None
    ok = record and hashlib.sha256(presented.encode()).hexdigest().encode() == (
        record["stored"].encode()
    )
    return record if ok else None


def lookup_then_checksum(presented, keys):
    """The record first, the checksum after: every typo and guess costs a query."""
    match = KEY_PATTERN.fullmatch(presented)
    record = _live(keys.by_id(match[1])) if match else None
    if record is None or match[2] != checksum(presented[:-9]):
        return None
    return record if hmac.compare_digest(sha256(presented), record["stored"]) else None


def no_checksum_check(presented, keys):
    """The digest compare refuses a typo anyway... after a lookup."""
    match = KEY_PATTERN.fullmatch(presented)
    record = _live(keys.by_id(match[1])) if match else None
    return record if record and hmac.compare_digest(sha256(presented), record["stored"]) else None


def checksum_without_format(presented, keys):
    """The checksum is checked, the format is not: any prefix, any length gets a lookup."""
    if len(presented) < 20 or presented[-8:] != checksum(presented[:-9]):
        return None
    record = _live(keys.by_id(presented[3:11]))
    return record if record and hmac.compare_digest(sha256(presented), record["stored"]) else None


def scans_every_key(presented, keys):
    """Checksum first, then a scan of the whole table instead of a lookup by id."""
    if _checked_id(presented) is None:
        return None
    digest = sha256(presented)
    return next(
        (r for r in keys.all() if not r["revoked"] and hmac.compare_digest(digest, r["stored"])),
        None,
    )


def made_up_record(presented, keys):
    """Returns a record of its own making (revocation 'cleared'), not the one keys gave."""
    record = id_only_find(presented, keys) or (
        keys.by_id(_checked_id(presented)) if _checked_id(presented) else None
    )
    if record and hmac.compare_digest(sha256(presented), record["stored"]):
        return {**record, "revoked": False, "scopes": [READ, WRITE]}
    return None


def cached_find() -> Callable[..., Any]:
    """Keeps each record it looked up, so a key revoked after its first use still works."""
    cache: dict[str, Any] = {}

    def find_key(presented, keys):
        key_id = _checked_id(presented)
        if key_id is None:
            return None
        record = cache.setdefault(key_id, keys.by_id(key_id))
        if record is None or record["revoked"]:
            return None
        return record if hmac.compare_digest(sha256(presented), record["stored"]) else None

    return find_key


def only_post_needs_write(record, method, route):
    return ("shipments:write" if method == "POST" else "shipments:read") in record["scopes"]


def get_is_free(record, method, route):
    return method == "GET" or "shipments:write" in record["scopes"]


def write_implies_read(record, method, route):
    scopes = record["scopes"]
    return "shipments:write" in scopes or (method == "GET" and "shipments:read" in scopes)


def implicit_none(record, method, route):
    """Says True where allowed and falls off the end (None) everywhere else."""
    if method == "GET" and "shipments:read" in record["scopes"]:
        return True
    if method in ("POST", "DELETE") and "shipments:write" in record["scopes"]:
        return True


def returns_the_scopes(record, method, route):
    needed = "shipments:read" if method == "GET" else "shipments:write"
    return [scope for scope in record["scopes"] if scope == needed]


def half_used_twice():
    raw = secrets.token_hex(20)
    return _key(raw[:8], raw[8:24] * 2)


_clock_ids = itertools.count(int(time.time()))
_counter = itertools.count(1)
_seeded = __import__("random").Random(time.time())  # a private generator, seeded by the clock


# -- every rule the defend cells state, and the row that enforces it -------------------------


@dataclass(frozen=True)
class Rule:
    text: str  # the rule as the notebook (or a defend hint) states it
    row: str  # the grader row (attack or check id) that enforces it
    wrong: Callable[[], dict[str, Callable[..., Any]]]  # the solution with this rule broken


RULES = [
    Rule(
        "mint_key: a key of the format ak_<8 hex>_<32 hex>_<8 hex>",
        "guessable-key",
        lambda: _with(mint_key=lambda: "sk" + solution()["mint_key"]()[2:]),
    ),
    Rule(
        "the checksum is crc32 of everything before it ('ak_<id>_<secret>')",
        "guessable-key",
        lambda: _with(mint_key=checksum_of_the_secret_only),
    ),
    Rule(
        "the id and the secret from secrets",
        "predictable-mint",
        lambda: _with(mint_key=minted_from(lambda: f"{int(time.time()):08x}", _secret)),
    ),
    Rule(
        "... never from uuid1",
        "predictable-mint",
        lambda: _with(mint_key=minted_from(lambda: secrets.token_hex(4), lambda: uuid.uuid1().hex)),
    ),
    Rule(
        "128 bits of secret",
        "predictable-mint",
        lambda: _with(mint_key=minted_from(lambda: secrets.token_hex(4), lambda: uuid.uuid4().hex)),
    ),
    Rule(
        "store_key: key_id is the 8-hex id",
        "weak-hash",
        lambda: _with(store_key=lambda key: {"key_id": key[:11], "stored": sha256(key)}),
    ),
    Rule(
        "stored is a SHA-256 hex digest of the whole key",
        "weak-hash",
        lambda: _with(**hashed_with(lambda key: sha256(key[12:44]))),
    ),
    Rule(
        "never the key, nor its secret part, nor an encoding of it (base64 is not a hash)",
        "plaintext-at-rest",
        lambda: _with(**hashed_with(lambda key: base64.b64encode(key.encode()).decode())),
    ),
    Rule(
        "SHA-256 rather than MD5 or SHA-1",
        "weak-hash",
        lambda: _with(**hashed_with(_digest("md5"))),
    ),
    Rule(
        "find_key returns the key's record or None",
        "partner-reads",
        lambda: _with(find_key=lambda presented, keys: True),
    ),
    Rule(
        "... the record as keys gave it",
        "partner-reads",
        lambda: _with(find_key=made_up_record),
    ),
    Rule(
        "check the format and the checksum first",
        "checksum-first",
        lambda: _with(find_key=lookup_then_checksum),
    ),
    Rule(
        "fetch the record with keys.by_id(key_id)",
        "checksum-first",
        lambda: _with(find_key=scans_every_key),
    ),
    Rule("refuse a revoked record", "revoked-key", lambda: _with(find_key=ignores_revocation)),
    Rule(
        "compare digests with hmac.compare_digest, not ==",
        "compare-digest",
        lambda: _with(find_key=equals_compare),
    ),
    Rule("... not a loop", "compare-digest", lambda: _with(find_key=loop_compare)),
    Rule(
        "legacy keys of the old format must stop working",
        "legacy-key",
        lambda: _with(find_key=device_fallback_find),
    ),
    Rule(
        "(grader) forged secrets must fail",
        "timing-leak",
        lambda: _with(find_key=id_only_find),
    ),
    Rule(
        "(grader) ... and in the same time",
        "timing-leak",
        lambda: _with(store_key=plaintext_store, find_key=early_exit_find),
    ),
    Rule("extract_key: never from req.query", "key-in-url", lambda: _with(extract_key=query_too)),
    Rule("... never from a cookie", "key-in-url", lambda: _with(extract_key=cookie_too)),
    Rule(
        "... from the X-API-Key header and nowhere else",
        "key-in-url",
        lambda: _with(extract_key=bearer_too),
    ),
    Rule("allowed: GET needs shipments:read", "over-broad-key", lambda: _with(allowed=get_is_free)),
    Rule(
        "POST and DELETE need shipments:write",
        "over-broad-key",
        lambda: _with(allowed=only_post_needs_write),
    ),
    Rule(
        "allowed returns True or False",
        "partner-reads",
        lambda: _with(allowed=returns_the_scopes),
    ),
]


def _breached(lab: Lab, hooks: dict[str, Callable[..., Any]]) -> DefenseBreached:
    lab.defend(**hooks)
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    return caught.value


@pytest.mark.parametrize("rule", RULES, ids=[rule.text for rule in RULES])
def test_each_rule_the_notebook_states_fails_its_row_when_broken(lab02: Lab, rule: Rule) -> None:
    """The solution with exactly this rule broken fails the row that enforces it, by name."""
    breach = _breached(lab02, rule.wrong())
    assert rule.row in {failure.id for failure in breach.report.failures}
    assert f"] {rule.row} (" in str(breach)  # "✗ [attack] row-id (why): ..."


def test_every_row_enforces_a_rule() -> None:
    """No row is without a stated rule, and no rule points at a row that does not exist."""
    rows = {item.id for item in (*LESSON.attacks, *LESSON.checks)}
    assert {rule.row for rule in RULES} <= rows
    assert rows - {rule.row for rule in RULES} <= {"partner-writes", "rotation"}


# -- the classes of wrong defense that used to pass, and their neighbours ---------------------


def _digest(name: str, part: slice = slice(None), **options: Any) -> Callable[[str], str]:
    return lambda key: hashlib.new(name, key[part].encode(), **options).hexdigest()


WRONG = {
    # at rest: another hash than the one taught, or a hash of part of the key
    "MD5 at rest": (lambda: hashed_with(_digest("md5")), "weak-hash"),
    "SHA-1 at rest": (lambda: hashed_with(_digest("sha1")), "weak-hash"),
    "SHA-512 at rest": (lambda: hashed_with(_digest("sha512")), "weak-hash"),
    "SHA3-256 at rest (64 hex too)": (lambda: hashed_with(_digest("sha3_256")), "weak-hash"),
    "BLAKE2b-256 at rest (64 hex too)": (
        lambda: hashed_with(_digest("blake2b", digest_size=32)),
        "weak-hash",
    ),
    "SHA-256 of the secret only": (
        lambda: hashed_with(_digest("sha256", slice(12, 44))),
        "weak-hash",
    ),
    "SHA-256 without the checksum": (
        lambda: hashed_with(_digest("sha256", slice(None, -9))),
        "weak-hash",
    ),
    "SHA-256 of the id alone (32 bits)": (
        lambda: hashed_with(_digest("sha256", slice(3, 11))),
        "weak-hash",
    ),
    "SHA-256, truncated to 32 hex": (lambda: hashed_with(lambda k: sha256(k)[:32]), "weak-hash"),
    "SHA-256 in base64": (
        lambda: hashed_with(
            lambda k: base64.b64encode(hashlib.sha256(k.encode()).digest()).decode()
        ),
        "weak-hash",
    ),
    "Python's hash() at rest": (lambda: hashed_with(lambda k: f"{hash(k):x}"), "weak-hash"),
    "plaintext at rest": (
        lambda: dict(store_key=plaintext_store, find_key=plaintext_find),
        "plaintext-at-rest",
    ),
    "only the secret part at rest": (
        lambda: dict(store_key=secret_only_store, find_key=secret_only_find),
        "plaintext-at-rest",
    ),
    "the key reversed at rest": (lambda: hashed_with(lambda k: k[::-1]), "plaintext-at-rest"),
    "the key hex-encoded at rest": (
        lambda: hashed_with(lambda k: k.encode().hex()),
        "plaintext-at-rest",
    ),
    # minting: predictable beyond a seeded `random`
    "minted from random": (lambda: dict(mint_key=random_mint), "predictable-mint"),
    "64-bit secret": (lambda: dict(mint_key=short_secret), "predictable-mint"),
    "id from the clock": (
        lambda: dict(mint_key=minted_from(lambda: f"{next(_clock_ids):08x}", _secret)),
        "predictable-mint",
    ),
    "secret from time_ns": (
        lambda: dict(
            mint_key=minted_from(lambda: secrets.token_hex(4), lambda: f"{time.time_ns():032x}")
        ),
        "predictable-mint",
    ),
    "secret: a hashed clock (looks random)": (
        lambda: dict(
            mint_key=minted_from(
                lambda: secrets.token_hex(4), lambda: sha256(str(time.time_ns()))[:32]
            )
        ),
        "predictable-mint",
    ),
    "secret: a hashed counter": (
        lambda: dict(
            mint_key=minted_from(
                lambda: secrets.token_hex(4), lambda: sha256(str(next(_counter)))[:32]
            )
        ),
        "predictable-mint",
    ),
    "id from a counter, 20 bytes drawn": (
        lambda: dict(
            mint_key=minted_from(
                lambda: f"{next(_counter) + 0x1000:08x}", lambda: secrets.token_hex(20)[:32]
            )
        ),
        "predictable-mint",
    ),
    "secret from uuid1": (
        lambda: dict(mint_key=minted_from(lambda: secrets.token_hex(4), lambda: uuid.uuid1().hex)),
        "predictable-mint",
    ),
    "a private Random seeded by the clock": (
        lambda: dict(
            mint_key=minted_from(
                lambda: f"{_seeded.getrandbits(32):08x}", lambda: f"{_seeded.getrandbits(128):032x}"
            )
        ),
        "predictable-mint",
    ),
    "64 random bits, repeated to fill 32 hex": (
        lambda: dict(
            mint_key=minted_from(lambda: secrets.token_hex(4), lambda: secrets.token_hex(8) * 2)
        ),
        "predictable-mint",
    ),
    "20 bytes drawn, half of the secret used twice": (
        lambda: dict(mint_key=half_used_twice),
        "predictable-mint",
    ),
    # lookups before the checksum
    "lookup, then checksum": (lambda: dict(find_key=lookup_then_checksum), "checksum-first"),
    "no checksum check at all": (lambda: dict(find_key=no_checksum_check), "checksum-first"),
    "checksum but no format check": (
        lambda: dict(find_key=checksum_without_format),
        "checksum-first",
    ),
    "a scan of keys.all()": (lambda: dict(find_key=scans_every_key), "checksum-first"),
    # the rest of the lesson
    "keys still accepted in the URL": (lambda: dict(extract_key=query_too), "key-in-url"),
    "query and headers merged": (lambda: dict(extract_key=merged_request), "key-in-url"),
    "early-exit compare of plaintext": (
        lambda: dict(store_key=plaintext_store, find_key=slow_loop_find),
        "timing-leak",
    ),
    "legacy keys kept for compatibility": (
        lambda: dict(find_key=legacy_fallback_find),
        "legacy-key",
    ),
    "secret never compared": (lambda: dict(find_key=id_only_find), "timing-leak"),
    "digests compared with a loop": (lambda: dict(find_key=loop_compare), "compare-digest"),
    "digests compared as bytes with ==": (
        lambda: dict(find_key=bytes_equals_compare),
        "compare-digest",
    ),
    "a record of its own making": (lambda: dict(find_key=made_up_record), "revoked-key"),
    "records cached across requests": (lambda: dict(find_key=cached_find()), "revoked-key"),
    "revocation ignored": (lambda: dict(find_key=ignores_revocation), "revoked-key"),
    "scopes ignored": (lambda: dict(allowed=lambda record, method, route: True), "over-broad-key"),
    "DELETE needs only read": (lambda: dict(allowed=only_post_needs_write), "over-broad-key"),
    "write implies read": (lambda: dict(allowed=write_implies_read), "over-broad-key"),
    "None for 'no'": (lambda: dict(allowed=implicit_none), "over-broad-key"),
    "denies every key": (lambda: dict(find_key=lambda presented, keys: None), "partner-reads"),
}


@pytest.mark.parametrize("mistake", list(WRONG))
def test_the_grader_catches_a_plausible_wrong_defense(lab02: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names it."""
    overrides, row = WRONG[mistake]
    breach = _breached(lab02, _with(**overrides()))
    assert row in {failure.id for failure in breach.report.failures}


def test_a_hook_returning_the_wrong_type_is_named_in_the_report(lab02: Lab) -> None:
    """find_key returning True is reported as find_key's mistake, not a bare 500."""
    breach = _breached(lab02, _with(find_key=lambda presented, keys: True))
    assert "find_key() returned: must return a record from keys, or None" in str(breach.report)


def test_a_made_up_record_is_named_as_find_keys_mistake(lab02: Lab) -> None:
    """A record find_key edited (revocation cleared, scopes widened) is its failure, a 500."""
    breach = _breached(lab02, _with(find_key=made_up_record))
    assert "find_key() returned: must return a record from keys" in str(breach.report)


@pytest.mark.parametrize("allowed", [implicit_none, returns_the_scopes])
def test_an_allowed_that_returns_no_bool_is_named_in_the_report(lab02: Lab, allowed) -> None:
    """A decision must be True or False: None or a list is allowed()'s failure, said so."""
    breach = _breached(lab02, _with(allowed=allowed))
    assert "allowed() returned" in str(breach) and "it must return True or False" in str(breach)


# -- right defenses written differently: each must pass ---------------------------------------


def choice_mint():
    alphabet = "0123456789abcdef"
    return _key(
        "".join(secrets.choice(alphabet) for _ in range(8)),
        "".join(secrets.choice(alphabet) for _ in range(32)),
    )


def urandom_mint():
    """``from os import urandom`` at the top: the grader must still see where bytes come from."""
    raw = urandom(20).hex()
    return _key(raw[:8], raw[8:])


_issued: set[str] = set()
_system = __import__("random").SystemRandom()


def never_twice_mint():
    """Remembers what it minted and draws again on a repeat."""
    while (key := _key(secrets.token_hex(4), secrets.token_hex(16))) in _issued:
        pass
    _issued.add(key)
    return key


async def async_mint():
    await asyncio.sleep(0)
    return _key(uuid.uuid4().hex[:8], os.urandom(16).hex())


def split_find(presented, keys):
    """Parses with split, checks the checksum first, compares raw digests as bytes."""
    parts = presented.split("_")
    if len(parts) != 4 or parts[0] != "ak" or [len(p) for p in parts[1:]] != [8, 32, 8]:
        return None
    if not all(c in "0123456789abcdef" for c in "".join(parts[1:])):
        return None
    if parts[3] != checksum("_".join(parts[:3])):
        return None
    record = keys.by_id(parts[1])
    if record is None or record["revoked"] is True:
        return None
    expected = bytes.fromhex(record["stored"])
    return (
        record
        if hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), expected)
        else None
    )


def mapped_allowed(record, method, route):
    needs = {"GET": "shipments:read", "POST": "shipments:write", "DELETE": "shipments:write"}
    return method in needs and needs[method] in record["scopes"]


RIGHT = {
    "the solution": {},
    "secrets.choice per character": dict(mint_key=choice_mint),
    "random.SystemRandom": dict(
        mint_key=minted_from(
            lambda: f"{_system.getrandbits(32):08x}", lambda: f"{_system.getrandbits(128):032x}"
        )
    ),
    "from os import urandom": dict(mint_key=urandom_mint),
    "a mint that never repeats itself": dict(mint_key=never_twice_mint),
    "an async mint from uuid4 and os.urandom": dict(mint_key=async_mint),
    "digest().hex() at rest": dict(
        store_key=lambda key: {
            "key_id": key[3:11],
            "stored": hashlib.sha256(key.encode()).digest().hex(),
        }
    ),
    "split-parsing find_key, bytes compared": dict(find_key=split_find),
    "a header read that strips spaces": dict(
        extract_key=lambda req: (req.headers.get("x-api-key") or "").strip() or None
    ),
    "a table of scopes per method": dict(allowed=mapped_allowed),
}


@pytest.mark.parametrize("variant", list(RIGHT))
def test_a_right_defense_written_differently_passes(lab02: Lab, variant: str) -> None:
    """The grader judges what a defense does, not how it is spelled."""
    lab02.defend(**_with(**RIGHT[variant]))
    assert lab02.grade().passed


# -- hostile input: a 4xx, never a 500 ---------------------------------------------------------

HOSTILE_BODIES = [
    b'{"destination": "\\ud800"}',  # a lone surrogate
    b'{"destination": "' + b"x" * 2_000_000 + b'"}',
    b'{"destination": ' + b"9" * 5000 + b"}",
    b'{"destination": 18446744073709551616}',
    b'{"destination": "a", "destination": {"b": [1e400]}}',
    b"[" * 50_000 + b"]" * 50_000,
    b'{"destination": ["Oslo"]}',
    b"\xff\xfe not json",
]
HOSTILE_KEYS = [
    {"partner": "\ud800"},
    {"partner": "acme", "scopes": ["\udfff"]},
    {"partner": "acme", "scopes": ["shipments:admin"]},
    {"partner": "x" * 100_000},
    {"partner": 2**64},
    {"partner": "acme", "scopes": [READ] * 1000},
]


def _hostile_requests(lab: Lab, key: str) -> Iterator[tuple[str, str, dict, Any]]:
    """(method, url, headers, body) of hostile requests, anonymous and signed in."""
    signed = [{}, {"X-API-Key": key}]
    json_type = {"content-type": "application/json"}
    for headers in signed:
        for number in (2**63, 2**64, -(2**70), 10**30):
            yield "DELETE", f"/shipments/{number}", headers, None
        yield "DELETE", "/shipments/%ED%A0%80", headers, None
        for body in HOSTILE_BODIES:
            yield "POST", "/shipments", {**headers, **json_type}, body
        yield "GET", "/shipments?api_key=%ED%A0%80&x=" + "9" * 5000, headers, None
    for admin in ({}, _admin(lab)):
        for body in HOSTILE_KEYS:
            yield "POST", "/admin/keys", {**admin, **json_type}, json.dumps(body).encode()
        yield "POST", "/admin/keys/%ED%A0%80/revoke", admin, None
        yield "POST", f"/admin/keys/{'x' * 5000}/revoke", admin, None
    for value in (b"\xff" * 64, b"ak_" + b"0" * 5000, "ak_é".encode(), b"pk_" + b"9" * 400):
        yield "GET", "/shipments", {"X-API-Key": value}, None


@pytest.mark.parametrize("defended", [False, True], ids=["weak", "solution"])
def test_hostile_input_gets_a_4xx_never_a_500(lab02: Lab, defended: bool) -> None:
    """Huge integers, lone surrogates, deep or duplicate JSON, odd types: refused, not crashed."""
    if defended:
        lab02.defend(**solution())
    key = lab02.client.post(
        "/admin/keys", headers=_admin(lab02), json={"partner": "acme", "scopes": [READ, WRITE]}
    ).json()["key"]
    crashed = []
    for method, url, headers, body in _hostile_requests(lab02, key):
        status = lab02.client.request(method, url, headers=headers, content=body).status_code
        if status >= 500:
            crashed.append(f"{status} {method} {url[:40]} {str(body)[:40]} {list(headers)}")
    assert crashed == []


def test_malformed_keys_are_refused_with_401_not_500(lab02: Lab) -> None:
    """Garbage in the header gets a clean 401 from the defended API."""
    lab02.defend(**solution())
    for junk in (b"", b"ak_", b"x" * 5000, "ak_é".encode(), b"ak_zzzzzzzz_" + b"0" * 41):
        assert lab02.client.get("/shipments", headers={"X-API-Key": junk}).status_code == 401


# -- the timing row on a busy machine ---------------------------------------------------------


@contextmanager
def busy_cpus() -> Iterator[None]:
    """Two spinning processes per core for the duration: an oversubscribed machine."""
    count = 2 * (os.cpu_count() or 2)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def test_the_timing_verdicts_hold_on_an_oversubscribed_machine(lab02: Lab) -> None:
    """With 2 x cores busy, a constant-time compare still passes the timing row and an early
    exit still fails it, by its timing (not by a forged key getting in).

    Verdicts only: times are never asserted. (About 15 s: each early-exit request sleeps
    31 times, and each sleep waits for a busy CPU.)
    """
    timing = next(a for a in LESSON.attacks if a.id == "timing-leak")
    with busy_cpus():
        lab02.defend(**solution())
        right = [run_item(lab02, timing).passed for _ in range(2)]
        lab02.defend(**_with(store_key=plaintext_store, find_key=early_exit_find))
        wrong = run_item(lab02, timing)
    assert right == [True, True]
    assert not wrong.passed and "a forged secret was accepted" not in wrong.observed


# -- the rows name the cause: the hook, the direction, the fix --------------------------------


def _row(breach: DefenseBreached, row_id: str):
    return next(row for row in breach.report.failures if row.id == row_id)


def only_get_allowed(record, method, route):
    """'Partners mostly read': every write refused, whatever the scopes say."""
    return method == "GET" and "shipments:read" in record["scopes"]


def id_with_prefix_store(key):
    """key_id keeps the 'ak_' prefix: the solution's find_key (by the 8-hex id) never finds it."""
    return {"key_id": key[:11], "stored": sha256(key)}


def header_indexed(req):
    """req.headers['x-api-key']: a KeyError, so a 500, for every request without the header."""
    return req.headers["x-api-key"]


def split_find(presented, keys):
    """Splits before checking the format: a key with too few parts raises ValueError."""
    prefix, key_id, secret, crc = presented.split("_")
    fits = prefix == "ak" and len(key_id) == 8 and len(secret) == 32
    record = keys.by_id(key_id) if fits and crc == checksum(presented[:-9]) else None
    if not record or record["revoked"]:
        return None
    return record if hmac.compare_digest(sha256(presented), record["stored"]) else None


def test_an_allowed_that_refuses_writes_is_named_as_denying_too_much(lab02: Lab) -> None:
    """A read-write partner refused: the row names allowed(), its 403 and the direction."""
    row = _row(_breached(lab02, _with(allowed=only_get_allowed)), "partner-writes")
    assert "allowed() said False to a key with shipments:read shipments:write" in row.observed
    assert row.why().startswith("denied too much") and "(HTTP 403)" in row.observed
    assert "a 403 that allowed() did" in row.hint


def test_an_allowed_that_lets_a_write_key_read_is_named_as_granting_too_much(lab02: Lab) -> None:
    row = _row(_breached(lab02, _with(allowed=write_implies_read)), "over-broad-key")
    assert "allowed() let a key with shipments:write do GET /shipments" in row.observed
    assert row.why().startswith("granted too much")
    assert row.hint.startswith("allowed:")


def test_a_store_key_whose_id_find_key_cannot_find_is_named_on_both_rows(lab02: Lab) -> None:
    """Partners refused with 401: the legit row points at extract_key/find_key and the id;
    the weak-hash row names store_key's key_id."""
    breach = _breached(lab02, _with(store_key=id_with_prefix_store))
    reads = _row(breach, "partner-reads")
    assert "(HTTP 401)" in reads.observed and reads.why().startswith("denied too much")
    assert "is key_id the id find_key looks up?" in reads.observed
    assert "store_key keeps key_id 'ak_" in _row(breach, "weak-hash").observed


def test_a_crashing_extract_key_gets_the_rule_it_broke_not_only_must_not_raise(lab02: Lab) -> None:
    """A 500 on key-in-url: the row keeps the learner's line and adds the lesson's fix."""
    row = _row(_breached(lab02, _with(extract_key=header_indexed)), "key-in-url")
    assert "extract_key() raised: KeyError" in row.observed
    assert row.why().startswith("crashed (5xx)")
    assert "return req.headers.get('x-api-key'), None when it is missing" in row.observed
    assert "a 5xx is never a pass" in row.observed


def test_a_find_key_that_splits_before_checking_the_format_is_told_to_check_first(
    lab02: Lab,
) -> None:
    row = _row(_breached(lab02, _with(find_key=split_find)), "checksum-first")
    assert "find_key() raised: ValueError" in row.observed
    assert "fullmatch the format and check the checksum before you split" in row.observed


def test_a_legacy_fallback_is_blamed_on_find_key_not_on_the_row_it_shows_up_in(
    lab02: Lab,
) -> None:
    """The backup's old keys still working is find_key's fallback, not store_key's hash."""
    row = _row(_breached(lab02, _with(find_key=legacy_fallback_find)), "plaintext-at-rest")
    assert "an old-format key from the leaked backup still works: find_key must" in row.observed


def test_the_audit_log_holds_the_public_key_id_never_the_key(lab02: Lab) -> None:
    """Weak app: the id is the key, and the lab's store redacts it. Defended: the 8-hex id."""
    my_key = lab02.users[0]["api_key"]
    _get(lab02, my_key)
    assert lab02.audit("allow")[-1]["reason"] == "key id [redacted] scopes shipments:read"
    lab02.defend(**solution())
    key = lab02.client.post(
        "/admin/keys", headers=_admin(lab02), json={"partner": "hooli", "scopes": [READ]}
    ).json()["key"]
    assert _get(lab02, key).status_code == 200
    reason = lab02.audit("allow")[-1]["reason"]
    assert reason == f"key id {key[3:11]} scopes shipments:read"
    assert key not in str(lab02.audit()) and key[12:44] not in str(lab02.audit())


def test_the_notebook_states_the_birthday_bound_figures_the_lab_computes() -> None:
    """1.2 % at 10,000 ids, 39 % at 65,536, 50 % first reached at 77,164 keys (N = 2**32)."""
    n_ids = 2**32

    def clash(n: int) -> float:
        distinct = 1.0
        for i in range(n):
            distinct *= 1 - i / n_ids
        return 1 - distinct

    assert round(clash(10_000) * 100, 1) == 1.2
    assert round(clash(65_536) * 100) == 39
    assert clash(77_163) < 0.5 <= clash(77_164)
    text = (ROOT / "solutions" / "02-api-keys.ipynb").read_text()
    for stated in ("1.2 % at 10,000", "39 % at 65,536", "50 % at 77,164"):
        assert stated in text


def test_extract_key_reads_header_names_in_any_case() -> None:
    """HTTP field names are case-insensitive (RFC 9110 §5.1): a hook that asks for
    "X-API-Key" finds the key, as lesson 01's request allowed."""
    from labapp.lessons.l02_api_keys.keystore import KeyRequest

    req = KeyRequest("GET", "/shipments", {"X-API-Key": "ak_1"}, {})
    assert req.headers.get("X-API-Key") == req.headers["x-api-key"] == "ak_1"
    assert "X-Api-Key" in req.headers and list(req.headers) == ["x-api-key"]
    assert req.headers.get("Authorization") is None and isinstance(req.headers, dict)
