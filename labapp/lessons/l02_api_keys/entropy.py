"""Where a minted key's randomness comes from, and whether a batch of keys shows structure.

A key is unguessable only if its id and secret come from the operating system's CSPRNG
(``secrets``, ``os.urandom``): a clock, a counter, ``uuid1`` or ``random`` can be replayed
or predicted, even when the result is hashed to *look* random. Statistics cannot see a
hashed clock, so :func:`os_random_drawn` counts the bytes the mint draws from the CSPRNG
instead: the course's format needs 32 + 128 random bits, so 20 bytes per key at least.

:func:`structure` looks for what a clock, a counter, a fixed nibble (``uuid4``'s version)
or a short alphabet leaves in a batch of keys. Its thresholds are chosen so that a real
CSPRNG trips any of them with probability below 1e-9 per grade (see each check).
"""

from __future__ import annotations

import contextlib
import os
import random
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from labapp.lessons.l02_api_keys.keyformat import ID, SECRET

MIN_BYTES = 20  # 4 bytes of key id + 16 bytes (128 bits) of secret
HEX = "0123456789abcdef"
# (module, attribute) of every way Python reaches the OS CSPRNG: ``secrets`` and
# ``random.SystemRandom`` go through random._urandom, ``uuid4`` through os.urandom.
SOURCES = ((os, "urandom"), (os, "getrandom"), (random, "_urandom"), (ssl, "RAND_bytes"))


class Draws:
    """Bytes drawn from the OS CSPRNG by threads whose name starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.total = 0
        self._lock = threading.Lock()

    def wrap(self, original: Callable[..., bytes]) -> Callable[..., bytes]:
        def counted(size: int, *args: Any) -> bytes:
            if threading.current_thread().name.startswith(self.prefix):
                with self._lock:
                    self.total += max(int(size), 0)
            return original(size, *args)

        counted.__wrapped__ = original  # type: ignore[attr-defined]
        return counted


@contextlib.contextmanager
def os_random_drawn(prefix: str, *namespaces: dict[str, Any]) -> Iterator[Draws]:
    """Count what hook threads named ``prefix...`` draw from the OS CSPRNG meanwhile.

    A learner who wrote ``from os import urandom`` holds the function itself, so each
    given namespace (the hook's ``__globals__``) has its own references wrapped too. Only
    hook threads are counted, so nothing else running meanwhile can inflate the count.
    """
    draws = Draws(prefix)
    saved: list[tuple[Any, str, Any]] = []
    originals = {}
    for module, name in SOURCES:
        original = getattr(module, name, None)
        if original is not None:
            originals[id(original)] = draws.wrap(original)
            saved.append((module, name, original))
    for namespace in namespaces:
        for name, value in list(namespace.items()):
            if id(value) in originals and value is not None:
                saved.append((namespace, name, value))
    try:
        for owner, name, original in saved:
            wrapped = originals[id(original)]
            if isinstance(owner, dict):
                owner[name] = wrapped
            else:
                setattr(owner, name, wrapped)
        yield draws
    finally:
        for owner, name, original in saved:
            if isinstance(owner, dict):
                owner[name] = original
            else:
                setattr(owner, name, original)


def structure(keys: list[str]) -> str | None:
    """What in these well-formed keys' ids and secrets a CSPRNG would not produce, or None.

    For n = 50 keys (the thresholds assume n >= 40):

    - a position that takes at most 4 of the 16 hex values: a CSPRNG does so with
      probability <= 40 * C(16,4) * (4/16)^50 < 1e-25 (a fixed or near-fixed nibble:
      uuid4's version and variant, padding, a counter's high digits);
    - a position equal between consecutive keys in more than half of the pairs: for a
      CSPRNG each pair matches with p = 1/16, independently; P(Binomial(49, 1/16) >= 25)
      < 1e-17 per position (a clock's or a counter's slow digits);
    - a hex digit that never appears in the secrets: 16 * (15/16)^(32 n) < 1e-40
      (decimal digits, a short alphabet);
    - a secret whose two halves are the same: n * 16^-16 < 1e-17 (64 bits, written twice).
    """
    offsets = [*range(ID.start, ID.stop), *range(SECRET.start, SECRET.stop)]
    for index, offset in enumerate(offsets):
        chars = [key[offset] for key in keys]
        where = f"the secret's character {index - 7}"
        if index < 8:
            where = f"the id's character {index + 1}"
        values = set(chars)
        if len(values) <= 4:
            shown = "".join(sorted(values))
            return f"{where} is always one of {shown!r} across {len(keys)} keys"
        repeats = sum(a == b for a, b in zip(chars, chars[1:], strict=False))
        if repeats * 2 > len(chars) - 1:
            return (
                f"{where} stays the same from one key to the next {repeats} times in "
                f"{len(chars) - 1}: a clock or a counter, not a CSPRNG"
            )
    if any(key[SECRET][:16] == key[SECRET][16:] for key in keys):
        return "a secret's second half repeats its first: 64 random bits, written twice"
    seen = Counter("".join(key[SECRET] for key in keys))
    missing = [c for c in HEX if c not in seen]
    if missing:
        return f"the secrets never use {''.join(missing)!r} across {len(keys)} keys"
    return None
