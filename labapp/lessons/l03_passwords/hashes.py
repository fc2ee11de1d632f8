"""What the grader accepts as a stored password hash, read from the hash string itself.

An argon2 hash string records its variant, parameters, salt and tag
(``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<tag>``), so the grader inspects what was stored
rather than timing how long it took to make.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError

# OWASP Password Storage Cheat Sheet, argon2id: equivalent (memory KiB, iterations) minimums.
OWASP_ARGON2ID = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
MIN_SALT = 16  # bytes: RFC 9106 §3.1 recommends 16 for password hashing
MIN_TAG = 16  # bytes: RFC 9106 §4, "128 bits is sufficient for most applications"
WEAK_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)  # below OWASP
OWASP_ARGON2I = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.I)


def _length(b64: str) -> int:
    """Bytes in an unpadded base64 field of a hash string (-1 when it is not base64)."""
    try:
        return len(base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True))
    except (binascii.Error, ValueError):
        return -1


def hash_problem(stored: str) -> str | None:
    """Why ``stored`` is not an adequate password hash today, or None when it is."""
    if not stored.startswith("$argon2id$"):
        return f"stored as {stored.split('$')[0] or stored[:9]!r}..., not argon2id"
    try:
        p = extract_parameters(stored)
    except InvalidHashError:
        return "an argon2id string the library cannot read"
    if p.parallelism < 1 or not any(
        p.memory_cost >= m and p.time_cost >= t for m, t in OWASP_ARGON2ID
    ):
        return (
            f"argon2id with m={p.memory_cost} KiB, t={p.time_cost}: below every OWASP "
            "configuration (m=19456, t=2 is the usual minimum)"
        )
    salt, tag = (_length(field) for field in stored.split("$")[-2:])
    if salt < MIN_SALT:
        return f"argon2id with a {salt}-byte salt: {MIN_SALT} or more (RFC 9106 §3.1)"
    if tag < MIN_TAG:
        return f"argon2id with a {tag}-byte hash: {MIN_TAG} or more (RFC 9106 §4)"
    return None


def legacy_sha1(password: str) -> str:
    """The shop's hash before the defense (the weak ``hash_password``): one unsalted SHA-1."""
    return "sha1$" + hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest()
