"""The course's API key format: ``ak_<8 hex id>_<32 hex secret>_<8 hex crc32>``.

GitHub's token format is the model ("Behind GitHub's new authentication token formats",
2021): a prefix secret scanners can find, and a checksum (GitHub's: CRC32 in the last six
base62 characters) that lets a server refuse a typo or a random guess before it touches its
database. The 128 random bits of secret between them are this course's choice.
"""

from __future__ import annotations

import re
import zlib

KEY_FORMAT = "ak_<8 hex key id>_<32 hex secret>_<8 hex crc32 of everything before it>"
KEY = re.compile(r"ak_(?P<id>[0-9a-f]{8})_(?P<secret>[0-9a-f]{32})_(?P<crc>[0-9a-f]{8})")
ID, SECRET = slice(3, 11), slice(12, 44)  # where the id and the secret sit in a key


def checksum(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


def well_formed(key: object) -> bool:
    """The course's key format, checksum included (zlib.crc32 of all before the last '_')."""
    if not isinstance(key, str) or not (match := KEY.fullmatch(key)):
        return False
    return match["crc"] == checksum(key[:-9])


def with_checksum(body: str) -> str:
    """``body`` and the checksum that fits it: a forgery only a real check of the rest can stop."""
    return "_".join((body, checksum(body)))


def forge(key: str, secret: str) -> str:
    """The same key id with another secret, and a checksum that fits: only the secret lies."""
    return with_checksum(f"{key[:12]}{secret}")


def flip(char: str) -> str:
    """Another hex character in place of ``char``."""
    return "0" if char != "0" else "1"
