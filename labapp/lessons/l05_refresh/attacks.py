"""Lesson 05's attacks, as the grader replays them against the defended API.

Every row logs alice in afresh, so each starts its own token family: rows are independent
and the grader can be re-run. Where a defense must *have done* something (revoked a family
after a burst, denied a jti at logout) the row judges the consequences: what still works
afterwards, and the server's state, not only the status codes.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import httpx

from labapp.engine.grading import Observed
from labapp.lessons.l05_refresh.probes import (
    ENOUGH_BITS,
    ESTIMATE_MARGIN,
    SAMPLES,
    chain,
    claims_of,
    draws_from_csprng,
    estimated_bits,
    family_revoked,
    hs256_probe,
    log_out,
    login,
    me,
    probe,
    readable_parts,
    refresh,
    sha256_forms,
)
from labapp.lessons.l05_refresh.tokens import TokenStore, digest

RACERS = 8  # concurrent uses of one refresh token
BURSTS = 3  # tries at a burst whose requests really overlap (a busy machine may serialise one)
MAX_ACCESS_LIFETIME = 15 * 60
FAMILY_LIFETIME = 7 * 24 * 3600  # the absolute lifetime the notebook asks for
DAY = 24 * 3600


# What a crash on each kind of request most often means, and the fix the lesson teaches: a
# 500 is never a pass, and the row says which hook crashed and what to change (the engine
# adds the learner's own line).
CRASHED = {
    "not a JWT": "validate_access crashed on {name}: read the header inside your try "
    "(jwt.get_unverified_header raises jwt.DecodeError on a token that is not a JWT) "
    "and read typ with .get('typ') (a token may have none); any jwt.PyJWTError means None",
    "claims": "validate_access crashed on {name}: pin algorithms=['RS256'] (PyJWT 2.15 "
    "raises TypeError, which is no jwt.PyJWTError, when HS256 meets the RSA key object) and "
    "turn every jwt.PyJWTError into None",
    "unknown": "rotate crashed on {name}: tokens.find() returns None for a token it never "
    "saved; refuse None before reading the record",
    "logout": "logout crashed on {name}: claims is the caller's access token's claims "
    "(a dict); deny claims['jti'] until claims['exp'], revoke claims['sid'], and never "
    "read the body's refresh_token (it may be None)",
    "old": "rotate crashed on {name}: family_started is Unix time in seconds (a float); "
    "compare time.time() - record['family_started'] with 7 * 24 * 3600",
}


def crashed(response: httpx.Response, kind: str, name: str) -> Observed | None:
    """A row's verdict when the server answered ``name`` with a 5xx, naming the fix."""
    if response.status_code < 500:
        return None
    return Observed(False, response.status_code, CRASHED[kind].format(name=name))


def age_family(lab: Any, family: str, seconds: float) -> None:
    """Pretend this login happened ``seconds`` ago (and has refreshed ever since)."""
    lab.store.execute("UPDATE families SET started = started - ? WHERE id = ?", (seconds, family))


def attack_replay(lab: Any, http: httpx.Client) -> Observed:
    rt1 = login(lab, http)
    if len(chain(http, rt1, 1)) < 2:
        return Observed(False, None, "the first refresh failed (see the legit rows)")
    response = refresh(http, rt1["refresh_token"])
    detail = "rotate exchanged RT1 again after RT1→RT2" if response.is_success else ""
    return Observed(response.is_success, response.status_code, detail)


def _reused_chain(lab: Any, http: httpx.Client) -> list[dict[str, Any]] | None:
    """RT1→RT2→RT3, each access token used once, then RT1 again (the reuse); the token sets.

    The access tokens were used before the reuse, as an app uses them, so a validator that
    remembers its earlier answers is caught too.
    """
    sets = chain(http, login(lab, http), 2)
    if len(sets) < 3:
        return None
    for tokens in sets:
        me(http, tokens["access_token"])
    refresh(http, sets[0]["refresh_token"])
    return sets


def attack_reuse(lab: Any, http: httpx.Client) -> Observed:
    sets = _reused_chain(lab, http)
    if sets is None:
        return Observed(False, None, "RT1→RT2→RT3 failed (see the legit rows)")
    response = refresh(http, sets[2]["refresh_token"])
    detail = "rotate exchanged RT3 after RT1 was reused: the family lives on"
    return Observed(
        response.is_success, response.status_code, detail if response.is_success else ""
    )


def attack_access_after_reuse(lab: Any, http: httpx.Client) -> Observed:
    sets = _reused_chain(lab, http)
    if sets is None:
        return Observed(False, None, "RT1→RT2→RT3 failed (see the legit rows)")
    status = None
    revoked = family_revoked(lab, claims_of(sets[0]["access_token"])["sid"])
    for n, tokens in enumerate(sets, 1):
        response = me(http, tokens["access_token"])
        status = response.status_code
        if response.is_success:
            detail = f"validate_access accepted the access token of step {n} after RT1 was reused"
            if not revoked:
                detail += " (and rotate did not even revoke the family: see reuse-unnoticed)"
            return Observed(True, status, detail)
    return Observed(False, status)


def attack_type_confusion(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    issuer, like = TokenStore(lab.store), claims_of(tokens["access_token"])
    month = like["iat"] + 30 * DAY
    for name, token in (
        ("the login's refresh token", tokens["refresh_token"]),
        ("an old-format refresh JWT (typ JWT)", probe(issuer, like, typ="JWT", exp=month)),
        ("a token of this issuer with no typ at all", probe(issuer, like, typ=None)),
    ):
        response = me(http, token)
        if response.is_success:
            detail = f"validate_access accepted {name} as an access token"
            return Observed(True, response.status_code, detail)
        crash = crashed(response, "not a JWT", name)
        if crash:
            return crash
    response = refresh(http, tokens["access_token"])
    crash = crashed(response, "unknown", "an access token sent to /refresh")
    if crash:
        return crash
    detail = "rotate accepted the access token as a refresh token"
    return Observed(
        response.is_success, response.status_code, detail if response.is_success else ""
    )


def attack_access_claims(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    issuer, like = TokenStore(lab.store), claims_of(tokens["access_token"])
    status = None
    for name, token in (
        ("an access token that expired 10 minutes ago", probe(issuer, like, exp=like["iat"] - 600)),
        ("an access token with no exp (never expires)", probe(issuer, like, exp=None)),
        ("an access token signed with another key", probe(issuer, like, stranger=True)),
        ("an HS256 access token", hs256_probe(like)),
        ("an access token for another API (aud)", probe(issuer, like, aud="billing-api")),
        ("an access token from another issuer", probe(issuer, like, iss="https://evil.example")),
    ):
        response = me(http, token)
        status = response.status_code
        if response.is_success:
            return Observed(True, status, f"validate_access accepted {name}")
        crash = crashed(response, "claims", name)
        if crash:
            return crash
    return Observed(False, status)


def attack_after_logout(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    out = log_out(http, tokens["access_token"], tokens["refresh_token"])
    if not out.is_success:
        crash = crashed(out, "logout", "alice's own logout")
        return crash or Observed(
            False, out.status_code, "logout itself failed (see the legit rows)"
        )
    response = me(http, tokens["access_token"])
    if response.is_success:
        detail = "validate_access accepted the access token after logout"
        return Observed(True, response.status_code, detail)
    response = refresh(http, tokens["refresh_token"])
    if response.is_success:
        detail = "rotate exchanged the refresh token after logout (logout did not revoke sid)"
        return Observed(True, response.status_code, detail)
    claims = claims_of(tokens["access_token"])
    denied = lab.store.one("SELECT until FROM denylist WHERE jti = ?", (claims["jti"],))
    if denied is None or denied["until"] < claims["exp"]:
        missing = "is not on the denylist" if denied is None else "leaves it before its exp"
        return Observed(True, None, f"logout: after logout, the access token's jti {missing}")
    # A session has more than one access token: log out with the newest, try an older one.
    first = login(lab, http)
    second = refresh(http, first["refresh_token"])
    if not second.is_success:
        return Observed(False, second.status_code, "a refresh failed (see the legit rows)")
    out = log_out(http, second.json()["access_token"], second.json()["refresh_token"])
    if not out.is_success:
        return Observed(False, out.status_code, "logout with a refreshed token failed")
    response = me(http, first["access_token"])
    detail = "validate_access accepted an older access token of the session, after logout "
    detail += "with a newer one (refuse tokens.session_ended(claims['sid']))"
    return Observed(response.is_success, response.status_code, detail)


def attack_logout_scope(lab: Any, http: httpx.Client) -> Observed:
    alice, bob = login(lab, http), login(lab, http, "bob")
    out = log_out(http, alice["access_token"], bob["refresh_token"])
    if not out.is_success:
        crash = crashed(out, "logout", "a logout with bob's refresh token in the body")
        return crash or Observed(
            False, out.status_code, "logout itself failed (see the legit rows)"
        )
    if not refresh(http, bob["refresh_token"]).is_success:
        detail = "logout signed bob out: alice logged out with bob's refresh token in the body"
        return Observed(True, out.status_code, detail)
    response = refresh(http, alice["refresh_token"])
    if response.is_success:
        detail = "alice's own session lives on after she logged out (bob's token in the body)"
        return Observed(True, response.status_code, detail)
    tokens = login(lab, http)  # an app that lost its refresh token still logs out
    out = log_out(http, tokens["access_token"], None)
    if not out.is_success:
        crash = crashed(out, "logout", "a logout with no refresh token in the body")
        detail = "logout without a refresh token in the body failed"
        return crash or Observed(False, out.status_code, detail)
    response = refresh(http, tokens["refresh_token"])
    detail = "rotate exchanged the session's refresh token after a logout that sent none in "
    detail += "the body: logout must revoke claims['sid'] whatever the body holds"
    return Observed(response.is_success, response.status_code, detail)


def attack_denied(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    claims = claims_of(tokens["access_token"])
    me(http, tokens["access_token"])  # in use (a validator that remembers is caught too)
    TokenStore(lab.store).deny(claims["jti"], claims["exp"])  # reported stolen: deny that one
    response = me(http, tokens["access_token"])
    return Observed(
        response.is_success, response.status_code, "an access token whose jti is denied"
    )


def _burst(http: httpx.Client, token: str) -> list[httpx.Response]:
    start = threading.Barrier(RACERS)

    def race() -> httpx.Response:
        start.wait(timeout=5)
        return refresh(http, token)

    with concurrent.futures.ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(lambda _: race(), range(RACERS)))


def attack_race(lab: Any, http: httpx.Client) -> Observed:
    ledger, store = lab.server.app.state.ledger, lab.server.app.state.tokens
    unclaimed = ledger.unclaimed
    for _ in range(BURSTS):
        tokens = login(lab, http)
        with store.racing(RACERS):  # every racer reads before any acts: the widest race
            answers = _burst(http, tokens["refresh_token"])
        if ledger.peak[digest(tokens["refresh_token"])] > 1:
            break  # the requests really did overlap: judge this burst
    wins = [a.json() for a in answers if a.is_success]
    refused = max((a.status_code for a in answers if not a.is_success), default=200)
    if len(wins) > 1:
        detail = f"rotate exchanged one token {len(wins)} times in {RACERS} concurrent uses"
        return Observed(True, 200, detail)
    family = claims_of(tokens["access_token"])["sid"]
    after = "after 8 concurrent uses of one refresh token (a reuse)"
    for won in wins:
        response = refresh(http, won["refresh_token"])
        if response.is_success:
            return Observed(True, response.status_code, f"the winner's refresh token works {after}")
        response = me(http, won["access_token"])
        if response.is_success:
            return Observed(True, response.status_code, f"the winner's access token works {after}")
    if not family_revoked(lab, family):
        detail = f"rotate did not revoke the family {after} (every lost claim is a reuse)"
        return Observed(True, None, detail)
    if ledger.unclaimed > unclaimed:
        detail = "rotate() exchanged a token without winning tokens.claim() for it"
        return Observed(True, None, detail)
    return Observed(False, refused, f"{len(wins)} of {RACERS} succeeded; the family is revoked")


def attack_long_access(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    sets = chain(http, tokens, 1)
    for name, answer in zip(("login", "refresh"), sets, strict=False):
        claims = claims_of(answer["access_token"])
        lifetime = max(answer["expires_in"], claims["exp"] - claims["iat"])
        if lifetime > MAX_ACCESS_LIFETIME:
            detail = f"access_lifetime: a {name}'s access token lives {lifetime} s "
            detail += f"(at most {MAX_ACCESS_LIFETIME} s)"
            return Observed(True, None, detail)
    return Observed(False, None)


def attack_old_family(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    age_family(lab, claims_of(tokens["access_token"])["sid"], FAMILY_LIFETIME + 60)
    response = refresh(http, tokens["refresh_token"])
    crash = crashed(response, "old", "a login 7 days and a minute old")
    if crash:
        return crash
    detail = "rotate exchanged a token of a family that started 7 days and a minute ago"
    return Observed(response.is_success, response.status_code, detail)


def attack_at_rest(lab: Any, http: httpx.Client) -> Observed:
    tokens = login(lab, http)
    family = claims_of(tokens["access_token"])["sid"]
    token = tokens["refresh_token"]
    stored = [r["hash"] for r in lab.store.query("SELECT hash FROM refresh_tokens")]
    if any(isinstance(v, str) and (token in v or (len(v) >= 16 and v in token)) for v in stored):
        return Observed(True, None, "issue_refresh saved the refresh token (or part of it) as-is")
    mine = lab.store.query("SELECT hash FROM refresh_tokens WHERE family = ?", (family,))
    if not any(row["hash"] in sha256_forms(token) for row in mine):
        return Observed(True, None, "issue_refresh did not save sha256(token) (hex) for this token")
    return Observed(False, None)


def attack_guessable(lab: Any, http: httpx.Client) -> Observed:
    issued = [login(lab, http) for _ in range(SAMPLES)]
    samples = [tokens["refresh_token"] for tokens in issued]
    for tokens in issued[:2]:
        family = claims_of(tokens["access_token"])["sid"]
        readable = readable_parts(tokens["refresh_token"], "alice", family[:8])
        if readable:
            return Observed(
                True, None, f"issue_refresh: the refresh token is not opaque: {readable}"
            )
    if len(set(samples)) < len(samples):
        return Observed(
            True, None, f"issue_refresh: {SAMPLES} logins did not get {SAMPLES} different tokens"
        )
    bits = estimated_bits(samples)
    if bits < ENOUGH_BITS - ESTIMATE_MARGIN:
        return Observed(
            True, None, f"issue_refresh: about {bits:.0f} random bits (at least {ENOUGH_BITS})"
        )
    if draws_from_csprng(lab.state.hooks["issue_refresh"]) is False:
        detail = (
            "issue_refresh() does not draw from secrets (random, time and counters are guessable)"
        )
        return Observed(True, None, detail)
    return Observed(False, None, f"opaque, about {bits:.0f} random bits, from secrets")
