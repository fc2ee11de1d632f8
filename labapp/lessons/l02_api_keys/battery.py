"""Lesson 02's battery: replay every key attack against the defended partner API.

One row per rule the defend exercise states (the attacks are in ``attacks.py``), and the
legitimate uses a defended API must keep: read, write, rotate. A row that fails says what
got through (its detail) and what to change (``fix``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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
    post_mint,
    use,
)
from labapp.lessons.l02_api_keys.entropy import MIN_BYTES
from labapp.lessons.l02_api_keys.hints import HINTS

# What the lesson teaches a hook that crashed (a 500) to do instead: the engine names the
# learner's own line; the row adds the rule that line broke.
CRASH_FIX = {
    "extract_key": "extract_key: return req.headers.get('x-api-key'), None when it is missing, "
    "whatever else the request carries",
    "find_key": "find_key: refuse (return None) any key you cannot parse: fullmatch the format "
    "and check the checksum before you split, index or look it up",
    "allowed": "allowed: record['scopes'] is a list of str; return True or False for every "
    "method and route",
    "mint_key": "mint_key: return the new key, a str of the course's format",
    "store_key": "store_key: return {'key_id': the 8-hex id, 'stored': the SHA-256 hex digest}",
}


def naming_crashes(run: Callable[[Any, httpx.Client], Observed]) -> Callable[..., Observed]:
    """``run``, whose row also says what to do instead when one of its requests got a 500."""

    @functools.wraps(run)
    def wrapped(lab: Any, http: httpx.Client) -> Observed:
        before = len(lab.guard.incidents)
        observed = run(lab, http)
        crashed = [i.hook for i in lab.guard.incidents[before:] if i.kind == "raised"]
        if crashed and any(s >= 500 for s in getattr(http, "statuses", ())):
            fixes = [CRASH_FIX[hook] for hook in dict.fromkeys(crashed) if hook in CRASH_FIX]
            detail = "; ".join(filter(None, [observed.detail, *fixes]))
            return Observed(observed.succeeded, observed.status, detail)
        return observed

    return wrapped


def refused(response: httpx.Response, what: str, scopes: str) -> Observed:
    """A legitimate request's answer; when refused, which hook said no."""
    status = response.status_code
    if response.is_success:
        return Observed(True, status, what)
    if status == 401:
        why = (
            "extract_key or find_key found no valid key in a key mint_key and store_key just "
            "made (is key_id the id find_key looks up? is the digest made the same way?)"
        )
    elif status == 403:
        why = f"allowed() said False to a key with {scopes}"
    else:
        why = "refused"
    return Observed(False, status, f"{what}: {why}")


def minting_failed(lab: Any, http: httpx.Client) -> Observed:
    """Why the admin route made no key: the mint's own failure is in the row's incident."""
    response = post_mint(lab, http, [READ])
    if response.status_code == 409:
        return Observed(False, 409, "two mints in a row gave key ids that already exist")
    return Observed(
        False, response.status_code, "POST /admin/keys made no key (mint_key, store_key)"
    )


def check_reads(lab: Any, http: httpx.Client) -> Observed:
    key, _ = mint(lab, http, [READ])
    if not key:
        return minting_failed(lab, http)
    return refused(use(http, key), "GET /shipments with a fresh key", READ)


def check_writes(lab: Any, http: httpx.Client) -> Observed:
    key, _ = mint(lab, http, [READ, WRITE])
    if not key:
        return minting_failed(lab, http)
    both = f"{READ} {WRITE}"
    booked = use(http, key, "POST", "/shipments", json={"destination": "Quito"})
    if not booked.is_success:
        return refused(booked, "POST /shipments with a read-write key", both)
    cancelled = use(http, key, "DELETE", f"/shipments/{booked.json()['id']}")
    return refused(cancelled, "DELETE its own shipment with a read-write key", both)


def check_rotation(lab: Any, http: httpx.Client) -> Observed:
    old, old_id = mint(lab, http, [READ])
    new, _ = mint(lab, http, [READ])
    if not (old and new):
        return minting_failed(lab, http)
    http.post(f"/admin/keys/{old_id}/revoke", headers=admin_headers(lab))
    return refused(use(http, new), "the new key, after the old one was revoked", READ)


ATTACKS = (
    Attack(
        "key-in-url",
        "keys outside the X-API-Key header: in the URL, a cookie, Authorization; logged keys",
        HINTS["key-in-url"],
        naming_crashes(attack_key_in_url),
        fix="extract_key: return req.headers.get('x-api-key') and nothing else: never "
        "req.query (URLs are logged), never a cookie or another header.",
    ),
    Attack(
        "plaintext-at-rest",
        "keys at rest: a fresh key (or its secret, or an encoding of either) in the table; "
        "the backup",
        HINTS["plaintext-at-rest"],
        naming_crashes(attack_plaintext),
        fix="store_key: keep only a SHA-256 hash of the key (and its public key id).",
    ),
    Attack(
        "weak-hash",
        "what store_key keeps: the 8-hex id and the SHA-256 hex digest of the whole key",
        (),
        naming_crashes(attack_weak_hash),
        fix="store_key: {'key_id': key[3:11], 'stored': hashlib.sha256(key.encode())"
        ".hexdigest()}: SHA-256, not MD5, SHA-1 or another hash, of the whole key, not a part.",
        flag=False,
        expected="the id and SHA-256(whole key), hex",
    ),
    Attack(
        "guessable-key",
        f"{GUESSED} minted keys: format, checksum, uniqueness; sequential guesses",
        HINTS["guessable-key"],
        naming_crashes(attack_guessable),
        fix="mint_key: 'ak_' + 8 hex id + '_' + secrets.token_hex(16) + '_' + crc32 checksum.",
    ),
    Attack(
        "predictable-mint",
        f"where {MINTED} minted keys' randomness comes from (>= {MIN_BYTES} bytes of the OS CSPRNG "
        "each) and whether they share structure",
        (),
        naming_crashes(attack_predictable),
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
        naming_crashes(attack_legacy),
        fix="find_key: accept only keys of the course's format; no fallback to the old lookup.",
        flag=False,
    ),
    Attack(
        "checksum-first",
        "keys with a bad format or checksum reach the keys table; a good one scans it",
        (),
        naming_crashes(attack_checksum_first),
        fix="find_key: fullmatch the format and compare the crc32 checksum before any lookup; "
        "then fetch the one record with keys.by_id(key_id), never keys.all().",
        flag=False,
        expected="bad keys: 4xx and no lookup",
    ),
    Attack(
        "compare-digest",
        "how find_key compares the stored digest: only hmac.compare_digest",
        (),
        naming_crashes(attack_compare),
        fix="find_key: hmac.compare_digest(sha256 of the presented key, record['stored']); "
        "no ==, no loop over characters.",
        flag=False,
        expected="read by hmac.compare_digest only",
    ),
    Attack(
        "timing-leak",
        "forged secrets: accepted? and wrong-first vs wrong-last character timing",
        HINTS["timing-leak"],
        naming_crashes(attack_timing),
        fix="find_key: look the record up by key id, then hmac.compare_digest the SHA-256 "
        "digest of the whole presented key with the stored one; no legacy fallback.",
    ),
    Attack(
        "over-broad-key",
        "keys beyond their scopes: read-only keys write, write-only or scopeless keys read",
        HINTS["over-broad-key"],
        naming_crashes(attack_over_broad),
        fix="allowed: GET needs shipments:read; POST and DELETE need shipments:write; "
        "return True or False.",
    ),
    Attack(
        "revoked-key",
        "a key that was revoked still works",
        (),
        naming_crashes(attack_revoked),
        fix="find_key: a record with revoked=True is no record.",
        flag=False,
    ),
)

LEGIT = (
    "a partner's fresh, unrevoked key of the right scope must work: a 401 means extract_key or "
    "find_key refused it, a 403 that allowed() did"
)
CHECKS = (
    Check(
        "partner-reads",
        "a partner reads its shipments with a freshly minted key",
        naming_crashes(check_reads),
        hint=LEGIT,
    ),
    Check(
        "partner-writes",
        "a read-write key books and cancels a shipment",
        naming_crashes(check_writes),
        hint=LEGIT,
    ),
    Check(
        "rotation",
        "after rotation (new key minted, old revoked) the new key works",
        naming_crashes(check_rotation),
        hint="revoke only the record whose key_id was revoked: the new key must keep working",
    ),
)
