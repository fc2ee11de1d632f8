"""Lesson 05: each refresh attack breaches the weak API; the solution stops all, wrong ones fail."""

from __future__ import annotations

import concurrent.futures
import hashlib
import re
import threading
import time

import jwt
import pytest

from labapp import DefenseBreached, Lab
from labapp.engine.grading import run_item
from labapp.lessons.l05_refresh import LESSON
from tests.conftest import solution_namespace

HOOKS = ("issue_refresh", "rotate", "validate_access", "logout", "access_lifetime")


def solution() -> dict:
    """The five hooks the solution notebook defines."""
    namespace = solution_namespace("05-refresh-rotation.ipynb", "rotate")
    return {name: namespace[name] for name in HOOKS}


def _login(lab: Lab) -> dict:
    alice = lab.users[0]
    return lab.client.post(
        "/login", json={"username": "alice", "password": alice["password"]}
    ).json()


def _refresh(lab: Lab, token: str):
    return lab.client.post("/refresh", json={"refresh_token": token})


def _me(lab: Lab, token: str):
    return lab.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})


def _bobs_token(lab: Lab) -> str:
    line = lab.client.get("/debug/app-log").json()[-1]
    return re.search(r'"refresh_token": "([^"]+)"', line)[1]


@pytest.mark.parametrize("attack", [a.id for a in LESSON.attacks])
def test_each_attack_breaches_the_weak_api(lab05: Lab, attack: str) -> None:
    """Against the shipped hooks, every attack of the lesson gets through."""
    item = next(a for a in LESSON.attacks if a.id == attack)
    assert not run_item(lab05, item).passed


def test_replaying_bobs_old_refresh_token_reveals_the_flag(lab05: Lab) -> None:
    """bob's logged token still works after bob's app has refreshed past it."""
    stolen = _bobs_token(lab05)
    lab05.client.post("/simulate/victim-refresh")
    lab05.check_flag("refresh-replay", _refresh(lab05, stolen).json()["flag"])


def test_the_attackers_branch_outliving_bobs_reuse_reveals_the_flag(lab05: Lab) -> None:
    """The attacker refreshes first; bob's reuse changes nothing for the attacker's branch."""
    mine = _refresh(lab05, _bobs_token(lab05)).json()["refresh_token"]
    lab05.client.post("/simulate/victim-refresh")
    lab05.check_flag("reuse-unnoticed", _refresh(lab05, mine).json()["flag"])


def test_a_refresh_token_on_the_api_reveals_the_flag(lab05: Lab) -> None:
    """The refresh JWT shares the access tokens' key and lacks their typ."""
    lab05.check_flag("type-confusion", _me(lab05, _login(lab05)["refresh_token"]).json()["flag"])


def test_an_access_token_after_logout_reveals_the_flag(lab05: Lab) -> None:
    """Logout deletes the refresh token only; the access token lives on."""
    tokens = _login(lab05)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    lab05.client.post("/logout", headers=bearer, json={"refresh_token": tokens["refresh_token"]})
    lab05.check_flag("after-logout", _me(lab05, tokens["access_token"]).json()["flag"])


def test_two_concurrent_refreshes_reveal_the_race_flag(lab05: Lab) -> None:
    """Eight parallel uses of one refresh token: two overlapping successes earn the flag."""
    token = _login(lab05)["refresh_token"]
    together = threading.Barrier(8)

    def use(_):
        together.wait(timeout=5)
        return _refresh(lab05, token).json()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(use, range(8)))
    lab05.check_flag("race", next(a["flag"] for a in answers if "flag" in a))


def test_legitimate_use_earns_no_flag(lab05: Lab) -> None:
    """Log in, rotate ten times, use each access token, log out: no flag anywhere."""
    tokens = _login(lab05)
    for _ in range(10):
        assert "flag" not in _me(lab05, tokens["access_token"]).json()
        tokens = _refresh(lab05, tokens["refresh_token"]).json()
        assert "flag" not in tokens
    lab05.client.post("/simulate/victim-refresh")  # bob's own refreshes earn nothing either
    assert "flag" not in _refresh(lab05, _bobs_token(lab05)).json()


def test_the_solution_stops_every_attack_and_keeps_sessions_working(lab05: Lab) -> None:
    """The solution notebook's five hooks pass every row, and again when re-run."""
    lab05.defend(**solution())
    assert lab05.grade().passed
    assert lab05.grade().passed  # learners re-run grader cells: no state may trip it


def test_reuse_revokes_the_family_and_is_audited(lab05: Lab) -> None:
    """With the solution, bob's reuse logs out both bob's app and the attacker, on record."""
    lab05.defend(**solution())
    mine = _refresh(lab05, _bobs_token(lab05)).json()["refresh_token"]
    outcome = lab05.client.post("/simulate/victim-refresh").json()["outcome"]
    assert outcome == "refresh refused: bob signed in again"
    assert _refresh(lab05, mine).status_code == 401
    reasons = [row["reason"] for row in lab05.audit("deny")]
    assert "refresh token reuse detected" in reasons
    assert not any(mine in str(row) for row in lab05.audit())


def test_refresh_tokens_are_opaque_and_only_hashes_rest(lab05: Lab) -> None:
    """The solution's refresh tokens are not JWTs, and the table holds their SHA-256 only."""
    lab05.defend(**solution())
    token = _login(lab05)["refresh_token"]
    assert token.count(".") != 2
    stored = {row["hash"] for row in lab05.store.query("SELECT hash FROM refresh_tokens")}
    assert hashlib.sha256(token.encode()).hexdigest() in stored and token not in stored


def test_a_hook_returning_the_wrong_type_is_named_in_the_report(lab05: Lab) -> None:
    """rotate returning True is reported as rotate's mistake, not a bare 500."""
    lab05.defend(**_with(rotate=lambda presented, tokens: True))
    with pytest.raises(DefenseBreached) as caught:
        lab05.grade()
    assert "rotate() returned: must return a record from tokens.find()" in str(caught.value.report)


# -- plausible wrong defenses ---------------------------------------------------------------


def _with(**overrides):
    hooks = solution()
    hooks.update(overrides)
    return hooks


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def refuses_reuse_only(presented, tokens):
    """Rotation without family revocation: the used token is refused, its family lives on."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"] or not tokens.claim(record["hash"]):
        return None
    return record


def check_then_update(presented, tokens):
    """Reads `used`, then writes it: two concurrent calls both read 'not used yet'."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"]:
        return None
    if record["used"]:
        tokens.revoke_family(record["family"])
        return None
    tokens.mark_used(record["hash"])
    return record


def no_family_lifetime(presented, tokens):
    """Single use and reuse detection, but a family may refresh forever."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"]:
        return None
    if not tokens.claim(record["hash"]):
        tokens.revoke_family(record["family"])
        return None
    return record


def untyped_validate(token, tokens):
    """Signature, issuer, audience, expiry and denylist: everything but the type."""
    try:
        claims = jwt.decode(
            token,
            tokens.public_key,
            algorithms=["RS256"],
            audience=tokens.AUDIENCE,
            issuer=tokens.ISSUER,
        )
    except jwt.PyJWTError:
        return None
    return None if tokens.is_denied(claims["jti"]) else claims


def jwt_refresh(username, family, tokens):
    """Hashed at rest, but still a JWT signed with the access tokens' key (typ JWT)."""
    now = int(time.time())
    token = tokens.mint(
        {
            "iss": tokens.ISSUER,
            "aud": tokens.AUDIENCE,
            "sub": username,
            "sid": family,
            "iat": now,
            "exp": now + 86400,
            "jti": _digest(str(time.perf_counter_ns()))[:16],
        }
    )
    tokens.save(_digest(token), username, family)
    return token


def forgets_the_access_token(claims, refresh_token, tokens):
    """Deletes the presented refresh token, and that is all (the weak logout's idea)."""
    tokens.delete(hashlib.sha256(refresh_token.encode()).hexdigest())


def _denylist_only_validate():
    ns = solution()

    def validate_access(token, tokens):
        class NoSessionCheck:
            def __getattr__(self, name):
                return getattr(tokens, name)

            def session_ended(self, family):
                return False

        return ns["validate_access"](token, NoSessionCheck())

    return validate_access


def forgets_the_family(claims, refresh_token, tokens):
    """Denies the access token but the session's refresh token still refreshes."""
    tokens.deny(claims["jti"], claims["exp"])


def plaintext_refresh(username, family, tokens):
    import secrets

    token = secrets.token_urlsafe(32)
    tokens.save(token, username, family)
    return token


def plaintext_rotate(presented, tokens):
    record = tokens.find(presented)
    if record is None or record["revoked"]:
        return None
    if not tokens.claim(record["hash"]):
        tokens.revoke_family(record["family"])
        return None
    return record


def revokes_everything(presented, tokens):
    """Treats every refresh as a reuse: secure, and nobody stays logged in."""
    record = tokens.find(_digest(presented))
    if record is not None:
        tokens.revoke_family(record["family"])
    return None


WRONG = {
    "rotation without family revocation": (dict(rotate=refuses_reuse_only), "reuse-unnoticed"),
    "check-then-update rotation": (dict(rotate=check_then_update), "race"),
    "access validation without typ": (
        dict(validate_access=untyped_validate, issue_refresh=jwt_refresh),
        "type-confusion",
    ),
    "typ unchecked, even with opaque refresh tokens": (
        dict(validate_access=untyped_validate),
        "type-confusion",
    ),
    "logout deletes only the refresh token": (
        dict(logout=forgets_the_access_token, validate_access=_denylist_only_validate()),
        "after-logout",
    ),
    "a jti denylist but no end of session": (
        dict(validate_access=_denylist_only_validate()),
        "after-logout",
    ),
    "logout forgets the refresh family": (dict(logout=forgets_the_family), "after-logout"),
    "no absolute family lifetime": (dict(rotate=no_family_lifetime), "family-lifetime"),
    "twelve-hour access tokens": (dict(access_lifetime=lambda: 12 * 3600), "long-lived-access"),
    "refresh tokens in plaintext": (
        dict(issue_refresh=plaintext_refresh, rotate=plaintext_rotate),
        "refresh-at-rest",
    ),
    "every refresh revokes": (dict(rotate=revokes_everything), "rotation-chain"),
}


@pytest.mark.parametrize("mistake", list(WRONG))
def test_the_grader_catches_a_plausible_wrong_defense(lab05: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names it."""
    overrides, row = WRONG[mistake]
    lab05.defend(**_with(**overrides))
    with pytest.raises(DefenseBreached) as caught:
        lab05.grade()
    assert row in {failure.id for failure in caught.value.report.failures}
