"""Lesson 02: API keys (a partner API that issues, stores and checks keys badly).

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson
from labapp.lessons.l02_api_keys.app import HOOKS, KEY_FORMAT, create_app, seed
from labapp.lessons.l02_api_keys.battery import ATTACKS, CHECKS

LESSON = Lesson(
    id="02-api-keys",
    title="Lesson 02 — API keys",
    notebook="02-api-keys.ipynb",
    minutes=60,
    create_app=create_app,
    seed=seed,
    hooks=HOOKS,
    attacks=ATTACKS,
    checks=CHECKS,
    hints={
        "defend": (
            f"The key format: {KEY_FORMAT}. zlib.crc32(text.encode()) gives the checksum.",
            "store_key: keep hashlib.sha256(key.encode()).hexdigest(), and the id in the clear.",
            "find_key: parse and check the format first; look the record up with keys.by_id(); "
            "compare digests with hmac.compare_digest; a revoked record is no record.",
            "extract_key: read only req.headers.get('x-api-key'). allowed: GET needs "
            "shipments:read, POST and DELETE need shipments:write.",
        )
    },
    try_this="Your integration's key is in the card. Try "
    "<code>lab.client.get('/shipments', headers={'X-API-Key': key})</code>.",
)
