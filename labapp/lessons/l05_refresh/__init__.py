"""Lesson 05: refresh tokens, their rotation and revocation.

The lab's app is in ``app.py``, what the grader replays in ``battery.py``.
"""

from labapp.engine.spec import Lesson
from labapp.lessons.l05_refresh.app import create_app, seed
from labapp.lessons.l05_refresh.battery import ATTACKS, CHECKS
from labapp.lessons.l05_refresh.weak import HOOKS

LESSON = Lesson(
    id="05-refresh",
    title="Lesson 05 — Refresh tokens: rotation and revocation",
    notebook="05-refresh-rotation.ipynb",
    minutes=90,
    create_app=create_app,
    seed=seed,
    hooks=HOOKS,
    attacks=ATTACKS,
    checks=CHECKS,
    hints={
        "defend": (
            "issue_refresh: secrets.token_urlsafe(32) (256 random bits, nothing to decode); "
            "tokens.save(sha256 hex of it, username, family); return the token.",
            "rotate: record = tokens.find(digest); refuse None, revoked, or a family_started "
            "more than 7 days ago; then tokens.claim(digest): if it returns False the token "
            "was used before (or is being used right now), so "
            "tokens.revoke_family(record['family']) and refuse. Every loser, every time.",
            "validate_access: inside one try, jwt.get_unverified_header(token).get('typ') must "
            "be 'at+jwt' or 'application/at+jwt' (RFC 9068 §4); decode with "
            "algorithms=['RS256'], audience, issuer and options={'require': ['exp', ...]}; "
            "except jwt.PyJWTError: None; then refuse tokens.is_denied(jti) and "
            "tokens.session_ended(claims['sid']).",
            "logout: tokens.deny(claims['jti'], claims['exp']) and "
            "tokens.revoke_family(claims['sid'], 'logout'); leave the body's refresh_token "
            "alone (it may be someone else's). access_lifetime: 5 minutes.",
        )
    },
    try_this="Log in as alice: <code>lab.client.post('/login', json={'username': 'alice', "
    "'password': lab.users[0]['password']})</code>, then refresh with the refresh token.",
)
