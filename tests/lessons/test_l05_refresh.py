"""Lesson 05: each refresh attack breaches the weak API; the solution stops all, wrong ones fail."""

from __future__ import annotations

import base64
import concurrent.futures
import functools
import hashlib
import os
import random
import re
import secrets
import string
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from labapp import DefenseBreached, Lab
from labapp.engine.grading import run_item
from labapp.lessons.l05_refresh import LESSON
from labapp.lessons.l05_refresh.probes import draws_from_csprng, estimated_bits
from tests.conftest import solution_namespace

HOOKS = ("issue_refresh", "rotate", "validate_access", "logout", "access_lifetime")


def solution() -> dict[str, Callable[..., Any]]:
    """The five hooks the solution notebook defines."""
    namespace = solution_namespace("05-refresh-rotation.ipynb", "rotate")
    return {name: namespace[name] for name in HOOKS}


def _with(**overrides: Callable[..., Any]) -> dict[str, Callable[..., Any]]:
    hooks = solution()
    hooks.update(overrides)
    return hooks


def _login(lab: Lab, username: str = "alice") -> dict:
    alice = lab.users[0]
    return lab.client.post(
        "/login", json={"username": username, "password": alice["password"]}
    ).json()


def _refresh(lab: Lab, token: str):
    return lab.client.post("/refresh", json={"refresh_token": token})


def _me(lab: Lab, token: str):
    return lab.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})


def _bobs_token(lab: Lab) -> str:
    line = lab.client.get("/debug/app-log").json()[-1]
    return re.search(r'"refresh_token": "([^"]+)"', line)[1]


def _flags_handed_out(lab: Lab) -> list[str]:
    """Count the flags the server reveals from now on (wraps the lab's own flag call)."""
    handed: list[str] = []
    real = lab.state.flag

    def counted(name: str) -> str:
        handed.append(name)
        return real(name)

    lab.state.flag = counted  # type: ignore[method-assign]
    return handed


# -- the weak API and its flags -------------------------------------------------------------


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


def test_the_reuse_flag_waits_for_bobs_reuse_even_after_attack_one(lab05: Lab) -> None:
    """Attack 1 leaves a replayed token in bob's family; attack 2's first step earns nothing."""
    stolen = _bobs_token(lab05)
    lab05.client.post("/simulate/victim-refresh")
    assert "flag" in _refresh(lab05, stolen).json()  # attack 1: refresh-replay
    first_step = _refresh(lab05, _bobs_token(lab05)).json()
    assert "flag" not in first_step
    lab05.client.post("/simulate/victim-refresh")
    flag = _refresh(lab05, first_step["refresh_token"]).json()["flag"]
    lab05.check_flag("reuse-unnoticed", flag)


def test_a_refresh_token_on_the_api_reveals_the_flag(lab05: Lab) -> None:
    """The refresh JWT shares the access tokens' key and lacks their typ."""
    lab05.check_flag("type-confusion", _me(lab05, _login(lab05)["refresh_token"]).json()["flag"])


def test_an_access_token_after_logout_reveals_the_flag(lab05: Lab) -> None:
    """Logout deletes the refresh token only; the access token lives on."""
    tokens = _login(lab05)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    lab05.client.post("/logout", headers=bearer, json={"refresh_token": tokens["refresh_token"]})
    lab05.check_flag("after-logout", _me(lab05, tokens["access_token"]).json()["flag"])


def _burst(lab: Lab, token: str, n: int = 8) -> list[dict]:
    together = threading.Barrier(n)

    def use(_: int) -> dict:
        together.wait(timeout=5)
        return _refresh(lab, token).json()

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(use, range(n)))


def test_two_concurrent_refreshes_reveal_the_race_flag(lab05: Lab) -> None:
    """Eight parallel uses of one refresh token: two overlapping successes earn the flag."""
    answers = _burst(lab05, _login(lab05)["refresh_token"])
    lab05.check_flag("race", next(a["flag"] for a in answers if "flag" in a))


def test_legitimate_use_earns_no_flag(lab05: Lab) -> None:
    """Log in, rotate ten times, use each access token, log out: no flag anywhere."""
    handed = _flags_handed_out(lab05)
    tokens = _login(lab05)
    for _ in range(10):
        assert "flag" not in _me(lab05, tokens["access_token"]).json()
        tokens = _refresh(lab05, tokens["refresh_token"]).json()
        assert "flag" not in tokens
    lab05.client.post("/simulate/victim-refresh")  # bob's own refreshes earn nothing either
    assert "flag" not in _refresh(lab05, _bobs_token(lab05)).json()
    assert handed == []


# -- the solution ---------------------------------------------------------------------------


def test_the_solution_stops_every_attack_and_keeps_sessions_working(lab05: Lab) -> None:
    """The solution notebook's five hooks pass every row, and again when re-run."""
    lab05.defend(**solution())
    assert lab05.grade().passed
    assert lab05.grade().passed  # learners re-run grader cells: no state may trip it


def test_the_grader_hands_no_flag_to_the_solution(lab05: Lab) -> None:
    """Bursts, reuses and logouts against a correct defense: the server reveals no flag."""
    lab05.defend(**solution())
    handed = _flags_handed_out(lab05)
    lab05.grade()
    assert handed == []


def _thief_races_bob(lab: Lab) -> None:
    """bob's app and the thief present bob's token at once; the thief runs on at once."""
    stolen = _bobs_token(lab)
    together = threading.Barrier(2)

    def thief() -> None:
        together.wait(timeout=5)
        answer = _refresh(lab, stolen).json()
        for _ in range(3):  # while bob's losing request may still be revoking the family
            if "refresh_token" not in answer:
                break
            _me(lab, answer["access_token"])
            answer = _refresh(lab, answer["refresh_token"]).json()

    def bob() -> None:
        together.wait(timeout=5)
        lab.client.post("/simulate/victim-refresh")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda run: run(), (thief, bob)))


def test_a_correct_defense_racing_its_own_revocation_earns_no_flag(lab05: Lab) -> None:
    """bob and the thief present one token at once; the thief's branch then races the revoke."""
    lab05.defend(**solution())
    handed = _flags_handed_out(lab05)
    for _ in range(3):
        _thief_races_bob(lab05)
    assert handed == []


def test_a_logout_racing_the_api_earns_no_flag(lab05: Lab) -> None:
    """Calls to the API while a correct logout runs are not 'after logout'."""
    lab05.defend(**solution())
    handed = _flags_handed_out(lab05)
    tokens = _login(lab05)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    def call(i: int) -> None:
        if i == 0:
            lab05.client.post("/logout", headers=bearer, json={})
        else:
            _me(lab05, tokens["access_token"])

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(call, range(6)))
    assert handed == []


def test_reuse_revokes_the_family_and_is_audited(lab05: Lab) -> None:
    """With the solution, bob's reuse logs out both bob's app and the attacker, on record."""
    lab05.defend(**solution())
    mine = _refresh(lab05, _bobs_token(lab05)).json()
    outcome = lab05.client.post("/simulate/victim-refresh").json()["outcome"]
    assert outcome == "refresh refused: bob signed in again"
    assert _refresh(lab05, mine["refresh_token"]).status_code == 401
    assert _me(lab05, mine["access_token"]).status_code == 401
    reasons = [row["reason"] for row in lab05.audit("deny")]
    assert "refresh token reuse detected" in reasons
    assert not any(mine["refresh_token"] in str(row) for row in lab05.audit())


def test_refresh_tokens_are_opaque_and_only_hashes_rest(lab05: Lab) -> None:
    """The solution's refresh tokens are not JWTs, and the table holds their SHA-256 only."""
    lab05.defend(**solution())
    token = _login(lab05)["refresh_token"]
    assert token.count(".") != 2
    stored = {row["hash"] for row in lab05.store.query("SELECT hash FROM refresh_tokens")}
    assert hashlib.sha256(token.encode()).hexdigest() in stored and token not in stored


def test_the_entropy_look_passes_128_bits_and_fails_less() -> None:
    """token_urlsafe(16) and token_hex(16) carry 128 bits; a UUID4's 122 and 15 bytes do not."""
    assert estimated_bits([secrets.token_urlsafe(16) for _ in range(16)]) >= 128
    assert estimated_bits([secrets.token_hex(16) for _ in range(16)]) >= 128
    assert estimated_bits([str(uuid.uuid4()) for _ in range(16)]) < 128
    assert estimated_bits([secrets.token_hex(15) for _ in range(16)]) < 128


def test_the_csprng_look_follows_helpers_and_imports() -> None:
    """secrets reached through a helper, an alias or a local import counts; random does not."""
    from secrets import token_bytes as tb

    def helper() -> str:
        return secrets.token_urlsafe(32)

    def local_import() -> str:
        import secrets as s

        return s.token_hex(32)

    assert draws_from_csprng(lambda: helper())
    assert draws_from_csprng(lambda: tb(32).hex())
    assert draws_from_csprng(local_import)
    assert draws_from_csprng(solution()["issue_refresh"])
    assert draws_from_csprng(lambda: "".join(random.choices(string.hexdigits, k=64))) is False
    assert draws_from_csprng(lambda: uuid.uuid4().hex) is False


# -- hostile input: a 4xx, never a 5xx --------------------------------------------------------

HOSTILE_BODIES = {
    "a lone surrogate": b'{"refresh_token": "\\ud800", "username": "\\udfff", "password": "x"}',
    "an integer beyond 64 bits": b'{"refresh_token": 123456789012345678901234567890123}',
    "a 5000-digit integer": b'{"refresh_token": ' + b"9" * 5000 + b"}",
    "a float beyond double": b'{"refresh_token": 1e400, "username": -1e400}',
    "deep nesting": b'{"refresh_token": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "duplicate keys": b'{"refresh_token": "a", "refresh_token": {"b": 1}, "username": "alice"}',
    "a list": b'["refresh_token"]',
    "null": b"null",
    "a NUL and controls": b'{"refresh_token": "a\\u0000\\u001b", "username": "al\\u0000ice"}',
    "non-ASCII": '{"refresh_token": "é☃𝄞", "username": "é", "password": "☃"}'.encode(),
    "a 5 MB string": b'{"refresh_token": "' + b"a" * 5_000_000 + b'"}',
    "not JSON": b"\xff\xfe{",
    "empty": b"",
}


def _b64url(header: bytes) -> str:
    """A token whose header is ``header``, with a harmless payload and a made-up signature."""
    return f"{base64.urlsafe_b64encode(header).decode().rstrip('=')}.e30.c2ln"


HOSTILE_BEARERS = {
    "nothing after Bearer": "Bearer",
    "another scheme": "Basic YWxpY2U6eA==",
    "latin-1 bytes": "Bearer \xe9\xff.\xe9.\xe9",
    "a header that is a list": "Bearer WzEsMl0.e30.c2ln",
    "a deeply nested header": "Bearer " + _b64url(b'{"typ":' + b"[" * 5000 + b"]" * 5000 + b"}"),
    "duplicate keys": "Bearer " + _b64url(b'{"alg":"RS256","alg":"none","typ":"at+jwt"}'),
    "an integer beyond 64 bits": "Bearer " + _b64url(b'{"alg":"RS256","kid":' + b"9" * 400 + b"}"),
    "a lone surrogate": "Bearer " + _b64url(b'{"alg":"RS256","typ":"\\ud800"}'),
    "a 60 kB token": "Bearer " + "a" * 60_000,
    "many dots": "Bearer " + "." * 5000,
}


@pytest.mark.parametrize("defended", [False, True], ids=["weak", "solution"])
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_hostile_input_gets_a_4xx_never_a_5xx(lab05: Lab, defended: bool, signed_in: bool) -> None:
    """Odd bodies, bearers, paths and queries on every route: 4xx answers, never a 500."""
    if defended:
        lab05.defend(**solution())
    bearer = {}
    if signed_in:
        bearer = {"Authorization": f"Bearer {_login(lab05)['access_token']}"}
    seen = {}
    for path in ("/login", "/refresh", "/logout"):
        for name, body in HOSTILE_BODIES.items():
            headers = {"content-type": "application/json", **bearer}
            response = lab05.client.post(path, content=body, headers=headers)
            seen[f"POST {path} {name}"] = response.status_code
            if path == "/logout" and response.is_success:  # signed out: sign in again
                bearer = {"Authorization": f"Bearer {_login(lab05)['access_token']}"}
    for name, value in HOSTILE_BEARERS.items():
        for method, path in (("GET", "/api/me"), ("POST", "/logout")):
            headers = {"Authorization": value.encode("latin-1")}
            response = lab05.client.request(method, path, headers=headers)
            seen[f"{method} {path} {name}"] = response.status_code
    for path in (
        "/api/me/%ED%A0%80",
        "/refresh?refresh_token=%ED%A0%80",
        "/api/me?x=" + "9" * 5000,
    ):
        seen[f"GET {path[:30]}"] = lab05.client.get(path, headers=bearer).status_code
    server_errors = {case: status for case, status in seen.items() if status >= 500}
    assert not server_errors


def test_a_bodyless_logout_is_a_logout(lab05: Lab) -> None:
    """An app that lost its refresh token still logs out with its access token alone."""
    lab05.defend(**solution())
    tokens = _login(lab05)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert lab05.client.post("/logout", headers=bearer).status_code == 200
    assert _refresh(lab05, tokens["refresh_token"]).status_code == 401


# -- hooks that return the wrong thing are named ------------------------------------------

WRONG_RETURNS = {
    "rotate returns True": (dict(rotate=lambda presented, tokens: True), "rotate() returned"),
    "rotate refuses with False": (dict(rotate=lambda presented, tokens: False), "rotate()"),
    "validate_access returns True": (
        dict(validate_access=lambda token, tokens: True),
        "validate_access() returned",
    ),
    "issue_refresh returns bytes": (
        dict(issue_refresh=lambda username, family, tokens: secrets.token_bytes(32)),
        "issue_refresh() returned bytes",
    ),
    "issue_refresh returns a NUL": (
        dict(issue_refresh=lambda username, family, tokens: "\x00" + secrets.token_hex(32)),
        "printable ASCII",
    ),
    "access_lifetime returns a str": (dict(access_lifetime=lambda: "300"), "access_lifetime()"),
    "access_lifetime returns NaN": (dict(access_lifetime=lambda: float("nan")), "finite"),
    "access_lifetime returns 10**400": (dict(access_lifetime=lambda: 10**400), "finite"),
}


@pytest.mark.parametrize("mistake", list(WRONG_RETURNS))
def test_a_hook_returning_the_wrong_thing_is_named_in_the_report(lab05: Lab, mistake: str) -> None:
    """A hook's unusable answer is reported as that hook's mistake, not a bare 500."""
    overrides, words = WRONG_RETURNS[mistake]
    lab05.defend(**_with(**overrides))
    with pytest.raises(DefenseBreached) as caught:
        lab05.grade()
    report = str(caught.value.report)
    assert words in report
    assert "(a 5xx is never a pass)" in report


# -- plausible wrong defenses ---------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


FAMILY_LIFETIME = 7 * 24 * 3600


def rotation(
    *,
    lookup: Callable[[str], str] = _digest,
    lifetime: float | None = FAMILY_LIFETIME,
    refuse_revoked: bool = True,
    refuse_unknown: bool = True,
) -> Callable[..., Any]:
    """The solution's rotate, with one of its checks changed."""

    def rotate(presented, tokens):
        record = tokens.find(lookup(presented))
        if (record is None and refuse_unknown) or (refuse_revoked and record["revoked"]):
            return None
        if lifetime is not None and time.time() - record["family_started"] > lifetime:
            tokens.revoke_family(record["family"], "absolute lifetime reached")
            return None
        if not tokens.claim(record["hash"]):
            tokens.revoke_family(record["family"], "refresh token reuse detected")
            return None
        return record

    return rotate


def _too_old(record: dict, tokens: Any) -> bool:
    """The solution's absolute lifetime, so that each wrong rotate breaks one rule only."""
    if time.time() - record["family_started"] <= FAMILY_LIFETIME:
        return False
    tokens.revoke_family(record["family"], "absolute lifetime reached")
    return True


def refuses_reuse_only(presented, tokens):
    """Rotation without family revocation: the used token is refused, its family lives on."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"] or _too_old(record, tokens):
        return None
    if not tokens.claim(record["hash"]):
        return None
    return record


def check_then_update(presented, tokens):
    """Reads `used`, then writes it: two concurrent calls both read 'not used yet'."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"] or _too_old(record, tokens):
        return None
    if record["used"]:
        tokens.revoke_family(record["family"])
        return None
    tokens.mark_used(record["hash"])
    return record


def revokes_on_the_stale_read(presented, tokens):
    """Claims atomically, but revokes only when find() said 'used': a burst revokes nothing."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"] or _too_old(record, tokens):
        return None
    if record["used"]:
        tokens.revoke_family(record["family"])
        return None
    if not tokens.claim(record["hash"]):
        return None  # "someone else is refreshing right now": refused, family untouched
    return record


def grace_for_retries(presented, tokens):
    """A lost claim within 10 s of the token's birth is 'a client retry': refused, not revoked."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"] or _too_old(record, tokens):
        return None
    if not tokens.claim(record["hash"]):
        if time.time() - record["created"] > 10:
            tokens.revoke_family(record["family"])
        return None
    return record


_ROTATE_LOCK = threading.Lock()


def locked_rotate(presented, tokens):
    """A lock makes find-then-mark_used safe in this one process, and in no other."""
    with _ROTATE_LOCK:
        record = tokens.find(_digest(presented))
        if record is None or record["revoked"] or _too_old(record, tokens):
            return None
        if record["used"]:
            tokens.revoke_family(record["family"])
            return None
        tokens.mark_used(record["hash"])
        return record


def deletes_instead_of_claiming(presented, tokens):
    """Deleting the used token is single use of a kind, but a reuse finds nothing to revoke."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"] or _too_old(record, tokens):
        return None
    tokens.delete(record["hash"])
    return record


def ignores_the_claim(presented, tokens):
    """Calls claim() and goes on whatever it answered."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"] or _too_old(record, tokens):
        return None
    tokens.claim(record["hash"])
    return record


def caps_rotations() -> dict[str, Callable[..., Any]]:
    """Refuses a family's ninth refresh: a long session ends by surprise."""
    rotations: Counter = Counter()
    rotate = rotation()

    def capped(presented, tokens):
        record = rotate(presented, tokens)
        if record is not None:
            rotations[record["family"]] += 1
            if rotations[record["family"]] > 8:
                return None
        return record

    return _with(rotate=capped)


def lifetime_from_the_token(presented, tokens):
    """Seven days, counted from the token's birth: a session that refreshes lives for ever."""
    record = rotation(lifetime=None)(presented, tokens)
    if record is not None and time.time() - record["created"] > FAMILY_LIFETIME:
        return None
    return record


def revokes_everything(presented, tokens):
    """Treats every refresh as a reuse: secure, and nobody stays logged in."""
    record = tokens.find(_digest(presented))
    if record is not None:
        tokens.revoke_family(record["family"])
    return None


def validation(
    *,
    typ_ok: Callable[[dict, dict], bool] = lambda header, claims: header.get("typ") == "at+jwt",
    options: dict | None = None,
    leeway: float = 0,
    denylist: bool = True,
    session: bool = True,
    ended: set[str] | None = None,
    algorithms: tuple[str, ...] = ("RS256",),
) -> Callable[..., Any]:
    """The solution's validate_access, with one of its checks changed."""
    if options is None:
        options = {"require": ["exp", "iat", "jti", "sub", "sid"]}

    def validate_access(token, tokens):
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                tokens.public_key,
                algorithms=list(algorithms),
                audience=tokens.AUDIENCE,
                issuer=tokens.ISSUER,
                options=options,
                leeway=leeway,
            )
        except jwt.PyJWTError:
            return None
        if not typ_ok(header, claims):
            return None
        if denylist and tokens.is_denied(claims.get("jti")):
            return None
        if session and tokens.session_ended(claims.get("sid")):
            return None
        if ended is not None and claims.get("sid") in ended:
            return None
        return claims

    return validate_access


def expired_grace(token, tokens):
    """Lets an expired token through 'for a while' by decoding it again without exp."""
    ok = validation()
    try:
        jwt.decode(token, tokens.public_key, algorithms=["RS256"], audience=tokens.AUDIENCE)
    except jwt.ExpiredSignatureError:
        return validation(options={"verify_exp": False})(token, tokens)
    except jwt.PyJWTError:
        return None
    return ok(token, tokens)


def typ_by_index(token, tokens):
    """Reads header['typ']: a token without one crashes the hook (a 500, not a refusal)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    if header["typ"] != "at+jwt":
        return None
    return validation()(token, tokens)


def remembers_logouts() -> dict[str, Callable[..., Any]]:
    """Keeps its own set of logged-out sessions, which a reuse's revocation never enters."""
    ended: set[str] = set()

    def logout(claims, refresh_token, tokens):
        tokens.deny(claims["jti"], claims["exp"])
        tokens.revoke_family(claims["sid"], "logout")
        ended.add(claims["sid"])

    return _with(logout=logout, validate_access=validation(session=False, ended=ended))


def logs_out_the_user() -> dict[str, Callable[..., Any]]:
    """Ends 'alice' rather than this session: her next login is refused too."""
    ended: set[str] = set()
    validate = validation()

    def logout(claims, refresh_token, tokens):
        tokens.deny(claims["jti"], claims["exp"])
        tokens.revoke_family(claims["sid"], "logout")
        ended.add(claims["sub"])

    def validate_access(token, tokens):
        claims = validate(token, tokens)
        return None if claims is None or claims["sub"] in ended else claims

    return _with(logout=logout, validate_access=validate_access)


def logout_of_the_body_token(claims, refresh_token, tokens):
    """Revokes the family of the refresh token in the body: whosever it is."""
    tokens.deny(claims["jti"], claims["exp"])
    record = tokens.find(_digest(refresh_token)) if refresh_token else None
    if record is not None:
        tokens.revoke_family(record["family"], "logout")


def logout_of_both(claims, refresh_token, tokens):
    """Revokes the caller's session and the body token's family too."""
    logout_of_the_body_token(claims, refresh_token, tokens)
    tokens.revoke_family(claims["sid"], "logout")


def needs_the_body(claims, refresh_token, tokens):
    """Right for a body that carries the session's token; crashes on a logout without one."""
    record = tokens.find(_digest(refresh_token))
    tokens.deny(claims["jti"], claims["exp"])
    tokens.revoke_family(claims["sid"], "logout")
    if record is None:
        return


def deletes_the_body_token(claims, refresh_token, tokens):
    """Ends the session, and deletes the body's refresh token, whosever it is."""
    tokens.deny(claims["jti"], claims["exp"])
    tokens.revoke_family(claims["sid"], "logout")
    tokens.delete(_digest(refresh_token))


def forgets_the_access_token(claims, refresh_token, tokens):
    """Deletes the presented refresh token, and that is all (the weak logout's idea)."""
    tokens.delete(_digest(refresh_token))


def forgets_the_family(claims, refresh_token, tokens):
    """Denies the access token but the session's refresh token still refreshes."""
    tokens.deny(claims["jti"], claims["exp"])


def forgets_the_jti(claims, refresh_token, tokens):
    """Revokes the family and trusts that to be enough: the jti is never denied."""
    tokens.revoke_family(claims["sid"], "logout")


def denies_until_now(claims, refresh_token, tokens):
    """Denies the jti until now, not until its exp: a denylist sweep would bring it back."""
    tokens.deny(claims["jti"], time.time())
    tokens.revoke_family(claims["sid"], "logout")


def issuing(make: Callable[[str, str], str], keep: Callable[[str], str] = _digest):
    """An issue_refresh that makes its token with ``make`` and saves ``keep(token)``."""

    def issue_refresh(username, family, tokens):
        token = make(username, family)
        tokens.save(keep(token), username, family)
        return token

    return issue_refresh


def typed_refresh_jwt(username, family):
    """A refresh JWT typed rt+jwt: refused on the API, but anyone can read it."""
    now = int(time.time())
    claims = {"sub": username, "sid": family, "iat": now, "jti": secrets.token_hex(16)}
    return jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256", headers={"typ": "rt+jwt"})


def jwt_refresh(username, family, tokens):
    """Hashed at rest, but still a JWT signed with the access tokens' key (typ JWT)."""
    now = int(time.time())
    claims = {"iss": tokens.ISSUER, "aud": tokens.AUDIENCE, "sub": username, "sid": family}
    token = tokens.mint({**claims, "iat": now, "exp": now + 86400, "jti": secrets.token_hex(8)})
    tokens.save(_digest(token), username, family)
    return token


_COUNTER = iter(range(10**9))


def kept_as(keep: Callable[[str], str]) -> dict[str, Callable[..., Any]]:
    """Tokens from secrets, kept at rest (and looked up) as ``keep(token)``."""
    return _with(
        issue_refresh=issuing(lambda u, f: secrets.token_urlsafe(32), keep=keep),
        rotate=rotation(lookup=keep),
    )


def _md5(token: str) -> str:
    return hashlib.md5(token.encode()).hexdigest()  # noqa: S324 - the mistake under test


def _b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()


def _typ(accept: Callable[[dict, dict], bool]) -> dict[str, Callable[..., Any]]:
    return _with(validate_access=validation(typ_ok=accept))


def _made(make: Callable[[str, str], str]) -> dict[str, Callable[..., Any]]:
    return _with(issue_refresh=issuing(make))


REQUIRED = ["exp", "iat", "jti", "sub", "sid"]


def remembers_answers() -> dict[str, Callable[..., Any]]:
    """Caches each token's verdict: a token judged good stays good after its session ends."""
    verdicts: dict[str, Any] = {}
    validate = validation()

    def validate_access(token, tokens):
        if token not in verdicts:
            verdicts[token] = validate(token, tokens)
        return verdicts[token]

    return _with(validate_access=validate_access)


def revokes_the_wrong_id(presented, tokens):
    """Revokes 'the family' by the token's hash: no family has that id."""
    record = tokens.find(_digest(presented))
    if record is None or record["revoked"] or _too_old(record, tokens):
        return None
    if not tokens.claim(record["hash"]):
        tokens.revoke_family(record["hash"])
        return None
    return record


def logout_only_with_a_body(claims, refresh_token, tokens):
    """Ends the session only when the app sends its refresh token along."""
    if refresh_token:
        tokens.deny(claims["jti"], claims["exp"])
        tokens.revoke_family(claims["sid"], "logout")


def _encoded(make: Callable[[str], bytes]) -> dict[str, Callable[..., Any]]:
    return _made(lambda u, f: base64.urlsafe_b64encode(make(u) + b":" + f.encode()).decode())


# -- every rule the defend cells state, and the row that enforces it -------------------------


@dataclass(frozen=True)
class Rule:
    text: str  # the rule as the notebook (or a defend hint) states it
    row: str  # the grader row (attack or check id) that enforces it
    wrong: Callable[[], dict[str, Callable[..., Any]]]  # the solution with this rule broken


RULES = [
    Rule("issue_refresh: an opaque token", "guessable-refresh", lambda: _made(typed_refresh_jwt)),
    Rule(
        "... from secrets",
        "guessable-refresh",
        lambda: _made(lambda u, f: hashlib.sha256(f"{u}{f}{time.time()}".encode()).hexdigest()),
    ),
    Rule(
        "... of at least 128 random bits",
        "guessable-refresh",
        lambda: _made(lambda u, f: secrets.token_hex(8)),
    ),
    Rule("save only its SHA-256 hash", "refresh-at-rest", lambda: kept_as(str)),
    Rule(
        "rotate: refuse unknown tokens",
        "type-confusion",
        lambda: _with(rotate=rotation(refuse_unknown=False)),
    ),
    Rule(
        "... refuse revoked ones",
        "reuse-unnoticed",
        lambda: _with(rotate=rotation(refuse_revoked=False)),
    ),
    Rule(
        "... refuse a family older than its absolute lifetime (7 days)",
        "family-lifetime",
        lambda: _with(rotate=rotation(lifetime=None)),
    ),
    Rule(
        "consume it: a refresh token is single use",
        "refresh-replay",
        lambda: _with(rotate=ignores_the_claim),
    ),
    Rule(
        "... with tokens.claim(), one atomic step (not a lock, not find then mark_used)",
        "race",
        lambda: _with(rotate=locked_rotate),
    ),
    Rule(
        "if the claim fails, the token was used before: revoke the family",
        "reuse-unnoticed",
        lambda: _with(rotate=refuses_reuse_only),
    ),
    Rule(
        "... every call that loses the claim, even in a burst",
        "race",
        lambda: _with(rotate=revokes_on_the_stale_read),
    ),
    Rule(
        "validate_access: header typ must be at+jwt",
        "type-confusion",
        lambda: _typ(lambda header, claims: True),
    ),
    Rule(
        "use .get('typ'): a token may have none",
        "type-confusion",
        lambda: _with(validate_access=typ_by_index),
    ),
    Rule(
        "RS256 signature",
        "access-claims",
        lambda: _with(validate_access=validation(options={"verify_signature": False})),
    ),
    Rule(
        "issuer",
        "access-claims",
        lambda: _with(
            validate_access=validation(options={"require": REQUIRED, "verify_iss": False})
        ),
    ),
    Rule(
        "audience",
        "access-claims",
        lambda: _with(
            validate_access=validation(options={"require": REQUIRED, "verify_aud": False})
        ),
    ),
    Rule(
        "expiry",
        "access-claims",
        lambda: _with(
            validate_access=validation(options={"require": REQUIRED, "verify_exp": False})
        ),
    ),
    Rule(
        "exp is required (a token may have none)",
        "access-claims",
        lambda: _with(validate_access=validation(options={})),
    ),
    Rule(
        "refuse a denied jti",
        "denied-access",
        lambda: _with(validate_access=validation(denylist=False)),
    ),
    Rule(
        "refuse a token whose session (claims['sid']) has ended",
        "access-after-reuse",
        lambda: _with(validate_access=validation(session=False)),
    ),
    Rule(
        "logout: deny the access token's jti",
        "after-logout",
        lambda: _with(logout=forgets_the_jti),
    ),
    Rule("... until its exp", "after-logout", lambda: _with(logout=denies_until_now)),
    Rule(
        "... and revoke its family (claims['sid'])",
        "after-logout",
        lambda: _with(logout=forgets_the_family),
    ),
    Rule(
        "act on the caller's session only: the body's refresh token may be anyone's, or none",
        "logout-scope",
        lambda: _with(logout=logout_of_both),
    ),
    Rule(
        "access_lifetime: at most 15 minutes",
        "long-lived-access",
        lambda: _with(access_lifetime=lambda: 3600),
    ),
    Rule(
        "(grader) a login a day old still refreshes: the lifetime is 7 days, in seconds",
        "day-old-session",
        lambda: _with(rotate=rotation(lifetime=7 * 24 * 60)),
    ),
    Rule(
        "(grader) RT1→RT2→RT3 must work",
        "rotation-chain",
        lambda: _with(rotate=revokes_everything),
    ),
    Rule("(grader) a 10-rotation session must keep working", "long-session", caps_rotations),
    Rule("(grader) log out, then log in again", "login-after-logout", logs_out_the_user),
]


def _breached(lab: Lab, hooks: dict[str, Callable[..., Any]]) -> DefenseBreached:
    lab.defend(**hooks)
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    return caught.value


@pytest.mark.parametrize("rule", RULES, ids=[rule.text for rule in RULES])
def test_each_rule_the_notebook_states_fails_its_row_when_broken(lab05: Lab, rule: Rule) -> None:
    """The solution with exactly this rule broken fails the row that enforces it, by name."""
    breach = _breached(lab05, rule.wrong())
    assert rule.row in {failure.id for failure in breach.report.failures}
    assert f"] {rule.row} (" in str(breach)


def test_every_row_enforces_a_rule() -> None:
    """No row is without a stated rule, and no rule points at a row that does not exist."""
    rows = {item.id for item in (*LESSON.attacks, *LESSON.checks)}
    assert {rule.row for rule in RULES} == rows


# -- the classes of wrong defense that used to pass, and their neighbours ---------------------

WRONG: dict[str, tuple[Callable[[], dict[str, Callable[..., Any]]], str]] = {
    # reuse detection defeated by racing; single use that is not one atomic step
    "check-then-update rotation": (lambda: _with(rotate=check_then_update), "race"),
    "a grace window for 'client retries'": (lambda: _with(rotate=grace_for_retries), "race"),
    "deleting instead of claiming": (lambda: _with(rotate=deletes_instead_of_claiming), "race"),
    # access tokens of a family revoked by reuse detection
    "its own set of logged-out sessions": (remembers_logouts, "access-after-reuse"),
    # logout acting on a token that is not the caller's
    "logout revokes the body token's family": (
        lambda: _with(logout=logout_of_the_body_token),
        "logout-scope",
    ),
    "logout deletes the body's token too": (
        lambda: _with(logout=deletes_the_body_token),
        "logout-scope",
    ),
    "logout needs a refresh token in the body": (
        lambda: _with(logout=needs_the_body),
        "logout-scope",
    ),
    "logout deletes only the refresh token": (
        lambda: _with(logout=forgets_the_access_token, validate_access=validation(session=False)),
        "after-logout",
    ),
    # a missing or legacy typ
    "typ unchecked, with JWT refresh tokens": (
        lambda: _with(
            validate_access=validation(typ_ok=lambda h, c: True), issue_refresh=jwt_refresh
        ),
        "type-confusion",
    ),
    "a missing typ accepted": (
        lambda: _typ(lambda h, c: h.get("typ") in (None, "at+jwt")),
        "type-confusion",
    ),
    "the legacy typ JWT accepted": (
        lambda: _typ(lambda h, c: h.get("typ") in ("at+jwt", "JWT")),
        "type-confusion",
    ),
    "only typ JWT refused": (lambda: _typ(lambda h, c: h.get("typ") != "JWT"), "type-confusion"),
    "any typ ending in jwt": (
        lambda: _typ(lambda h, c: str(h.get("typ", "")).lower().endswith("jwt")),
        "type-confusion",
    ),
    "told apart by client_id": (lambda: _typ(lambda h, c: "client_id" in c), "type-confusion"),
    "told apart by lifetime": (
        lambda: _typ(lambda h, c: c["exp"] - c["iat"] <= 15 * 60),
        "type-confusion",
    ),
    # expired access tokens
    "an hour of leeway": (lambda: _with(validate_access=validation(leeway=3600)), "access-claims"),
    "fifteen minutes of leeway": (
        lambda: _with(validate_access=validation(leeway=900)),
        "access-claims",
    ),
    "a grace period for expired tokens": (
        lambda: _with(validate_access=expired_grace),
        "access-claims",
    ),
    # low-entropy or guessable refresh tokens
    "token_urlsafe(12): 96 bits": (
        lambda: _made(lambda u, f: secrets.token_urlsafe(12)),
        "guessable-refresh",
    ),
    "a UUID4 string": (lambda: _made(lambda u, f: str(uuid.uuid4())), "guessable-refresh"),
    "a UUID4 in hex": (lambda: _made(lambda u, f: uuid.uuid4().hex), "guessable-refresh"),
    "a UUID1": (lambda: _made(lambda u, f: str(uuid.uuid1())), "guessable-refresh"),
    "random.choices": (
        lambda: _made(lambda u, f: "".join(random.choices(string.ascii_letters, k=43))),
        "guessable-refresh",
    ),
    "random.getrandbits": (
        lambda: _made(lambda u, f: f"{random.getrandbits(256):064x}"),
        "guessable-refresh",
    ),
    "a counter": (lambda: _made(lambda u, f: f"rt-{next(_COUNTER):016d}"), "guessable-refresh"),
    "milliseconds since 1970": (
        lambda: _made(lambda u, f: str(time.time_ns() // 1_000_000)),
        "guessable-refresh",
    ),
    "the username and a random part": (
        lambda: _made(lambda u, f: f"{u}.{secrets.token_urlsafe(32)}"),
        "guessable-refresh",
    ),
    "a JWT signed with the access key": (
        lambda: _with(issue_refresh=jwt_refresh),
        "guessable-refresh",
    ),
    # neighbours: a validator that remembers, encodings that are not opacity, and others
    "a validator that caches its verdicts": (remembers_answers, "access-after-reuse"),
    "HS256 allowed beside RS256": (
        lambda: _with(validate_access=validation(algorithms=("RS256", "HS256"))),
        "access-claims",
    ),
    "base64 of the user, the family and randomness": (
        lambda: _encoded(lambda u: u.encode() + b":" + secrets.token_bytes(32)),
        "guessable-refresh",
    ),
    "base64 JSON with a random field": (
        lambda: _made(
            lambda u, f: base64.urlsafe_b64encode(
                f'{{"r": "{secrets.token_hex(32)}", "sid": "{f}"}}'.encode()
            ).decode()
        ),
        "guessable-refresh",
    ),
    "the username in hex, and randomness": (
        lambda: _made(lambda u, f: u.encode().hex() + secrets.token_hex(32)),
        "guessable-refresh",
    ),
    "reuse revokes a family that does not exist": (
        lambda: _with(rotate=revokes_the_wrong_id),
        "reuse-unnoticed",
    ),
    "logout only when a refresh token comes along": (
        lambda: _with(logout=logout_only_with_a_body),
        "logout-scope",
    ),
    "900.5 seconds": (lambda: _with(access_lifetime=lambda: 900.5), "long-lived-access"),
    # the rest of the lesson
    "a 30-day absolute lifetime": (
        lambda: _with(rotate=rotation(lifetime=30 * 24 * 3600)),
        "family-lifetime",
    ),
    "the lifetime counted from the token, not the login": (
        lambda: _with(rotate=lifetime_from_the_token),
        "family-lifetime",
    ),
    "twelve-hour access tokens": (
        lambda: _with(access_lifetime=lambda: 12 * 3600),
        "long-lived-access",
    ),
    "a lifetime in milliseconds": (
        lambda: _with(access_lifetime=lambda: 5 * 60 * 1000),
        "long-lived-access",
    ),
    "MD5 at rest": (lambda: kept_as(_md5), "refresh-at-rest"),
    "base64 at rest": (lambda: kept_as(_b64), "refresh-at-rest"),
    "half the token at rest": (lambda: kept_as(lambda token: token[:20]), "refresh-at-rest"),
}


@pytest.mark.parametrize("mistake", list(WRONG))
def test_the_grader_catches_a_plausible_wrong_defense(lab05: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names it."""
    make, row = WRONG[mistake]
    breach = _breached(lab05, make())
    assert row in {failure.id for failure in breach.report.failures}
    assert f"] {row} (" in str(breach)


# -- right answers written another way must pass ----------------------------------------------


def claim_first(presented, tokens):
    """Claims before it looks: the same decisions in another order."""
    digest = _digest(presented)
    if not tokens.claim(digest):
        record = tokens.find(digest)
        if record is not None:
            tokens.revoke_family(record["family"], "refresh token reuse detected")
        return None
    record = tokens.find(digest)
    if record is None or record["revoked"] or _too_old(record, tokens):
        return None
    return record


def logout_of_own_body_token(claims, refresh_token, tokens):
    """Also revokes the body's refresh token, but only when it is the caller's own."""
    record = tokens.find(_digest(refresh_token)) if refresh_token else None
    if record is not None and record["username"] == claims["sub"]:
        tokens.revoke_family(record["family"], "logout")
    tokens.deny(claims["jti"], claims["exp"])
    tokens.revoke_family(claims["sid"], "logout")


async def async_access_lifetime():
    return 900


RIGHT = {
    "token_urlsafe(16): exactly 128 bits": dict(
        issue_refresh=issuing(lambda u, f: secrets.token_urlsafe(16))
    ),
    "token_hex(32) and a partial": dict(
        issue_refresh=issuing(functools.partial(lambda n, u, f: secrets.token_hex(n), 32))
    ),
    "base64 of os.urandom": dict(
        issue_refresh=issuing(lambda u, f: base64.urlsafe_b64encode(os.urandom(32)).decode())
    ),
    "claim first, then look": dict(rotate=claim_first),
    "a 3-day absolute lifetime": dict(rotate=rotation(lifetime=3 * 24 * 3600)),
    "typ compared case-insensitively, application/ prefix allowed": dict(
        validate_access=validation(
            typ_ok=lambda h, c: str(h.get("typ", "")).lower() in ("at+jwt", "application/at+jwt")
        )
    ),
    "30 seconds of leeway": dict(validate_access=validation(leeway=30)),
    "logout also revokes the caller's own body token": dict(logout=logout_of_own_body_token),
    "fifteen minutes exactly, async": dict(access_lifetime=async_access_lifetime),
}


@pytest.mark.parametrize("answer", list(RIGHT))
def test_a_right_answer_written_another_way_passes(lab05: Lab, answer: str) -> None:
    """A defense that keeps every rule passes, however it is written."""
    lab05.defend(**_with(**RIGHT[answer]))
    assert lab05.grade().passed


# -- rows that name the cause: the hook, the direction, the fix --------------------------------


def _row(lab: Lab, hooks: dict[str, Callable[..., Any]], row_id: str):
    """The report row ``row_id`` of a defense that must fail it."""
    breach = _breached(lab, hooks)
    row = next(row for row in breach.report.rows if row.id == row_id)
    assert not row.passed
    return row


def header_outside_the_try(token, tokens):
    """Reads the header before its try: an opaque refresh token on the API crashes the hook."""
    if jwt.get_unverified_header(token).get("typ") != "at+jwt":
        return None
    return validation()(token, tokens)


def family_started_as_a_datetime(presented, tokens):
    """Treats family_started as a datetime: every refresh crashes with a TypeError."""
    import datetime

    record = tokens.find(_digest(presented))
    if record is None or record["revoked"]:
        return None
    if datetime.datetime.now() - record["family_started"] > datetime.timedelta(days=7):
        return None
    return rotation()(presented, tokens)


def test_a_check_then_act_rotate_is_told_it_granted_a_burst(lab05: Lab) -> None:
    """The race row names rotate, says it granted too much, and teaches tokens.claim."""
    row = _row(lab05, _with(rotate=check_then_update), "race")
    assert row.observed.startswith("got through")
    assert "rotate " in row.observed
    assert row.why().startswith("granted too much")
    assert row.hint.startswith("rotate: decide with tokens.claim(record['hash'])")
    assert "atomic" in row.hint


def test_a_typ_read_by_index_crash_says_use_get(lab05: Lab) -> None:
    """A KeyError on a token without typ: the row names validate_access and .get('typ')."""
    row = _row(lab05, _with(validate_access=typ_by_index), "type-confusion")
    assert "server error (HTTP 500): validate_access crashed on" in row.observed
    assert ".get('typ')" in row.observed and "(a 5xx is never a pass)" in row.observed
    assert "KeyError" in row.observed  # the engine adds the learner's own exception
    assert row.why().startswith("crashed")
    assert "the fix this row teaches: validate_access: refuse unless" in row.hint


def test_a_header_read_outside_the_try_says_read_it_inside(lab05: Lab) -> None:
    """An opaque refresh token on the API makes get_unverified_header raise: say where."""
    row = _row(lab05, _with(validate_access=header_outside_the_try), "type-confusion")
    assert "validate_access crashed on the login's refresh token" in row.observed
    assert "inside your try" in row.observed


def test_hs256_beside_rs256_says_pin_the_algorithm(lab05: Lab) -> None:
    """The HS256 probe crashes a validator that also allows HS256: the row says pin RS256."""
    hooks = _with(validate_access=validation(algorithms=("RS256", "HS256")))
    row = _row(lab05, hooks, "access-claims")
    assert "validate_access crashed on an HS256 access token" in row.observed
    assert "pin algorithms=['RS256']" in row.observed
    assert "algorithms=['RS256'] only" in row.hint


def test_a_logout_that_needs_the_body_is_told_the_body_may_be_none(lab05: Lab) -> None:
    """A logout with no refresh token in the body crashes it: the row names the body."""
    row = _row(lab05, _with(logout=needs_the_body), "logout-scope")
    assert "logout crashed on a logout with no refresh token in the body" in row.observed
    assert "(it may be None)" in row.observed
    assert "the fix this row teaches: logout: end claims['sid']" in row.hint


def test_a_family_lifetime_in_datetimes_is_told_the_unit(lab05: Lab) -> None:
    """family_started is a float of seconds: the lifetime row says so when rotate crashes."""
    row = _row(lab05, _with(rotate=family_started_as_a_datetime), "family-lifetime")
    assert "rotate crashed on a login 7 days and a minute old" in row.observed
    assert "Unix time in seconds" in row.observed


def test_a_forgotten_jti_names_logout_and_the_direction(lab05: Lab) -> None:
    """Logout without the denylist: the row names logout, the jti, and 'granted too much'."""
    row = _row(lab05, _with(logout=forgets_the_jti), "after-logout")
    assert "logout: after logout, the access token's jti is not on the denylist" in row.observed
    assert row.why().startswith("granted too much")
    assert row.hint.startswith("logout: tokens.deny(claims['jti'], claims['exp'])")


def test_a_rotate_that_refuses_everything_is_told_it_denied_too_much(lab05: Lab) -> None:
    """A legit row names the hook that refused and says 'denied too much'."""
    row = _row(lab05, _with(rotate=revokes_everything), "rotation-chain")
    assert "rotate refused RT1, a fresh, unused token" in row.observed
    assert row.why().startswith("denied too much")
    assert row.hint.startswith("rotate must return the record")


def test_the_solution_accepts_both_rfc_9068_spellings(lab05: Lab) -> None:
    """RFC 9068 §4: a resource server accepts typ at+jwt and application/at+jwt."""
    from labapp.lessons.l05_refresh.probes import claims_of, probe
    from labapp.lessons.l05_refresh.tokens import TokenStore

    lab05.defend(**solution())
    like = claims_of(_login(lab05)["access_token"])
    for typ in ("at+jwt", "application/at+jwt"):
        token = probe(TokenStore(lab05.store), like, typ=typ)
        assert _me(lab05, token).status_code == 200, typ
    assert _me(lab05, probe(TokenStore(lab05.store), like, typ="JWT")).status_code == 401


def test_refusals_are_audited_against_the_family(lab05: Lab) -> None:
    """A refused refresh names the family the token belongs to: the timeline can draw it."""
    lab05.defend(**solution())
    first = _login(lab05)
    _refresh(lab05, first["refresh_token"])
    assert _refresh(lab05, first["refresh_token"]).status_code == 401
    refused = [row for row in lab05.audit("deny") if row["action"] == "refresh"]
    family = jwt.decode(first["access_token"], options={"verify_signature": False})["sid"]
    assert refused[-1]["resource"] == f"family {family[:8]}"
    assert refused[-1]["actor"] == "alice"
    assert _refresh(lab05, "never-issued").status_code == 401
    assert lab05.audit("deny")[-1]["resource"] == "unknown token"


# -- the notebook: what the learner release keeps, the clues, the figure --------------------


def _learner_cells() -> list:
    import nbformat

    from tests.conftest import ROOT

    return nbformat.read(ROOT / "notebooks" / LESSON.notebook, as_version=4).cells


def test_the_learner_notebook_links_nothing_the_release_leaves_out() -> None:
    """`labapp release` leaves docs/ out: a learner's notebook must not point there."""
    text = "\n".join(cell.source for cell in _learner_cells())
    assert "docs/" not in text


@pytest.mark.parametrize(
    ("flag", "recipe"),
    [
        ("reuse-unnoticed", ("first", "/simulate/victim-refresh")),
        ("after-logout", ("/logout", "Bearer", '{"refresh_token"')),
    ],
)
def test_a_clue_gives_a_goal_and_a_pointer_and_the_nudge_adds_to_it(
    flag: str, recipe: tuple[str, ...]
) -> None:
    """The clue names no step of the recipe; hint 1 says something the clue did not."""
    (clue,) = [
        cell.source
        for cell in _learner_cells()
        if cell.cell_type == "markdown" and f'lab.hint("{flag}")' in cell.source
    ]
    clue = clue.partition("**Clue:**")[2].partition("Stuck?")[0]
    assert clue.strip()
    assert [step for step in recipe if step in clue] == []
    nudge = LESSON.all_hints()[flag][0]
    words = set(re.findall(r"[a-z']{5,}", nudge.lower())) - set(
        re.findall(r"[a-z']+", clue.lower())
    )
    assert len(words) >= 8, f"the nudge adds little to the clue: {sorted(words)}"


def test_the_timeline_labels_of_a_reuse_do_not_overlap(monkeypatch) -> None:
    """The last figure: reuse detected, then refused, 45 ms apart: every label stands clear."""
    plt = pytest.importorskip("matplotlib.pyplot")

    class NoAudit:
        def audit(self) -> list:
            return []

    drawn = []
    monkeypatch.setattr(plt, "show", lambda: drawn.append(plt.gcf()))
    timeline = solution_namespace("05-refresh-rotation.ipynb", "timeline", lab=NoAudit())[
        "timeline"
    ]
    events = [
        (0, "login", "allow", "logged in"),
        (45, "refresh", "allow", "rotated"),
        (90, "refresh", "allow", "rotated"),
        (136, "revoke family", "deny", "refresh token reuse detected"),
        (136, "refresh", "deny", "refresh token refused"),
        (180, "refresh", "deny", "refresh token refused"),
    ]
    rows = [
        {"at": ms / 1000, "action": action, "decision": decision, "reason": reason}
        | {"resource": "family 1234abcd", "actor": "alice"}
        for ms, action, decision, reason in events
    ]
    try:
        timeline(rows, "one family")
        (figure,) = drawn
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        boxes = [text.get_window_extent(renderer) for text in figure.axes[0].texts]
        assert len(boxes) == 3
        overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
        assert overlapping == []
    finally:
        plt.close("all")
