"""Lesson 02's battery: replay every key attack against the defended partner API.

One row per rule the defend exercise states (the attacks are in ``attacks.py``), and the
legitimate uses a defended API must keep: read, write, rotate. A row that fails says what
got through (its detail) and what to change (``fix``).
"""

from __future__ import annotations

from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.l02_api_keys.attacks import (
    GUESSED,
    MINTED,
    READ,
    WRITE,
    admin_headers,
    attack_checksum_first,
    attack_compare,
    attack_guessable,
    attack_key_in_url,
    attack_legacy,
    attack_over_broad,
    attack_plaintext,
    attack_predictable,
    attack_revoked,
    attack_timing,
    attack_weak_hash,
    mint,
    use,
)
from labapp.lessons.l02_api_keys.entropy import MIN_BYTES


def check_reads(lab: Any, http: httpx.Client) -> Observed:
    key, _ = mint(lab, http, [READ])
    if not key:
        return Observed(False, None, "minting a key failed")
    response = use(http, key)
    return Observed(response.is_success, response.status_code, "GET /shipments with a fresh key")


def check_writes(lab: Any, http: httpx.Client) -> Observed:
    key, _ = mint(lab, http, [READ, WRITE])
    if not key:
        return Observed(False, None, "minting a key failed")
    booked = use(http, key, "POST", "/shipments", json={"destination": "Quito"})
    if not booked.is_success:
        return Observed(False, booked.status_code, "POST /shipments with a read-write key")
    cancelled = use(http, key, "DELETE", f"/shipments/{booked.json()['id']}")
    return Observed(cancelled.is_success, cancelled.status_code, "DELETE its own shipment")


def check_rotation(lab: Any, http: httpx.Client) -> Observed:
    old, old_id = mint(lab, http, [READ])
    new, _ = mint(lab, http, [READ])
    if not (old and new):
        return Observed(False, None, "minting keys failed")
    http.post(f"/admin/keys/{old_id}/revoke", headers=admin_headers(lab))
    response = use(http, new)
    return Observed(response.is_success, response.status_code, "the new key after rotation")


ATTACKS = (
    Attack(
        "key-in-url",
        "keys outside the X-API-Key header: in the URL, a cookie, Authorization; logged keys",
        (
            "GET /ops/access-log is open: read it. What do URLs carry?",
            "Copy a key from a logged URL and send it in the X-API-Key header.",
        ),
        attack_key_in_url,
        fix="extract_key: return req.headers.get('x-api-key') and nothing else: never "
        "req.query (URLs are logged), never a cookie or another header.",
    ),
    Attack(
        "plaintext-at-rest",
        "keys at rest: a fresh key (or its secret, or an encoding of either) in the table; "
        "the backup",
        (
            "GET /backup/keys.json was left public. What does each row hold?",
            "Use another partner's key from the backup in the X-API-Key header.",
        ),
        attack_plaintext,
        fix="store_key: keep only a SHA-256 hash of the key (and its public key id).",
    ),
    Attack(
        "weak-hash",
        "what store_key keeps: the 8-hex id and the SHA-256 hex digest of the whole key",
        (),
        attack_weak_hash,
        fix="store_key: {'key_id': key[3:11], 'stored': hashlib.sha256(key.encode())"
        ".hexdigest()}: SHA-256, not MD5, SHA-1 or another hash, of the whole key, not a part.",
        flag=False,
        expected="the id and SHA-256(whole key), hex",
    ),
    Attack(
        "guessable-key",
        f"{GUESSED} minted keys: format, checksum, uniqueness; sequential guesses",
        (
            "Your own key is in the card. What would the key minted just before it be?",
            "Try your key's number minus one, minus two... in the X-API-Key header.",
        ),
        attack_guessable,
        fix="mint_key: 'ak_' + 8 hex id + '_' + secrets.token_hex(16) + '_' + crc32 checksum.",
    ),
    Attack(
        "predictable-mint",
        f"where {MINTED} minted keys' randomness comes from (>= {MIN_BYTES} bytes of the OS CSPRNG "
        "each) and whether they share structure",
        (),
        attack_predictable,
        fix="mint_key: draw the id and the secret from `secrets` (secrets.token_hex(4) and "
        "secrets.token_hex(16)), never from the clock, a counter, uuid1 or `random`; a uuid4 "
        "has only 122 random bits.",
        flag=False,
        expected=f"{MIN_BYTES}+ CSPRNG bytes a key, no structure",
    ),
    Attack(
        "legacy-key",
        "every partner's old-format key (acme-live-…, pk_…, iot-…) must stop working",
        (),
        attack_legacy,
        fix="find_key: accept only keys of the course's format; no fallback to the old lookup.",
        flag=False,
    ),
    Attack(
        "checksum-first",
        "keys with a bad format or checksum reach the keys table; a good one scans it",
        (),
        attack_checksum_first,
        fix="find_key: fullmatch the format and compare the crc32 checksum before any lookup; "
        "then fetch the one record with keys.by_id(key_id), never keys.all().",
        flag=False,
        expected="bad keys: 4xx and no lookup",
    ),
    Attack(
        "compare-digest",
        "how find_key compares the stored digest: only hmac.compare_digest",
        (),
        attack_compare,
        fix="find_key: hmac.compare_digest(sha256 of the presented key, record['stored']); "
        "no ==, no loop over characters.",
        flag=False,
        expected="read by hmac.compare_digest only",
    ),
    Attack(
        "timing-leak",
        "forged secrets: accepted? and wrong-first vs wrong-last character timing",
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
        "keys beyond their scopes: read-only keys write, write-only or scopeless keys read",
        ("Your integration is read-only. Is that enforced?", "POST /shipments with your own key."),
        attack_over_broad,
        fix="allowed: GET needs shipments:read; POST and DELETE need shipments:write; "
        "return True or False.",
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
