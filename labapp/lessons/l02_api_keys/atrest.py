"""What a ``store_key`` kept at rest, named: the key in disguise, or which hash of what.

The exercise asks for the SHA-256 hex digest of the *whole* key. Anything else fails its
row; naming what was found (MD5 of the secret, base64 of the key...) tells the learner
what to change, where "not the expected value" would not.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import hmac

from labapp.lessons.l02_api_keys.keyformat import KEY, SECRET

HASHES = {  # hashlib name -> how people write it
    "md5": "MD5", "sha1": "SHA-1", "sha224": "SHA-224", "sha256": "SHA-256",
    "sha384": "SHA-384", "sha512": "SHA-512", "sha3_224": "SHA3-224", "sha3_256": "SHA3-256",
    "sha3_384": "SHA3-384", "sha3_512": "SHA3-512", "blake2b": "BLAKE2b", "blake2s": "BLAKE2s",
}  # fmt: skip


def parts(key: str) -> dict[str, str]:
    """The pieces of a key a store_key might keep or hash instead of the whole."""
    found = {"the whole key": key}
    if KEY.fullmatch(key):
        found.update(
            {
                "the secret part": key[SECRET],
                "the key without its checksum": key[:-9],
                "the key without its prefix": key[3:],
                "the id and the secret": key[3:11] + key[SECRET],
                "the secret and the checksum": key[12:],
            }
        )
    return found


def disguises(text: str) -> list[str]:
    """``text`` and encodings of it that are still plaintext in all but name."""
    raw = text.encode()
    encoded = [
        text,
        text.upper(),
        text[::-1],
        codecs.encode(text, "rot13"),
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b32encode(raw).decode(),
        base64.b85encode(raw).decode(),
    ]
    return [shown.rstrip("=") for shown in encoded]


def plaintext_in(table: str, key: str) -> str | None:
    """The name of the key's part found as-is (or merely encoded) in ``table``, or None."""
    for name, part in parts(key).items():  # 32+ characters: no chance match
        if any(shown in table for shown in disguises(part)):
            return name
    return None


def sha256_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_sha256_of(stored: str, key: str) -> bool:
    return hmac.compare_digest(stored.lower().encode(), sha256_of(key).encode())


def what_rests(stored: str, key: str) -> str:
    """A description of ``stored`` in terms of ``key``, for a row's detail."""
    for name, part in parts(key).items():
        for algorithm in HASHES:
            digest = hashlib.new(algorithm, part.encode()).digest()
            shapes = {
                "hex": digest.hex(),
                "base64": base64.b64encode(digest).decode().rstrip("="),
                "base64url": base64.urlsafe_b64encode(digest).decode().rstrip("="),
            }
            for shape, value in shapes.items():
                if stored.rstrip("=") in (value, value.upper()):
                    if algorithm == "sha256" and part == key:
                        return f"the SHA-256 of the whole key, but as {shape}, not hex"
                    return f"the {HASHES[algorithm]} ({shape}) of {name}"
    if found := plaintext_in(stored, key):
        return f"{found}, barely disguised"
    return f"{len(stored)} characters that are no SHA-256 hex digest of the key"
