"""Lesson 03: passwords and login (a shop login that is weak in four ways).

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson
from labapp.lessons.l03_passwords.app import HOOKS, create_app, seed
from labapp.lessons.l03_passwords.battery import ATTACKS, CHECKS

LESSON = Lesson(
    id="03-passwords",
    title="Lesson 03 — Passwords and login",
    notebook="03-passwords-and-login.ipynb",
    minutes=90,
    create_app=create_app,
    seed=seed,
    hooks=HOOKS,
    attacks=ATTACKS,
    checks=CHECKS,
    hints={
        "defend": (
            "One PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1) for everything: "
            "new hashes, checks, and the DUMMY_HASH.",
            "Unknown user (None) or an old 'sha1$' hash: one HASHER.verify of DUMMY_HASH, made "
            "once; for sha1, hmac.compare_digest; return a bool.",
            "The password exactly as sent: no .strip(), .lower(), slicing or normalising.",
            "needs_rehash: True for anything not argon2id, or if check_needs_rehash says so.",
            "failure_response: one (401, message) for both 'unknown-user' and "
            "'wrong-password', and (429, message) for 'throttled'; throttle_key: the username, "
            "nothing else.",
        )
    },
    try_this="Try <code>lab.client.post('/login', json={'username': 'alice', "
    "'password': 'wrong'})</code>, then a username that does not exist.",
)
