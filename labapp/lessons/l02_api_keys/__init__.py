"""Lesson 02: API keys (a partner API that issues, stores and checks keys badly).

The lab's app is in ``app.py`` (its hooks and their weak defaults in ``weak.py``), what the
grader replays in ``battery.py`` (with ``entropy.py``, ``watch.py`` and ``timing.py``).
"""

from labapp.engine.spec import Lesson
from labapp.lessons.l02_api_keys.app import create_app, seed
from labapp.lessons.l02_api_keys.battery import ATTACKS, CHECKS
from labapp.lessons.l02_api_keys.keyformat import KEY_FORMAT
from labapp.lessons.l02_api_keys.weak import HOOKS

LESSON = Lesson(
    id="02-api-keys",
    title="Lesson 02 — API keys",
    notebook="02-api-keys.ipynb",
    minutes=90,
    create_app=create_app,
    seed=seed,
    hooks=HOOKS,
    attacks=ATTACKS,
    checks=CHECKS,
    hints={
        "defend": (
            f"The key format: {KEY_FORMAT}. zlib.crc32(text.encode()) gives the checksum; "
            "secrets.token_hex(n) gives n random bytes as 2n hex characters.",
            "store_key: keep hashlib.sha256(key.encode()).hexdigest() of the whole key, and "
            "the id in the clear.",
            "find_key: fullmatch the format and check the checksum before any lookup; then "
            "keys.by_id(); compare digests with hmac.compare_digest; a revoked record is no "
            "record.",
            "extract_key: read only req.headers.get('x-api-key'). allowed: GET needs "
            "shipments:read, POST and DELETE need shipments:write; return True or False.",
        )
    },
    try_this="Your integration's key is in the card. Try "
    "<code>lab.client.get('/shipments', headers={'X-API-Key': key})</code>.",
)
