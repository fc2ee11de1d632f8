"""Lesson 05's battery: replay every refresh-token attack against the defended API.

Every row logs alice in afresh, so each starts its own token family: rows are independent
and the grader can be re-run. An attack passes only on a refusal (a 4xx), never on a 5xx.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.l05_refresh.tokens import AUDIENCE, ISSUER, TokenStore

RACERS = 8  # concurrent uses of one refresh token
MAX_ACCESS_LIFETIME = 15 * 60
FAMILY_LIFETIME_PROBE = 31 * 24 * 3600  # a family older than any sane absolute lifetime


def _login(lab: Any, http: httpx.Client) -> dict[str, Any]:
    user = lab.users[0]
    response = http.post(
        "/login", json={"username": user["username"], "password": user["password"]}
    )
    response.raise_for_status()  # a login that fails is never a pass: "could not complete"
    return response.json()


def _refresh(http: httpx.Client, token: str) -> httpx.Response:
    return http.post("/refresh", json={"refresh_token": token})


def _me(http: httpx.Client, token: str) -> httpx.Response:
    return http.get("/api/me", headers={"Authorization": f"Bearer {token}"})


def _chain(http: httpx.Client, tokens: dict[str, Any], steps: int) -> list[dict[str, Any]]:
    """Refresh ``steps`` times in a row; the token sets of each step (the login's first)."""
    sets = [tokens]
    for _ in range(steps):
        response = _refresh(http, sets[-1]["refresh_token"])
        if not response.is_success:
            break
        sets.append(response.json())
    return sets


def attack_replay(lab: Any, http: httpx.Client) -> Observed:
    rt1 = _login(lab, http)
    sets = _chain(http, rt1, 1)
    if len(sets) < 2:
        return Observed(False, None, "the first refresh failed (see the legit rows)")
    response = _refresh(http, rt1["refresh_token"])
    return Observed(response.is_success, response.status_code, "RT1 replayed after RT1→RT2")


def attack_reuse(lab: Any, http: httpx.Client) -> Observed:
    sets = _chain(http, _login(lab, http), 2)
    if len(sets) < 3:
        return Observed(False, None, "RT1→RT2→RT3 failed (see the legit rows)")
    _refresh(http, sets[0]["refresh_token"])  # the reuse: RT1 again
    response = _refresh(http, sets[2]["refresh_token"])  # the other branch carries on
    detail = "RT3 after RT1 was reused"
    return Observed(response.is_success, response.status_code, detail)


def _legacy_refresh_jwt(lab: Any, username: str) -> str:
    """A refresh JWT of the old format, as clients still hold from before the fix."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": username, "sid": "legacy"}
    claims.update(iat=now - 60, exp=now + 30 * 24 * 3600, jti="legacy-refresh")
    return TokenStore(lab.store).mint(claims)


def attack_type_confusion(lab: Any, http: httpx.Client) -> Observed:
    tokens = _login(lab, http)
    status = None
    for name, token in (
        ("the login's refresh token", tokens["refresh_token"]),
        ("an old-format refresh JWT (same key, typ JWT)", _legacy_refresh_jwt(lab, "alice")),
    ):
        response = _me(http, token)
        status = response.status_code
        if response.is_success:
            return Observed(True, status, f"{name} was accepted as an access token")
    return Observed(False, status)


def attack_after_logout(lab: Any, http: httpx.Client) -> Observed:
    tokens = _login(lab, http)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    out = http.post("/logout", headers=bearer, json={"refresh_token": tokens["refresh_token"]})
    if not out.is_success:
        return Observed(False, out.status_code, "logout itself failed (see the legit rows)")
    response = _me(http, tokens["access_token"])
    if response.is_success:
        return Observed(True, response.status_code, "the access token works after logout")
    response = _refresh(http, tokens["refresh_token"])
    if response.is_success:
        return Observed(True, response.status_code, "the refresh token works after logout")
    # A session has more than one access token: log out with the newest, try an older one.
    first = _login(lab, http)
    second = _refresh(http, first["refresh_token"]).json()
    bearer = {"Authorization": f"Bearer {second.get('access_token', '')}"}
    http.post("/logout", headers=bearer, json={"refresh_token": second.get("refresh_token")})
    response = _me(http, first["access_token"])
    detail = "an older access token of the session, after logout with a newer one"
    return Observed(response.is_success, response.status_code, detail)


def attack_race(lab: Any, http: httpx.Client) -> Observed:
    token = _login(lab, http)["refresh_token"]
    start = threading.Barrier(RACERS)

    def race() -> int:
        start.wait(timeout=5)
        return _refresh(http, token).status_code

    with concurrent.futures.ThreadPoolExecutor(RACERS) as pool:
        statuses = list(pool.map(lambda _: race(), range(RACERS)))
    wins = sum(200 <= s < 300 for s in statuses)
    refused = [s for s in statuses if not 200 <= s < 300]
    detail = f"{wins} of {RACERS} concurrent uses of one refresh token succeeded"
    return Observed(wins > 1, max(refused) if refused else 200, detail)


def attack_long_access(lab: Any, http: httpx.Client) -> Observed:
    lifetime = _login(lab, http)["expires_in"]
    detail = f"access tokens live {lifetime} s (at most {MAX_ACCESS_LIFETIME} s)"
    return Observed(lifetime > MAX_ACCESS_LIFETIME, None, detail)


def attack_old_family(lab: Any, http: httpx.Client) -> Observed:
    tokens = _login(lab, http)
    lab.store.execute(  # this login happened a month ago, and it has refreshed ever since
        "UPDATE families SET started = started - ? WHERE id = "
        "(SELECT id FROM families ORDER BY rowid DESC LIMIT 1)",
        (FAMILY_LIFETIME_PROBE,),
    )
    response = _refresh(http, tokens["refresh_token"])
    detail = "a refresh in a 31-day-old family"
    return Observed(response.is_success, response.status_code, detail)


def attack_at_rest(lab: Any, http: httpx.Client) -> Observed:
    token = _login(lab, http)["refresh_token"]
    table = str(lab.store.query("SELECT * FROM refresh_tokens"))
    found = token in table
    return Observed(found, None, "refresh token as-is in the table" if found else "")


def check_chain(lab: Any, http: httpx.Client) -> Observed:
    sets = _chain(http, _login(lab, http), 2)
    if len(sets) < 3:
        return Observed(False, None, f"RT{len(sets)} was refused")
    for n, tokens in enumerate(sets, 1):
        response = _me(http, tokens["access_token"])
        if not response.is_success:
            return Observed(False, response.status_code, f"the access token of step {n}")
    return Observed(True, 200, "RT1→RT2→RT3, and each access token works")


def check_long_session(lab: Any, http: httpx.Client) -> Observed:
    sets = _chain(http, _login(lab, http), 10)
    if len(sets) < 11:
        return Observed(False, None, f"refresh {len(sets)} of 10 was refused")
    response = _me(http, sets[-1]["access_token"])
    return Observed(response.is_success, response.status_code, "10 rotations, then the API")


def check_login_after_logout(lab: Any, http: httpx.Client) -> Observed:
    tokens = _login(lab, http)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    out = http.post("/logout", headers=bearer, json={"refresh_token": tokens["refresh_token"]})
    if not out.is_success:
        return Observed(False, out.status_code, "logout failed")
    response = _me(http, _login(lab, http)["access_token"])
    return Observed(response.is_success, response.status_code, "log out, log in again")


ATTACKS = (
    Attack(
        "refresh-replay",
        "RT1→RT2, then RT1 again",
        (
            "GET /debug/app-log: bob's app logs the refresh token it persists.",
            "Take the last token in the log, POST /simulate/victim-refresh (bob refreshes "
            "with it), then POST /refresh with that same old token.",
        ),
        attack_replay,
        fix="rotate: a refresh token is single use; consume it with tokens.claim(hash).",
    ),
    Attack(
        "reuse-unnoticed",
        "RT1→RT2→RT3, RT1 reused, then RT3",
        (
            "Steal bob's current token from the log and refresh with it first: you now hold "
            "the newest token of his family.",
            "POST /simulate/victim-refresh: bob's app presents the token you already used. "
            "Then refresh with your newest token.",
        ),
        attack_reuse,
        fix="rotate: when tokens.claim() fails the token was used before: "
        "tokens.revoke_family(record['family']), so both branches are logged out.",
    ),
    Attack(
        "type-confusion",
        "refresh tokens (the login's, and an old-format refresh JWT) on the API",
        (
            "Decode your refresh token's header and claims (it is a JWT). Who signed it?",
            "Send your refresh token as the Bearer token of GET /api/me.",
        ),
        attack_type_confusion,
        fix="validate_access: require the header typ 'at+jwt' (RFC 9068); issue opaque "
        "refresh tokens.",
    ),
    Attack(
        "after-logout",
        "the access token, then the refresh token, after logout",
        ("Log in, POST /logout with your access token, then call GET /api/me with it.",),
        attack_after_logout,
        fix="logout: tokens.deny(jti, exp) and revoke the family; validate_access: refuse "
        "tokens.is_denied(jti).",
    ),
    Attack(
        "race",
        f"{RACERS} concurrent uses of one refresh token",
        (
            "Fire several POST /refresh with the same token at once (threads).",
            "concurrent.futures.ThreadPoolExecutor(8).map(...) sends them together.",
        ),
        attack_race,
        fix="rotate: decide with tokens.claim(hash), one atomic UPDATE; not find() then "
        "mark_used(), which leaves a gap.",
    ),
    Attack(
        "long-lived-access",
        "the access token's lifetime",
        (),
        attack_long_access,
        fix=f"access_lifetime: at most {MAX_ACCESS_LIFETIME} s; 5 minutes is common.",
        flag=False,
    ),
    Attack(
        "family-lifetime",
        "a login 31 days old still refreshes",
        (),
        attack_old_family,
        fix="rotate: refuse a family whose family_started is older than its absolute lifetime "
        "(for instance 7 days).",
        flag=False,
    ),
    Attack(
        "refresh-at-rest",
        "a refresh token kept in the table as-is",
        (),
        attack_at_rest,
        fix="issue_refresh: tokens.save(hashlib.sha256(token.encode()).hexdigest(), ...).",
        flag=False,
    ),
)

CHECKS = (
    Check("rotation-chain", "RT1→RT2→RT3 works, and every access token on the way", check_chain),
    Check("long-session", "a session that refreshes 10 times keeps working", check_long_session),
    Check(
        "login-after-logout", "after logging out, alice can log in again", check_login_after_logout
    ),
)
