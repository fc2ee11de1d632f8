"""Lesson 04: JWT validation (one issuer, ten services, ten wrong ways to check a token).

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson
from labapp.lessons.l04_jwt.app import HOOKS, create_app, seed
from labapp.lessons.l04_jwt.battery import ATTACKS, CHECKS

LESSON = Lesson(
    id="04-jwt",
    title="Lesson 04 — JWT validation",
    notebook="04-jwt-validation.ipynb",
    minutes=120,
    create_app=create_app,
    seed=seed,
    hooks=HOOKS,
    attacks=ATTACKS,
    checks=CHECKS,
    hints={
        "defend": (
            "Build KEYS = {kid: public key} once, outside validate_token, from "
            "/.well-known/jwks.json; never from a token. jwt.PyJWK(jwk).key gives the key; "
            "KEYS.get(kid) is None means refuse.",
            "key = KEYS.get(kid) (refuse if None), then jwt.decode_complete(token, key, "
            "algorithms=['RS256'], audience=..., issuer=..., leeway=30, "
            "options={'require': [...]}); then check header['typ'].",
            "PyJWT int()s exp, iat and nbf and accepts any future exp: check that each is an int "
            "or a float (not a bool), and that exp <= iat + LIFETIME.",
            "Wrap it all in try/except jwt.PyJWTError: return None. InvalidKeyError is not an "
            "InvalidTokenError.",
        )
    },
    try_this="Log in as alice: <code>token = lab.client.post('/login', "
    "json=lab.users[0]).json()['access_token']</code>, then <code>GET /svc</code>.",
)
