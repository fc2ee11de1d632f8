"""Lesson 05's battery: every refresh-token attack and the legitimate uses, as the grader runs them.

The attacks themselves are in ``attacks.py``. An attack passes only on a refusal (a 4xx),
never on a 5xx; each ``fix`` says what still gets through and what to change. Rows without
a flag check a rule of the defend exercise the flags' attacks do not reach.
"""

from __future__ import annotations

from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.l05_refresh.attacks import (
    DAY,
    FAMILY_LIFETIME,
    MAX_ACCESS_LIFETIME,
    RACERS,
    age_family,
    attack_access_after_reuse,
    attack_access_claims,
    attack_after_logout,
    attack_at_rest,
    attack_denied,
    attack_guessable,
    attack_logout_scope,
    attack_long_access,
    attack_old_family,
    attack_race,
    attack_replay,
    attack_reuse,
    attack_type_confusion,
)
from labapp.lessons.l05_refresh.probes import chain, claims_of, log_out, login, me, refresh


def check_chain(lab: Any, http: httpx.Client) -> Observed:
    sets = chain(http, login(lab, http), 2)
    if len(sets) < 3:
        return Observed(False, None, f"RT{len(sets)} was refused")
    for n, tokens in enumerate(sets, 1):
        response = me(http, tokens["access_token"])
        if not response.is_success:
            return Observed(False, response.status_code, f"the access token of step {n}")
        if response.json().get("user") != "alice":
            return Observed(False, response.status_code, f"step {n}'s token is not alice's")
    return Observed(True, 200, "RT1→RT2→RT3, and each access token works, as alice")


def check_long_session(lab: Any, http: httpx.Client) -> Observed:
    sets = chain(http, login(lab, http), 10)
    if len(sets) < 11:
        return Observed(False, None, f"refresh {len(sets)} of 10 was refused")
    response = me(http, sets[-1]["access_token"])
    return Observed(response.is_success, response.status_code, "10 rotations, then the API")


def check_day_old_session(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    age_family(lab, claims_of(tokens["access_token"])["sid"], DAY)
    response = refresh(http, tokens["refresh_token"])
    if not response.is_success:
        return Observed(False, response.status_code, "a login a day old could not refresh")
    response = me(http, response.json()["access_token"])
    return Observed(response.is_success, response.status_code, "a day-old login refreshes")


def check_login_after_logout(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    out = log_out(http, tokens["access_token"], tokens["refresh_token"])
    if not out.is_success:
        return Observed(False, out.status_code, "logout failed")
    response = me(http, login(lab, http)["access_token"])
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
        "access-after-reuse",
        "the family's access tokens, after RT1 was reused",
        (),
        attack_access_after_reuse,
        fix="validate_access: refuse tokens.session_ended(claims['sid']); a reuse revokes the "
        "family, and its access tokens must stop with it (RFC 7009 §2.1), not live to exp.",
        flag=False,
    ),
    Attack(
        "type-confusion",
        "refresh tokens (the login's, an old-format one, one without typ) on the API",
        (
            "Decode your refresh token's header and claims (it is a JWT). Who signed it?",
            "Send your refresh token as the Bearer token of GET /api/me.",
        ),
        attack_type_confusion,
        fix="validate_access: refuse unless jwt.get_unverified_header(token).get('typ') == "
        "'at+jwt' (RFC 9068 §4; no typ, or typ JWT, is not an access token); issue opaque "
        "refresh tokens.",
    ),
    Attack(
        "access-claims",
        "expired, never-expiring, foreign-signed, other-API and other-issuer access tokens",
        (),
        attack_access_claims,
        fix="validate_access: jwt.decode with tokens.public_key, algorithms=['RS256'] only, "
        "the lab's audience and issuer, and options={'require': ['exp', ...]}; no leeway "
        "beyond a few seconds; a jwt.PyJWTError means None.",
        flag=False,
    ),
    Attack(
        "after-logout",
        "the access token, the refresh token and an older access token, after logout",
        ("Log in, POST /logout with your access token, then call GET /api/me with it.",),
        attack_after_logout,
        fix="logout: tokens.deny(claims['jti'], claims['exp']) and "
        "tokens.revoke_family(claims['sid'], 'logout'); validate_access: refuse "
        "tokens.is_denied(jti) and tokens.session_ended(sid).",
    ),
    Attack(
        "logout-scope",
        "logout with someone else's refresh token in the body, or none",
        (),
        attack_logout_scope,
        fix="logout: end the caller's session, claims['sid'] (its access token says whose it "
        "is); the body's refresh token may be anyone's or missing: never act on it "
        "(RFC 7009 §2.1).",
        flag=False,
    ),
    Attack(
        "denied-access",
        "an access token whose jti is on the denylist",
        (),
        attack_denied,
        fix="validate_access: return None when tokens.is_denied(claims['jti']).",
        flag=False,
    ),
    Attack(
        "race",
        f"{RACERS} concurrent uses of one refresh token, and what works afterwards",
        (
            "Fire several POST /refresh with the same token at once (threads).",
            "concurrent.futures.ThreadPoolExecutor(8).map(...) sends them together.",
        ),
        attack_race,
        fix="rotate: decide with tokens.claim(hash), one atomic UPDATE (not find() then "
        "mark_used(), not a lock in one process); every call that loses the claim is a "
        "reuse: revoke the family, even in a burst.",
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
        "a login 7 days and a minute old still refreshes",
        (),
        attack_old_family,
        fix=f"rotate: refuse when time.time() - record['family_started'] > {FAMILY_LIFETIME} "
        "(7 days, counted from the login, not from the token).",
        flag=False,
    ),
    Attack(
        "refresh-at-rest",
        "what the table keeps of a refresh token",
        (),
        attack_at_rest,
        fix="issue_refresh: tokens.save(hashlib.sha256(token.encode()).hexdigest(), ...), "
        "and rotate looks it up the same way.",
        flag=False,
    ),
    Attack(
        "guessable-refresh",
        "refresh tokens: opaque, random (secrets), at least 128 bits",
        (),
        attack_guessable,
        fix="issue_refresh: secrets.token_urlsafe(32): 256 random bits from the OS, nothing "
        "to decode (RFC 6749 §10.10 asks for at least 128).",
        flag=False,
    ),
)

CHECKS = (
    Check("rotation-chain", "RT1→RT2→RT3 works, and every access token on the way", check_chain),
    Check("long-session", "a session that refreshes 10 times keeps working", check_long_session),
    Check(
        "day-old-session",
        "a login a day old still refreshes",
        check_day_old_session,
        hint="the absolute lifetime is 7 days (7 * 24 * 3600 seconds): is yours in seconds?",
    ),
    Check(
        "login-after-logout", "after logging out, alice can log in again", check_login_after_logout
    ),
)
