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
        return Observed(False, None, f"rotate refused RT{len(sets)}, a fresh, unused token")
    for n, tokens in enumerate(sets, 1):
        response = me(http, tokens["access_token"])
        if not response.is_success:
            detail = f"validate_access refused the access token of step {n}"
            return Observed(False, response.status_code, detail)
        if response.json().get("user") != "alice":
            return Observed(False, response.status_code, f"step {n}'s token is not alice's")
    return Observed(True, 200, "RT1→RT2→RT3, and each access token works, as alice")


def check_long_session(lab: Any, http: httpx.Client) -> Observed:
    sets = chain(http, login(lab, http), 10)
    if len(sets) < 11:
        return Observed(False, None, f"rotate refused refresh {len(sets)} of 10")
    response = me(http, sets[-1]["access_token"])
    return Observed(response.is_success, response.status_code, "10 rotations, then the API")


def check_day_old_session(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    age_family(lab, claims_of(tokens["access_token"])["sid"], DAY)
    response = refresh(http, tokens["refresh_token"])
    if not response.is_success:
        return Observed(False, response.status_code, "rotate refused a login a day old")
    response = me(http, response.json()["access_token"])
    return Observed(response.is_success, response.status_code, "a day-old login refreshes")


def check_login_after_logout(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    out = log_out(http, tokens["access_token"], tokens["refresh_token"])
    if not out.is_success:
        return Observed(False, out.status_code, "logout refused or failed for alice's own session")
    response = me(http, login(lab, http)["access_token"])
    detail = "log out, log in again" if response.is_success else "after logout, a new login's "
    detail += "" if response.is_success else "access token was refused by validate_access"
    return Observed(response.is_success, response.status_code, detail)


# Each flag's hints are a ladder: a nudge (where to look), the technique (named, with its
# reference), then the steps, whose one code block passes the exercise on a fresh lab.
_LOGIN = 'lab.client.post("/login", json={"username": "alice", "password": password}).json()'

REPLAY_HINTS = (
    "Read bob's app's debug log (the lab card lists it) and look at what the app saves after "
    "each sign-in or refresh. Then find the route that makes bob's app refresh now: is the "
    "value it saved before still good once bob's app has moved on?",
    "Refresh-token replay: a refresh token that is not single use keeps working after its "
    'owner has rotated past it. RFC 9700 §4.14.2 (refresh token rotation: "The previous '
    'refresh token is invalidated"); OWASP API Top 10 2023 API2:2023 Broken Authentication.',
    "1. GET /debug/app-log and take the refresh token from its last line.\n"
    "2. POST /simulate/victim-refresh: bob's app rotates past that token.\n"
    '3. POST /refresh with the old token as {"refresh_token": ...}; the answer holds the flag.\n'
    "```python\n"
    "import re\n\n"
    'last_line = lab.client.get("/debug/app-log").json()[-1]\n'
    'old = re.search(r\'"refresh_token": "([^"]+)"\', last_line).group(1)\n'
    'lab.client.post("/simulate/victim-refresh")  # bob moves on to a new token\n'
    'replayed = lab.client.post("/refresh", json={"refresh_token": old}).json()\n'
    'flag_replay = replayed["flag"]\nlab.check_flag("refresh-replay", flag_replay)\n'
    "```",
)

REUSE_HINTS = (
    "Swap attack 1's order. There, bob's app used its token first and you came second. If "
    "you are the first to use the token bob's app saved last, it is bob's app that presents "
    "a used token when it next refreshes. What happens then to the token you got?",
    "Reuse detection with token families: a used refresh token presented again proves that "
    "two parties hold the family, and the server cannot tell which one is the thief, so it "
    "must revoke the whole family (RFC 9700 §4.14.2; OWASP ASVS 5.0 V10.4.5). This server "
    "does not notice, so the thief's branch lives on.",
    "1. Take bob's current refresh token from the last line of GET /debug/app-log.\n"
    "2. POST /refresh with it yourself and keep the new refresh token you get.\n"
    "3. POST /simulate/victim-refresh: bob's app presents the token you already used.\n"
    "4. POST /refresh with your new token; the answer holds the flag.\n"
    "```python\n"
    "import re\n\n"
    'last_line = lab.client.get("/debug/app-log").json()[-1]\n'
    'current = re.search(r\'"refresh_token": "([^"]+)"\', last_line).group(1)\n'
    'ahead = lab.client.post("/refresh", json={"refresh_token": current}).json()\n'
    'lab.client.post("/simulate/victim-refresh")  # bob reuses the token I spent\n'
    'still_mine = lab.client.post("/refresh", json={"refresh_token": ahead["refresh_token"]})\n'
    'flag_reuse = still_mine.json()["flag"]\nlab.check_flag("reuse-unnoticed", flag_reuse)\n'
    "```",
)

TYPE_HINTS = (
    "Login gives you two tokens. Decode the header and the claims of each (peek() does it). "
    "Who signed each one, and what in a token would tell the API which kind it is looking at?",
    "Token type confusion: a genuine token of the right issuer, signed with the right key, "
    "used for something it was not issued for. RFC 8725 §3.11 (explicit typing) and §3.12 "
    "(mutually exclusive validation rules); RFC 9068 §4: a resource server accepts only "
    'typ "at+jwt" or "application/at+jwt"; OWASP ASVS 5.0 V9.2.2.',
    "1. Log in as alice.\n"
    "2. Call GET /api/me with the refresh token (not the access token) as the Bearer token.\n"
    "```python\n"
    'password = lab.users[0]["password"]\n'
    f"pair = {_LOGIN}\n"
    'as_refresh = {"Authorization": "Bearer " + pair["refresh_token"]}\n'
    'answer = lab.client.get("/api/me", headers=as_refresh).json()\n'
    'flag_type = answer["flag"]\nlab.check_flag("type-confusion", flag_type)\n'
    "```",
)

LOGOUT_HINTS = (
    "The lab card lists the logout route and what alice's app sends it. Log in as alice, "
    "log out exactly as her app would, then try each of that session's two tokens again, "
    "each where it is accepted.",
    "Session termination with self-contained tokens: the API checks a JWT access token "
    "without asking anyone, so logout must reach it through a denylist (jti) or a revoked "
    "session. OWASP ASVS 5.0 V7.4.1; CWE-613 Insufficient Session Expiration.",
    "1. Log in as alice.\n"
    "2. POST /logout with the access token as Bearer and the refresh token in the JSON body.\n"
    "3. Call GET /api/me with the same access token.\n"
    "```python\n"
    'password = lab.users[0]["password"]\n'
    f"pair = {_LOGIN}\n"
    'bearer = {"Authorization": "Bearer " + pair["access_token"]}\n'
    'lab.client.post("/logout", headers=bearer, json={"refresh_token": pair["refresh_token"]})\n'
    'flag_logout = lab.client.get("/api/me", headers=bearer).json()["flag"]\n'
    'lab.check_flag("after-logout", flag_logout)\n'
    "```",
)

RACE_HINTS = (
    "Time one POST /refresh: the server looks the token up, then decides. What if several "
    "requests carrying one token all arrive while that lookup is still under way?",
    "A time-of-check to time-of-use race (CWE-367): concurrent requests all read 'not used "
    "yet' before any of them writes 'used'. Release them together (threads and a "
    "threading.Barrier). OWASP ASVS 5.0 V15.4.2 asks for the check and the action in one "
    "atomic operation.",
    "1. Log in as alice and keep the refresh token.\n"
    "2. Start 8 threads that wait at one barrier, then each POST /refresh with that token.\n"
    "3. Answers that overlapped carry a race flag; a busy machine may spread one burst out, "
    "so try a few bursts.\n"
    "```python\n"
    "import concurrent.futures\n"
    "import threading\n\n"
    'password = lab.users[0]["password"]\n\n\n'
    "def burst(n=8):\n"
    f"    pair = {_LOGIN}\n"
    '    token = pair["refresh_token"]\n'
    "    gate = threading.Barrier(n)\n\n"
    "    def use(_):\n"
    "        gate.wait(timeout=5)\n"
    '        return lab.client.post("/refresh", json={"refresh_token": token}).json()\n\n'
    "    with concurrent.futures.ThreadPoolExecutor(n) as pool:\n"
    "        return list(pool.map(use, range(n)))\n\n\n"
    "won = []\n"
    "for _ in range(5):  # until two uses really overlapped\n"
    '    won = [a["flag"] for a in burst() if ":race:" in a.get("flag", "")]\n'
    "    if won:\n"
    "        break\n"
    'flag_race = won[0]\nlab.check_flag("race", flag_race)\n'
    "```",
)

ATTACKS = (
    Attack(
        "refresh-replay",
        "RT1→RT2, then RT1 again",
        REPLAY_HINTS,
        attack_replay,
        fix="rotate: a refresh token is single use; consume it with "
        "tokens.claim(record['hash']) and refuse when that returns False.",
    ),
    Attack(
        "reuse-unnoticed",
        "RT1→RT2→RT3, RT1 reused, then RT3",
        REUSE_HINTS,
        attack_reuse,
        fix="rotate: a reused token means two holders; when tokens.claim() returns False, "
        "tokens.revoke_family(record['family']) before refusing, and refuse every record "
        "whose 'revoked' is True.",
    ),
    Attack(
        "access-after-reuse",
        "the family's access tokens, after RT1 was reused",
        (),
        attack_access_after_reuse,
        fix="validate_access: refuse when tokens.session_ended(claims['sid']); the family's "
        "access tokens stop with it (RFC 7009 §2.1), not at their exp.",
        flag=False,
    ),
    Attack(
        "type-confusion",
        "refresh tokens (the login's, an old-format one, one without typ) on the API",
        TYPE_HINTS,
        attack_type_confusion,
        fix="validate_access: refuse unless jwt.get_unverified_header(token).get('typ') "
        "is 'at+jwt' or 'application/at+jwt' (RFC 9068 §4; no typ, or typ JWT, is not an "
        "access token); issue opaque refresh tokens; rotate refuses tokens that "
        "tokens.find() does not know.",
    ),
    Attack(
        "access-claims",
        "expired, never-expiring, foreign-signed, other-API and other-issuer access tokens",
        (),
        attack_access_claims,
        fix="validate_access: jwt.decode with tokens.public_key, algorithms=['RS256'] "
        "only, the lab's audience and issuer, and options={'require': ['exp', ...]}; no "
        "leeway beyond a few seconds; a jwt.PyJWTError means None.",
        flag=False,
    ),
    Attack(
        "after-logout",
        "the access token, the refresh token and an older access token, after logout",
        LOGOUT_HINTS,
        attack_after_logout,
        fix="logout: tokens.deny(claims['jti'], claims['exp']) and "
        "tokens.revoke_family(claims['sid'], 'logout'); validate_access must refuse "
        "tokens.is_denied(jti) and tokens.session_ended(sid).",
    ),
    Attack(
        "logout-scope",
        "logout with someone else's refresh token in the body, or none",
        (),
        attack_logout_scope,
        fix="logout: end claims['sid'] (the caller's access token says whose session it "
        "is); the body's refresh_token may be anyone's or None: never act on it "
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
        RACE_HINTS,
        attack_race,
        fix="rotate: decide with tokens.claim(record['hash']), one atomic UPDATE (not "
        "find() then mark_used(), not a lock in one process); every call that loses the "
        "claim is a reuse: revoke the family, even in a burst.",
    ),
    Attack(
        "long-lived-access",
        "the access token's lifetime",
        (),
        attack_long_access,
        fix=f"access_lifetime: at most {MAX_ACCESS_LIFETIME} seconds (a number of "
        "seconds, not milliseconds); 5 minutes is common.",
        flag=False,
    ),
    Attack(
        "family-lifetime",
        "a login 7 days and a minute old still refreshes",
        (),
        attack_old_family,
        fix=f"rotate: refuse when time.time() - record['family_started'] > {FAMILY_LIFETIME} "
        "(7 days in seconds, counted from the login, not from the token).",
        flag=False,
    ),
    Attack(
        "refresh-at-rest",
        "what the table keeps of a refresh token",
        (),
        attack_at_rest,
        fix="issue_refresh: tokens.save(hashlib.sha256(token.encode()).hexdigest(), ...), "
        "and rotate looks the presented token up the same way.",
        flag=False,
    ),
    Attack(
        "guessable-refresh",
        "refresh tokens: opaque, random (secrets), at least 128 bits",
        (),
        attack_guessable,
        fix="issue_refresh: secrets.token_urlsafe(32) is 256 random bits from the OS with "
        "nothing to decode (RFC 6749 §10.10 asks for a guessing chance of at most 2^-128).",
        flag=False,
    ),
)

CHECKS = (
    Check(
        "rotation-chain",
        "RT1→RT2→RT3 works, and every access token on the way",
        check_chain,
        hint="rotate must return the "
        "record when it wins tokens.claim(), and validate_access must accept the access "
        "tokens the server just issued (typ at+jwt, RS256, the lab's audience and issuer).",
    ),
    Check(
        "long-session",
        "a session that refreshes 10 times keeps working",
        check_long_session,
        hint="rotate: a session may refresh as often as it likes within its 7 days.",
    ),
    Check(
        "day-old-session",
        "a login a day old still refreshes",
        check_day_old_session,
        hint="rotate: the absolute lifetime is "
        "7 days, 7 * 24 * 3600 seconds, and family_started is in seconds too.",
    ),
    Check(
        "login-after-logout",
        "after logging out, alice can log in again",
        check_login_after_logout,
        hint="logout: revoke claims['sid'] "
        "and deny claims['jti'], never the user; a new login starts a new family.",
    ),
)
