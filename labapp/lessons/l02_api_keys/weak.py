"""Lesson 02's hooks and their deliberately weak defaults: each says which attack it invites."""

from __future__ import annotations

import time
from typing import Any

from labapp.engine.spec import Hook
from labapp.lessons.l02_api_keys.keystore import KeyRequest, KeyStore

# A compare that takes this long per matching character: exaggerated, so that the leak is
# measurable over loopback in seconds. Real leaks are nanoseconds and need many samples.
DELAY_PER_CHAR = 0.003


def weak_extract_key(req: KeyRequest) -> str | None:
    """WEAK: takes the key from the URL too, where proxies and logs keep it (key-in-url)."""
    return req.query.get("api_key") or req.headers.get("x-api-key")


_sequence = [20000]  # above the seeded pk_ keys, so the lab's own keys never collide


def weak_mint_key() -> str:
    """WEAK: short and sequential, so neighbours are one guess away (guessable-key)."""
    _sequence[0] += 1
    return f"pk_{_sequence[0]}"


def weak_store_key(key: str) -> dict[str, str]:
    """WEAK: keeps the key itself at rest, so any copy of the table works (plaintext-at-rest)."""
    return {"key_id": key, "stored": key}


def weak_equals(presented: str, stored: str) -> bool:
    """WEAK: stops at the first wrong character, so time reveals the right ones (timing-leak)."""
    if len(presented) != len(stored):
        return False
    for a, b in zip(presented, stored, strict=True):
        if a != b:
            return False
        time.sleep(DELAY_PER_CHAR)  # "slow hardware": the exaggerated part
    return True


def weak_find_key(presented: str, keys: KeyStore) -> dict[str, Any] | None:
    """WEAK: compares against every stored key in the clear and ignores revocation."""
    for record in keys.all():
        if weak_equals(presented, record["stored"]):
            return record
    return None


def weak_allowed(record: dict[str, Any], method: str, route: str) -> bool:
    """WEAK: any valid key may do anything, whatever its scopes say (over-broad-key)."""
    return True


HOOKS = (
    Hook(
        "extract_key", ("req",), "extract_key(req) -> the presented key or None", weak_extract_key
    ),
    Hook("mint_key", (), "mint_key() -> a new key string", weak_mint_key),
    Hook(
        "store_key", ("key",), "store_key(key) -> {'key_id', 'stored'} kept at rest", weak_store_key
    ),
    Hook(
        "find_key",
        ("presented", "keys"),
        "find_key(presented, keys) -> record or None",
        weak_find_key,
    ),
    Hook(
        "allowed",
        ("record", "method", "route"),
        "allowed(record, method, route) -> bool",
        weak_allowed,
        returns=bool,  # an allow/deny decision: a scope name, a list or None is the hook's bug
    ),
)
