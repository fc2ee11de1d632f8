"""Lesson 02: every key attack breaches the weak API; the solution stops all; wrong ones fail."""

from __future__ import annotations

import hashlib
import re
import time

import pytest

from labapp import DefenseBreached, Lab
from labapp.engine.grading import run_item
from labapp.lessons.l02_api_keys import LESSON
from labapp.lessons.l02_api_keys.app import weak_find_key
from labapp.lessons.l02_api_keys.battery import well_formed
from tests.conftest import solution_namespace

HOOKS = ("mint_key", "store_key", "find_key", "extract_key", "allowed")


def solution() -> dict:
    """The five hooks the solution notebook defines."""
    namespace = solution_namespace("02-api-keys.ipynb", "mint_key")
    return {name: namespace[name] for name in HOOKS}


def _get(lab: Lab, key: str):
    return lab.client.get("/shipments", headers={"X-API-Key": key})


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


def test_a_hook_returning_the_wrong_type_is_named_in_the_report(lab02: Lab) -> None:
    """find_key returning True is reported as find_key's mistake, not a bare 500."""
    lab02.defend(**_with(find_key=lambda presented, keys: True))
    with pytest.raises(DefenseBreached) as caught:
        lab02.grade()
    assert "find_key() returned: must return a record from keys, or None" in str(
        caught.value.report
    )


def test_an_admin_minting_a_key_for_a_victim_earns_no_flag(lab02: Lab) -> None:
    """Flags belong to the victims' original keys, not to keys minted for them later."""
    from labapp.lessons.common import session_token

    admin = {"Authorization": f"Bearer {session_token(lab02.state, 'carol')}"}
    minted = lab02.client.post(
        "/admin/keys", headers=admin, json={"partner": "wayne-iot", "scopes": ["shipments:read"]}
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


def test_malformed_keys_are_refused_with_401_not_500(lab02: Lab) -> None:
    """Garbage in the header gets a clean 401 from the defended API."""
    lab02.defend(**solution())
    for junk in (b"", b"ak_", b"x" * 5000, "ak_é".encode(), b"ak_zzzzzzzz_" + b"0" * 41):
        assert lab02.client.get("/shipments", headers={"X-API-Key": junk}).status_code == 401


# -- plausible wrong defenses ---------------------------------------------------------------


def _with(**overrides):
    hooks = solution()
    hooks.update(overrides)
    return hooks


def query_too(req):
    return req.headers.get("x-api-key") or req.query.get("api_key")


def short_secret():
    import secrets
    import zlib

    body = f"ak_{secrets.token_hex(4)}_{secrets.token_hex(8)}"  # 64 bits
    return f"{body}_{zlib.crc32(body.encode()):08x}"


def plaintext_store(key):
    return {"key_id": key[3:11], "stored": key}


def plaintext_find(presented, keys):
    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    return record if record and not record["revoked"] and record["stored"] == presented else None


def slow_compare_find(presented, keys):
    """Plaintext at rest and an early-exit compare: the leak the lesson exploits."""
    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    if record is None or record["revoked"] or len(presented) != len(record["stored"]):
        return None
    for a, b in zip(presented, record["stored"], strict=True):
        if a != b:
            return None
        time.sleep(0.001)
    return record


def id_only_find(presented, keys):
    """Finds the record by its public id and never compares the secret."""
    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    return record if record and not record["revoked"] else None


def secret_only_store(key):
    return {"key_id": key[3:11], "stored": key[12:44]}


def secret_only_find(presented, keys):
    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    ok = record and not record["revoked"] and record["stored"] == presented[12:44]
    return record if ok else None


def base64_store(key):
    import base64

    return {"key_id": key[3:11], "stored": base64.b64encode(key.encode()).decode()}


def base64_find(presented, keys):
    import base64

    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    ok = record and record["stored"] == base64.b64encode(presented.encode()).decode()
    return record if ok and not record["revoked"] else None


def random_mint():
    import random
    import zlib

    body = f"ak_{random.getrandbits(32):08x}_{random.getrandbits(128):032x}"
    return f"{body}_{zlib.crc32(body.encode()):08x}"


def legacy_fallback_find(presented, keys):
    """'Backward compatibility': old keys keep working through the old lookup."""
    return solution()["find_key"](presented, keys) or weak_find_key(presented, keys)


def ignores_revocation(presented, keys):
    record = keys.by_id(presented[3:11]) if presented.startswith("ak_") else None
    if record is None:
        return None
    return record if record["stored"] == hashlib.sha256(presented.encode()).hexdigest() else None


def only_post_needs_write(record, method, route):
    return ("shipments:write" if method == "POST" else "shipments:read") in record["scopes"]


WRONG = {
    "keys still accepted in the URL": (dict(extract_key=query_too), "key-in-url"),
    "64-bit secret": (dict(mint_key=short_secret), "guessable-key"),
    "plaintext at rest": (
        dict(store_key=plaintext_store, find_key=plaintext_find),
        "plaintext-at-rest",
    ),
    "early-exit compare of plaintext": (
        dict(store_key=plaintext_store, find_key=slow_compare_find),
        "timing-leak",
    ),
    "legacy keys kept for compatibility": (dict(find_key=legacy_fallback_find), "timing-leak"),
    "secret never compared": (dict(find_key=id_only_find), "timing-leak"),
    "only the secret part at rest": (
        dict(store_key=secret_only_store, find_key=secret_only_find),
        "plaintext-at-rest",
    ),
    "base64 is not a hash": (
        dict(store_key=base64_store, find_key=base64_find),
        "plaintext-at-rest",
    ),
    "minted from random": (dict(mint_key=random_mint), "guessable-key"),
    "revocation ignored": (dict(find_key=ignores_revocation), "revoked-key"),
    "scopes ignored": (dict(allowed=lambda record, method, route: True), "over-broad-key"),
    "DELETE needs only read": (dict(allowed=only_post_needs_write), "over-broad-key"),
    "denies every key": (dict(find_key=lambda presented, keys: None), "partner-reads"),
}


@pytest.mark.parametrize("mistake", list(WRONG))
def test_the_grader_catches_a_plausible_wrong_defense(lab02: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names it."""
    overrides, row = WRONG[mistake]
    lab02.defend(**_with(**overrides))
    with pytest.raises(DefenseBreached) as caught:
        lab02.grade()
    assert row in {failure.id for failure in caught.value.report.failures}
