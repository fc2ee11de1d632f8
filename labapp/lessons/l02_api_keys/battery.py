"""Lesson 02's battery: replay every key attack against the defended partner API.

Keys the grader needs are minted through the lab's own admin route, so they come from the
learner's ``mint_key`` and ``store_key``: a legitimate partner's fresh key is the only kind
a defended server should accept.
"""

from __future__ import annotations

import base64
import random
import re
import statistics
import time
import zlib
from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.common import session_token

KEY = re.compile(r"ak_[0-9a-f]{8}_(?P<secret>[0-9a-f]{32})_(?P<crc>[0-9a-f]{8})")
READ, WRITE = "shipments:read", "shipments:write"
KEY_FORMAT = "ak_<8 hex id>_<32 hex secret>_<8 hex crc32>"
TIMING_SAMPLES = 30
# A constant-time compare of digests differs by microseconds; the lab's leak is 3 ms per
# matching character, ~90 ms across a 32-character secret. 10 ms sits far from both, and
# well above the jitter of medians on a busy two-core machine.
TIMING_MARGIN_S = 0.010


def checksum(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


def well_formed(key: object) -> bool:
    """The course's key format, checksum included (zlib.crc32 of all before the last '_')."""
    if not isinstance(key, str) or not (match := KEY.fullmatch(key)):
        return False
    return match["crc"] == checksum(key[:-9])


def forge(key: str, secret: str) -> str:
    """The same key id with another secret, and a checksum that fits: only the secret lies."""
    body = f"{key[:12]}{secret}"
    return f"{body}_{checksum(body)}"


def _admin(lab: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(lab.state, 'carol')}"}


def _mint(
    lab: Any, http: httpx.Client, scopes: list[str], partner: str = "acme"
) -> tuple[str, str] | tuple[None, None]:
    """A key minted by the learner's hooks through the admin route, and its key id."""
    response = http.post(
        "/admin/keys", headers=_admin(lab), json={"partner": partner, "scopes": scopes}
    )
    if response.status_code != 201:
        return None, None
    return response.json()["key"], response.json()["key_id"]


def _use(
    http: httpx.Client, key: str, method: str = "GET", url: str = "/shipments", **kw: Any
) -> httpx.Response:
    return http.request(method, url, headers={"X-API-Key": key}, **kw)


def _stolen(lab: Any, http: httpx.Client, keys: list[str], where: str) -> Observed:
    status = None
    for key in keys:
        response = _use(http, key)
        status = response.status_code
        if response.is_success:
            return Observed(True, status, f"a key from {where} still works")
    return Observed(False, status)


def attack_key_in_url(lab: Any, http: httpx.Client) -> Observed:
    # Only the partners' logged traffic: the grader's own probes land in the log too.
    log = [line for line in http.get("/ops/access-log").json() if not line.startswith("127.")]
    harvested = re.findall(r"api_key=([^&\s\"]+)", "\n".join(log))
    key, key_id = _mint(lab, http, [READ])
    if key:
        response = http.get("/shipments", params={"api_key": key})
        http.post(f"/admin/keys/{key_id}/revoke", headers=_admin(lab))  # it is in a log now
        if response.is_success:
            return Observed(True, response.status_code, "a fresh key was accepted in ?api_key=")
    return _stolen(lab, http, harvested, "the access log")


def _disguises(key: str) -> list[str]:
    """The key, its secret, and encodings that are still plaintext in all but name."""
    secret = KEY.fullmatch(key)["secret"] if well_formed(key) else key  # type: ignore[index]
    return [key, secret, base64.b64encode(key.encode()).decode(), key.encode().hex()]


def attack_plaintext(lab: Any, http: httpx.Client) -> Observed:
    key, _ = _mint(lab, http, [READ])
    if key:
        table = str(lab.store.query("SELECT * FROM api_keys"))
        for shown in _disguises(key):
            if shown in table:
                return Observed(True, 201, "a freshly minted key's secret is at rest as-is")
    backup = [row["key"] for row in http.get("/backup/keys.json").json()]
    return _stolen(lab, http, backup, "the leaked backup")


def _drawn_from_random(lab: Any) -> bool:
    """Seed `random` twice: a mint built on it repeats itself; one built on `secrets` cannot."""
    mint = lab.state.hooks["mint_key"]
    saved = random.getstate()
    try:
        random.seed(20240601)
        first = mint()
        random.seed(20240601)
        return first == mint()
    except Exception:  # the mint failed outside the server: other rows will say why
        return False
    finally:
        random.setstate(saved)


def attack_guessable(lab: Any, http: httpx.Client) -> Observed:
    minted: list[str] = []
    for _ in range(100):  # stop at the first bad one: a weak store slows with every key
        key, _ = _mint(lab, http, [READ])
        if not well_formed(key):
            shown = repr(key[:24]) if isinstance(key, str) else "no key"
            return Observed(True, 201, f"minted {shown}, not of the form {KEY_FORMAT}")
        minted.append(key)  # type: ignore[arg-type]
    if len(set(minted)) < len(minted):
        return Observed(True, 201, "two of 100 minted keys are the same")
    if _drawn_from_random(lab):
        return Observed(True, 201, "mint_key draws from `random`: seeded twice, same key")
    own = int(next(u for u in lab.users if "api_key" in u)["api_key"].removeprefix("pk_"))
    return _stolen(lab, http, [f"pk_{n}" for n in range(own - 5, own + 6)], "a sequential guess")


def attack_timing(lab: Any, http: httpx.Client) -> Observed:
    device = lab.store.one("SELECT key_id FROM api_keys WHERE partner = 'wayne-iot'")
    if device and _use(http, device["key_id"]).is_success:
        return Observed(True, 200, "the device's short legacy key still works")
    key, _ = _mint(lab, http, [READ])
    if not well_formed(key):
        return Observed(False, None, "no well-formed key to time (see guessable-key)")
    secret = KEY.fullmatch(key)["secret"]  # type: ignore[index, union-attr]
    flip = {c: "0" if c != "0" else "1" for c in secret}
    probes = {  # both well-formed, right key id, right checksum: only the secret is wrong
        "first": forge(key, flip[secret[0]] + secret[1:]),  # type: ignore[arg-type]
        "last": forge(key, secret[:-1] + flip[secret[-1]]),  # type: ignore[arg-type]
    }
    samples: dict[str, list[float]] = {"first": [], "last": []}
    for _ in range(TIMING_SAMPLES):  # interleaved, so a burst of load hits both sides
        for side, probe in probes.items():
            start = time.perf_counter()
            response = _use(http, probe)
            samples[side].append(time.perf_counter() - start)
            if response.is_success:
                return Observed(True, response.status_code, "a forged secret was accepted")
    gap = statistics.median(samples["last"]) - statistics.median(samples["first"])
    detail = (
        f"a secret wrong in its last character took {gap * 1000:+.1f} ms longer than one "
        f"wrong in its first (medians of {TIMING_SAMPLES})"
    )
    return Observed(gap > TIMING_MARGIN_S, response.status_code, detail)


def attack_over_broad(lab: Any, http: httpx.Client) -> Observed:
    key, _ = _mint(lab, http, [READ])
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
    key, key_id = _mint(lab, http, [READ])
    if not key:
        return Observed(False, None, "no key could be minted")
    http.post(f"/admin/keys/{key_id}/revoke", headers=_admin(lab))
    response = _use(http, key)
    return Observed(response.is_success, response.status_code, "a revoked key")


def check_reads(lab: Any, http: httpx.Client) -> Observed:
    key, _ = _mint(lab, http, [READ])
    if not key:
        return Observed(False, None, "minting a key failed")
    response = _use(http, key)
    return Observed(response.is_success, response.status_code, "GET /shipments with a fresh key")


def check_writes(lab: Any, http: httpx.Client) -> Observed:
    key, _ = _mint(lab, http, [READ, WRITE])
    if not key:
        return Observed(False, None, "minting a key failed")
    booked = _use(http, key, "POST", "/shipments", json={"destination": "Quito"})
    if not booked.is_success:
        return Observed(False, booked.status_code, "POST /shipments with a read-write key")
    cancelled = _use(http, key, "DELETE", f"/shipments/{booked.json()['id']}")
    return Observed(cancelled.is_success, cancelled.status_code, "DELETE its own shipment")


def check_rotation(lab: Any, http: httpx.Client) -> Observed:
    old, old_id = _mint(lab, http, [READ])
    new, _ = _mint(lab, http, [READ])
    if not (old and new):
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
        "forged secrets: accepted? and wrong-first vs wrong-last character timing (medians of 30)",
        (
            "wayne-iot's key is 'iot-' and 4 hex characters. Time a request per candidate "
            "for the 5th character: which one is slower? Always send 8 characters (pad with "
            "'0'): a key of the wrong length is refused at once, with nothing to measure.",
            "Use the median of several requests per candidate; fix one character at a time.",
            "Three characters by timing, then try the 16 possible last ones.",
        ),
        attack_timing,
        fix="find_key: look the record up by key id, then hmac.compare_digest the SHA-256 "
        "digest of the whole presented key with the stored one; no legacy fallback.",
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
