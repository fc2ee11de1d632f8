"""Lesson 02's battery: replay every key attack against the defended partner API.

Keys the grader needs are minted through the lab's own admin route, so they come from the
learner's ``mint_key`` and ``store_key``: a legitimate partner's fresh key is the only kind
a defended server should accept.
"""

from __future__ import annotations

import re
import statistics
import time
import zlib
from typing import Any

import httpx

from labapp.grading import Attack, Check, Observed

KEY = re.compile(r"ak_[0-9a-f]{8}_[0-9a-f]{32}_(?P<crc>[0-9a-f]{8})")
READ, WRITE = "shipments:read", "shipments:write"
KEY_FORMAT = "ak_<8 hex id>_<32 hex secret>_<8 hex crc32>"
TIMING_SAMPLES = 30
TIMING_MARGIN_S = 0.002  # a constant-time compare differs by microseconds; the leak by 3 ms/char


def well_formed(key: object) -> bool:
    """The course's key format, checksum included (zlib.crc32 of all before the last '_')."""
    if not isinstance(key, str) or not (match := KEY.fullmatch(key)):
        return False
    return match["crc"] == f"{zlib.crc32(key[:-9].encode()):08x}"


def _admin(lab: Any) -> dict[str, str]:
    carol = next(u for u in lab.users if u.get("username") == "carol")
    return {"Authorization": f"Bearer {carol['token']}"}


def _mint(lab: Any, http: httpx.Client, scopes: list[str], partner: str = "acme") -> str | None:
    response = http.post(
        "/admin/keys", headers=_admin(lab), json={"partner": partner, "scopes": scopes}
    )
    return response.json()["key"] if response.status_code == 201 else None


def _key_id(lab: Any, key: str) -> str | None:
    row = lab.store.one("SELECT key_id FROM api_keys WHERE partner = 'acme' ORDER BY rowid DESC")
    return row["key_id"] if row else None


def _use(
    http: httpx.Client, key: str, method: str = "GET", url: str = "/shipments", **kw: Any
) -> httpx.Response:
    return http.request(method, url, headers={"X-API-Key": key}, **kw)


def _stolen(lab: Any, http: httpx.Client, keys: list[str], where: str) -> Observed:
    for key in keys:
        response = _use(http, key)
        if response.is_success:
            return Observed(True, response.status_code, f"a key from {where} still works")
    return Observed(False, None if not keys else response.status_code)


def attack_key_in_url(lab: Any, http: httpx.Client) -> Observed:
    # Harvest first: the probe below lands in the log too (a key sent in a URL is burnt
    # even when the server refuses it), and it is not the log's fault that we sent it.
    log = "\n".join(http.get("/ops/access-log").json())
    harvested = re.findall(r"api_key=([^&\s\"]+)", log)
    key = _mint(lab, http, [READ])
    if key:
        response = http.get("/shipments", params={"api_key": key})
        if response.is_success:
            return Observed(True, response.status_code, "a fresh key was accepted in ?api_key=")
    return _stolen(lab, http, harvested, "the access log")


def attack_plaintext(lab: Any, http: httpx.Client) -> Observed:
    key = _mint(lab, http, [READ])
    if key and any(key in str(row.values()) for row in lab.store.query("SELECT * FROM api_keys")):
        return Observed(True, 201, "a freshly minted key is stored as-is in the keys table")
    backup = [row["key"] for row in http.get("/backup/keys.json").json()]
    return _stolen(lab, http, backup, "the leaked backup")


def attack_guessable(lab: Any, http: httpx.Client) -> Observed:
    minted: list[str] = []
    for _ in range(100):  # stop at the first bad one: a weak store slows with every key
        key = _mint(lab, http, [READ])
        if not well_formed(key):
            shown = repr(key[:24]) if isinstance(key, str) else "no key"
            return Observed(True, 201, f"minted {shown}, not of the form {KEY_FORMAT}")
        minted.append(key)  # type: ignore[arg-type]
    if len(set(minted)) < len(minted):
        return Observed(True, 201, "two of 100 minted keys are the same")
    own = int(next(u for u in lab.users if "api_key" in u)["api_key"].removeprefix("pk_"))
    return _stolen(lab, http, [f"pk_{n}" for n in range(own - 5, own + 6)], "a sequential guess")


def _median_time(http: httpx.Client, key: str) -> float:
    samples = []
    for _ in range(TIMING_SAMPLES):
        start = time.perf_counter()
        _use(http, key)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def attack_timing(lab: Any, http: httpx.Client) -> Observed:
    device = lab.store.one("SELECT key_id FROM api_keys WHERE partner = 'wayne-iot'")
    if device and _use(http, device["key_id"]).is_success:
        return Observed(True, 200, "the device's short legacy key still works")
    key = _mint(lab, http, [READ])
    if not key:
        return Observed(False, None, "no key could be minted to time")
    wrong = {"first char": "x" + key[1:], "last char": key[:-1] + ("0" if key[-1] != "0" else "1")}
    # Interleave nothing fancy: medians of 30 each are robust to loopback jitter.
    medians = {name: _median_time(http, candidate) for name, candidate in wrong.items()}
    gap = medians["last char"] - medians["first char"]
    detail = f"wrong last char is {gap * 1000:+.1f} ms slower than wrong first char (median of 30)"
    return Observed(abs(gap) > TIMING_MARGIN_S, None, detail)


def attack_over_broad(lab: Any, http: httpx.Client) -> Observed:
    key = _mint(lab, http, [READ])
    if not key:
        return Observed(False, None, "no key could be minted")
    for method, url, body in (
        ("POST", "/shipments", {"destination": "Oslo"}),
        ("DELETE", "/shipments/1", None),
    ):
        response = _use(http, key, method, url, json=body)
        if response.is_success:
            return Observed(True, response.status_code, f"a read-only key did {method} {url}")
    return Observed(False, response.status_code)


def attack_revoked(lab: Any, http: httpx.Client) -> Observed:
    key = _mint(lab, http, [READ])
    key_id = _key_id(lab, key) if key else None
    if not key or not key_id:
        return Observed(False, None, "no key could be minted")
    http.post(f"/admin/keys/{key_id}/revoke", headers=_admin(lab))
    response = _use(http, key)
    return Observed(response.is_success, response.status_code, "a revoked key")


def check_reads(lab: Any, http: httpx.Client) -> Observed:
    key = _mint(lab, http, [READ])
    if not key:
        return Observed(False, None, "minting a key failed")
    response = _use(http, key)
    return Observed(response.is_success, response.status_code, "GET /shipments with a fresh key")


def check_writes(lab: Any, http: httpx.Client) -> Observed:
    key = _mint(lab, http, [READ, WRITE])
    if not key:
        return Observed(False, None, "minting a key failed")
    booked = _use(http, key, "POST", "/shipments", json={"destination": "Quito"})
    if not booked.is_success:
        return Observed(False, booked.status_code, "POST /shipments with a read-write key")
    cancelled = _use(http, key, "DELETE", f"/shipments/{booked.json()['id']}")
    return Observed(cancelled.is_success, cancelled.status_code, "DELETE its own shipment")


def check_rotation(lab: Any, http: httpx.Client) -> Observed:
    old = _mint(lab, http, [READ])
    old_id = _key_id(lab, old) if old else None
    new = _mint(lab, http, [READ])
    if not (old and old_id and new):
        return Observed(False, None, "minting keys failed")
    http.post(f"/admin/keys/{old_id}/revoke", headers=_admin(lab))
    response = _use(http, new)
    return Observed(response.is_success, response.status_code, "the new key after rotation")


ATTACKS = (
    Attack(
        "key-in-url",
        "keys in the URL: a fresh key in ?api_key=, and keys from the access log",
        (
            "GET /ops/access-log is open: read it. What do URLs carry?",
            "Copy a key from a logged URL and send it in the X-API-Key header.",
        ),
        attack_key_in_url,
        fix="extract_key: read the X-API-Key header only; never req.query.",
    ),
    Attack(
        "plaintext-at-rest",
        "keys at rest: a freshly minted key in the table, and the backup",
        (
            "GET /backup/keys.json was left public. What does each row hold?",
            "Use another partner's key from the backup in the X-API-Key header.",
        ),
        attack_plaintext,
        fix="store_key: keep only a SHA-256 hash of the key (and its public key id).",
    ),
    Attack(
        "guessable-key",
        "100 minted keys: format, checksum, uniqueness; sequential guesses",
        (
            "Your own key is in the card. What would the key minted just before it be?",
            "Try your key's number minus one, minus two... in the X-API-Key header.",
        ),
        attack_guessable,
        fix="mint_key: 'ak_' + 8 hex id + '_' + secrets.token_hex(16) + '_' + crc32 checksum.",
    ),
    Attack(
        "timing-leak",
        "response time: wrong first char vs wrong last char (medians of 30)",
        (
            "wayne-iot's key is 'iot-' and 4 hex characters. Time a request per candidate "
            "for the 5th character: which one is slower?",
            "Use the median of several requests per candidate; fix one character at a time.",
            "Three characters by timing, then try the 16 possible last ones.",
        ),
        attack_timing,
        fix="find_key: look the key up by its id, then hmac.compare_digest the SHA-256 digests.",
    ),
    Attack(
        "over-broad-key",
        "a read-only key books and cancels shipments",
        ("Your integration is read-only. Is that enforced?", "POST /shipments with your own key."),
        attack_over_broad,
        fix="allowed: GET needs shipments:read; POST and DELETE need shipments:write.",
    ),
    Attack(
        "revoked-key",
        "a key that was revoked still works",
        (),
        attack_revoked,
        fix="find_key: a record with revoked=True is no record.",
        flag=False,
    ),
)

CHECKS = (
    Check("partner-reads", "a partner reads its shipments with a freshly minted key", check_reads),
    Check("partner-writes", "a read-write key books and cancels a shipment", check_writes),
    Check(
        "rotation", "after rotation (new key minted, old revoked) the new key works", check_rotation
    ),
)
