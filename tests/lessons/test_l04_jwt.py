"""Lesson 04: each forged token breaches its weak service; the solution stops all of them."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import sqlite3
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from labapp import DefenseBreached, Lab
from labapp.engine.grading import run_item
from labapp.lessons.common import load_wordlist
from labapp.lessons.l04_jwt import LESSON
from labapp.lessons.l04_jwt.forge import (
    forge_alg_none,
    forge_audience,
    forge_confusion,
    forge_expired,
    forge_jku,
    forge_jwk,
    forge_kid_sqli,
    forge_kid_traversal,
    forge_unverified,
)
from labapp.lessons.l04_jwt.jose import (
    AUDIENCE,
    ISSUER,
    LEGACY_KID,
    SERVICES,
    b64url,
    hs256,
    load_material,
    segment,
    unb64url,
)
from tests.conftest import solution_namespace


def solution(lab: Lab) -> dict[str, Any]:
    """The namespace of the solution notebook's defense cell, run against this lab."""
    return solution_namespace("04-jwt-validation.ipynb", "validate_token", lab=lab, jwt=jwt)


def _call(lab: Lab, service: str, token: str, admin: bool = True):
    route = f"/svc/{service}/{'admin' if admin else 'me'}"
    return lab.client.get(route, headers={"Authorization": f"Bearer {token}"})


def _alice(lab: Lab, path: str = "/login") -> str:
    return lab.client.post(path, json=lab.users[0]).json()["access_token"]


@pytest.mark.parametrize("attack", [a.id for a in LESSON.attacks])
def test_each_attack_breaches_the_weak_api(lab04: Lab, attack: str) -> None:
    """Against the shipped validator, every attack of the lesson gets through (or crashes it)."""
    item = next(a for a in LESSON.attacks if a.id == attack)
    assert not run_item(lab04, item).passed


FORGES = {  # flag -> what the attack sends
    "unverified-signature": forge_unverified,
    "alg-none": forge_alg_none,
    "jwk-injection": forge_jwk,
    "jku-injection": forge_jku,
    "kid-traversal": forge_kid_traversal,
    "kid-sqli": forge_kid_sqli,
    "alg-confusion": forge_confusion,
    "expired": forge_expired,
    "audience": forge_audience,
}
SERVICE_OF = {flaw: service for service, (flaw, _) in SERVICES.items()}


@pytest.mark.parametrize("name", list(FORGES))
def test_each_forged_token_reveals_its_flag_on_its_service(lab04: Lab, name: str) -> None:
    """The attack's tokens, sent over HTTP to the flawed service, earn its flag (the grader
    adds probes of its own, such as PS256 or nbf tokens, that the weak service may refuse)."""
    admin = name not in ("expired", "audience")
    tokens = FORGES[name](lab04, lab04.client, load_material(lab04.store))
    flags = []
    for token in tokens.values():
        response = _call(lab04, SERVICE_OF[name], token, admin)
        if response.status_code == 200 and "flag" in response.json():
            flags.append(response.json()["flag"])
    assert flags
    for flag in flags:
        lab04.check_flag(name, flag)


def test_the_legacy_key_cracks_offline_from_the_log_in_seconds(lab04: Lab) -> None:
    """The logged HS256 token gives up its key to the course wordlist; an admin token follows."""
    log = "\n".join(lab04.client.get("/ops/token-log").json())
    legacy = next(line for line in log.splitlines() if "/svc/legacy/" in line)
    token = legacy.split("Bearer ")[1].rstrip('"')
    signing_input, _, signature = token.rpartition(".")
    start = time.perf_counter()
    words = load_wordlist()
    word = next(w for w in words if hs256(signing_input, w.encode()) == signature)
    assert time.perf_counter() - start < 10 and words.index(word) >= 50
    header = jwt.get_unverified_header(token)
    claims = {**load_material(lab04.store).claims("alice", "customer"), "role": "admin"}
    forged_input = f"{segment(header)}.{segment(claims)}"
    forged = f"{forged_input}.{hs256(forged_input, word.encode())}"
    lab04.check_flag("weak-secret", _call(lab04, "legacy", forged).json()["flag"])


def test_a_forged_token_earns_no_flag_on_another_services_flaw(lab04: Lab) -> None:
    """alg none on the profile service gets through, but that is not profile's flaw: no flag."""
    token = next(iter(forge_alg_none(lab04, lab04.client, load_material(lab04.store)).values()))
    response = _call(lab04, "profile", token)
    assert response.status_code == 200 and "flag" not in response.json()


def test_legitimate_users_get_no_flag_and_no_admin(lab04: Lab) -> None:
    """alice's real token earns nothing anywhere, and is refused every admin report."""
    token = _alice(lab04)
    for service in SERVICES:
        me = _call(lab04, service, token, admin=False)
        assert me.status_code == 200 and "flag" not in me.json()
        assert _call(lab04, service, token).status_code == 403
    m = load_material(lab04.store)
    admin = m.mint(m.claims("carol", "admin"))
    assert all("flag" not in _call(lab04, s, admin).json() for s in SERVICES)


def test_no_listed_password_logs_in_as_an_admin(lab04: Lab) -> None:
    """The card lists customers only; their passwords do not open carol's account."""
    assert {user["role"] for user in lab04.users} == {"customer"}
    for user in lab04.users:
        response = lab04.client.post(
            "/login", json={"username": "carol", "password": user["password"]}
        )
        assert response.status_code == 401


def test_kid_paths_outside_the_lab_folder_are_refused(lab04: Lab) -> None:
    """The weak files service reads keys only inside the lab's own temp folder."""
    claims = load_material(lab04.store).claims("mallory", "admin")
    for kid in ("../../../../../etc/hostname", "/etc/hostname", "../../lab.sqlite3x"):
        signing_input = f"{segment({'alg': 'HS256', 'kid': kid})}.{segment(claims)}"
        token = f"{signing_input}.{hs256(signing_input, b'')}"
        assert _call(lab04, "files", token).status_code == 401


def test_the_audit_log_never_holds_a_token(lab04: Lab) -> None:
    """Logins and refusals are recorded by subject and service, never by token."""
    token = _alice(lab04)
    _call(lab04, "reports", token)
    _call(lab04, "reports", token[:-4] + "AAAA")
    assert lab04.audit() and not any("eyJ" in str(row) for row in lab04.audit())


def test_the_solution_stops_every_attack_and_keeps_users_working(lab04: Lab) -> None:
    """The solution notebook's validate_token passes every row, and again when re-run."""
    lab04.defend(validate_token=solution(lab04)["validate_token"])
    assert lab04.grade().passed
    assert lab04.grade().passed  # learners re-run grader cells: no state may trip it


@pytest.mark.parametrize("answer", [True, False, '{"sub": "alice"}'])
def test_a_validator_returning_the_wrong_type_is_named_in_the_report(
    lab04: Lab, answer: Any
) -> None:
    """A verdict (True/False) or the claims as JSON text is reported as the hook's mistake,
    naming what came back, on the legit rows (a 500 there is never a pass)."""
    lab04.defend(validate_token=lambda token: answer)
    with pytest.raises(DefenseBreached) as caught:
        lab04.grade()
    text = str(caught.value.report)
    assert f"must return the claims dict or None, not {answer!r:.40}" in text
    assert "fresh-login" in {row.id for row in caught.value.report.failures}


# -- the solution's validator, one decision at a time -----------------------------------------


def numbers(claims: dict[str, Any], names: tuple[str, ...] = ("exp", "iat", "nbf")) -> bool:
    """The solution's type rule: each time claim present is an int or a float (no bool)."""
    return all(type(claims[name]) in (int, float) for name in names if name in claims)


def validator(lab: Lab, **changes: Any) -> Callable[[str], Any]:
    """The solution's validator with one decision changed (keys, algorithms, options...)."""
    ns = solution(lab)
    keys: dict[str, Any] = changes.pop("keys", ns["KEYS"])
    catch = changes.pop("catch", jwt.PyJWTError)
    check_typ = changes.pop("check_typ", True)
    times: Callable[[dict], bool] | None = changes.pop("times", numbers)
    too_long: Callable[[dict], bool] | None = changes.pop(
        "too_long", lambda c: c["exp"] > c["iat"] + ns["LIFETIME"]
    )
    claims_ok: Callable[[dict], bool] = changes.pop("claims_ok", lambda claims: True)
    read_header = changes.pop("header", jwt.get_unverified_header)
    pick_algorithms = changes.pop("algorithms", lambda header: ["RS256"])
    pick_key = changes.pop("key", lambda header: keys.get(header.get("kid")))
    arguments = {
        "issuer": ns["ISSUER"],
        "audience": ns["AUDIENCE"],
        "leeway": ns["LEEWAY"],
        "options": {"require": ns["REQUIRED"]},
        **changes,
    }

    def validate_token(token: str) -> Any:
        try:
            header = read_header(token)
            key = pick_key(header)
            if key is None:
                return None
            verified = jwt.decode_complete(
                token, key, algorithms=pick_algorithms(header), **arguments
            )
        except catch:
            return None
        claims = verified["payload"]
        if check_typ and verified["header"].get("typ") not in ns["ACCESS_TOKEN_TYPES"]:
            return None
        if times is not None and not times(claims):
            return None
        if too_long is not None and "iat" in claims and too_long(claims):
            return None
        return claims if claims_ok(claims) else None

    return validate_token


def options(lab: Lab, **changed: Any) -> dict[str, Any]:
    return {"require": solution(lab)["REQUIRED"], **changed}


def _pem_keys(lab: Lab) -> dict[str, bytes]:
    """The issuer's keys as PEM text, as many services keep them."""
    keys = solution(lab)["KEYS"]
    return {
        kid: key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        for kid, key in keys.items()
    }


def _key_file(lab: Lab) -> Callable[[str], Any]:
    """Keys kept as files named by kid: the issuer's PEM is written there for the test."""
    for kid, pem in _pem_keys(lab).items():
        (lab.workdir / "keys" / kid).write_bytes(pem)
    return validator(
        lab,
        key=lambda header: (lab.workdir / "keys" / header["kid"]).read_bytes(),
        algorithms=lambda header: ["RS256", "HS256"],
        catch=(jwt.PyJWTError, OSError, KeyError),
    )


def _key_sql(lab: Lab) -> Callable[[str], Any]:
    """Keys kept in the service's own SQLite table, looked up with a query built from kid."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE TABLE keys (kid TEXT, pem BLOB)")
    db.executemany("INSERT INTO keys VALUES (?, ?)", _pem_keys(lab).items())

    def key(header: dict) -> Any:
        row = db.execute(f"SELECT pem FROM keys WHERE kid = '{header.get('kid')}'").fetchone()
        if row is None:
            return None
        return row[0].encode() if isinstance(row[0], str) else row[0]  # a UNION gives text

    return validator(
        lab, key=key, algorithms=lambda h: ["RS256", "HS256"], catch=(jwt.PyJWTError, sqlite3.Error)
    )


def _legacy_kept(lab: Lab) -> Callable[[str], Any]:
    """RS256 for the issuer's kid, and HS256 with the cracked word kept for the 2019 kid."""
    keys = {**solution(lab)["KEYS"], LEGACY_KID: load_material(lab.store).legacy_secret}
    return validator(
        lab,
        keys=keys,
        algorithms=lambda header: ["HS256"] if header.get("kid") == LEGACY_KID else ["RS256"],
    )


def _unsigned_when_none(lab: Lab) -> Callable[[str], Any]:
    """Internal tokens say alg none: those skip the signature (any spelling of none)."""
    good = validator(lab)

    def validate_token(token: str) -> Any:
        try:
            if str(jwt.get_unverified_header(token).get("alg")).lower() == "none":
                return jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        return good(token)

    return validate_token


def _jwk_or_ours(lab: Lab) -> Callable[[str], Any]:
    keys = solution(lab)["KEYS"]
    return validator(
        lab,
        key=lambda header: (
            jwt.PyJWK(header["jwk"]).key if "jwk" in header else keys.get(header.get("kid"))
        ),
    )


def _jku_or_ours(lab: Lab) -> Callable[[str], Any]:
    keys = solution(lab)["KEYS"]

    def key(header: dict) -> Any:
        if "jku" in header:
            return jwt.PyJWKClient(header["jku"]).get_signing_key(header["kid"]).key
        return keys.get(header.get("kid"))

    return validator(lab, key=key)


def _fetcher(lab: Lab) -> Callable[[], dict[str, Any]]:
    """Fetch the issuer's JWKS over HTTP and build the key map, as the solution's cell does."""
    load_keys = solution(lab)["load_keys"]
    return lambda: load_keys(lab.client.get("/.well-known/jwks.json").json())


def _keys_every_call(lab: Lab) -> Callable[[str], Any]:
    """Fetches the JWKS for every token ("keys rotate, always have the latest")."""
    fetch = _fetcher(lab)
    return validator(lab, key=lambda header: fetch().get(header.get("kid")))


def _refetch_every_unknown_kid(lab: Lab) -> Callable[[str], Any]:
    """KEYS built once, refetched whenever a kid is unknown: no cooldown."""
    keys, fetch = dict(solution(lab)["KEYS"]), _fetcher(lab)

    def key(header: dict) -> Any:
        if header.get("kid") not in keys:
            keys.update(fetch())
        return keys.get(header.get("kid"))

    return validator(lab, key=key)


def _jwks_client(lab: Lab, **settings: Any) -> Callable[[str], Any]:
    client = jwt.PyJWKClient(f"{lab.url}/.well-known/jwks.json", **settings)
    client.get_signing_keys()  # fetched once, when the cell runs
    return validator(lab, key=lambda header: client.get_signing_key(header.get("kid")).key)


def _crashes_on_garbage(lab: Lab) -> Callable[[str], Any]:
    good = validator(lab)

    def validate_token(token: str) -> Any:
        jwt.get_unverified_header(token)  # "it's a JWT, surely": outside the try
        return good(token)

    return validate_token


def _peek(token: str) -> Any:
    return json.loads(unb64url(token.split(".")[0]))


def _own_header_parser(lab: Lab) -> Callable[[str], Any]:
    """Reads the header with its own json.loads, catching what it thought of (ValueError)."""
    return validator(
        lab, header=lambda token: {**_peek(token)}, catch=(jwt.PyJWTError, ValueError, KeyError)
    )


def _own_header_parser_checked(lab: Lab) -> Callable[[str], Any]:
    """Its own parser again, this time checking for an object: deep nesting still escapes."""

    def header(token: str) -> dict:
        parsed = _peek(token)
        if not isinstance(parsed, dict):
            raise ValueError("not a JSON object")
        return parsed

    return validator(lab, header=header, catch=(jwt.PyJWTError, ValueError, IndexError))


def _logs_the_subject_first(lab: Lab) -> Callable[[str], Any]:
    """Reads the payload (to log who is calling) before verifying anything."""
    good = validator(lab)

    def validate_token(token: str) -> Any:
        try:
            segment_ = token.split(".")[1]
            print("token for", json.loads(unb64url(segment_)).get("sub"))
        except (ValueError, IndexError, AttributeError):
            return None
        return good(token)

    return validate_token


def _typ_in_raw_header(lab: Lab) -> Callable[[str], Any]:
    """Checks typ by searching the header's text, not the parsed header."""
    lax = validator(lab, check_typ=False)

    def validate_token(token: str) -> Any:
        head = unb64url(token.split(".")[0]) if token.count(".") == 2 else b""
        return lax(token) if b'"typ":"at+jwt"' in head.replace(b" ", b"") else None

    return validate_token


def _typ_optional(lab: Lab) -> Callable[[str], Any]:
    """Refuses a wrong typ, but lets a token without any typ through."""
    lax = validator(lab, check_typ=False)

    def validate_token(token: str) -> Any:
        typ = jwt.get_unverified_header(token).get("typ") if token.count(".") == 2 else "?"
        return lax(token) if typ in (None, "at+jwt", "application/at+jwt") else None

    return validate_token


def _own_iss(lab: Lab, same: Callable[[str], bool]) -> Callable[[str], Any]:
    """PyJWT's issuer check off, the service's own comparison instead."""
    return validator(lab, issuer=None, claims_ok=lambda c: same(str(c.get("iss", ""))))


def _own_aud(lab: Lab, fits: Callable[[Any], bool]) -> Callable[[str], Any]:
    """PyJWT's audience check off, the service's own test instead."""
    return validator(
        lab, options=options(lab, verify_aud=False), claims_ok=lambda c: fits(c.get("aud"))
    )


def _cached(lab: Lab, part: Callable[[str], Any], trusted_again: bool = False) -> Callable:
    """A verdict cache keyed on ``part`` of the token: what it once accepted, it accepts.

    ``trusted_again``: a hit returns the new token's (unverified) claims, not the cached ones.
    """
    good = validator(lab)
    seen: dict[Any, Any] = {}

    def validate_token(token: str) -> Any:
        try:
            key = part(token)
            if key in seen:
                if trusted_again:
                    return jwt.decode(token, options={"verify_signature": False})
                return seen[key]
        except (jwt.PyJWTError, ValueError, IndexError, TypeError, AttributeError):
            return None
        claims = good(token)
        if claims is not None:
            seen[key] = claims
        return claims

    return validate_token


def _unverified(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _fallback_key(lab: Lab) -> Callable[[str], Any]:
    """An unknown or missing kid gets "the" key: there is only one anyway."""
    keys = solution(lab)["KEYS"]
    only = next(iter(keys.values()))
    return validator(lab, key=lambda header: keys.get(header.get("kid"), only))


def _every_key(lab: Lab) -> Callable[[str], Any]:
    """Tries each trusted key in turn, whatever the kid says."""
    keys = solution(lab)["KEYS"]
    attempts = [validator(lab, key=lambda header, k=k: k) for k in keys.values()]

    def validate_token(token: str) -> Any:
        return next((c for c in (attempt(token) for attempt in attempts) if c), None)

    return validate_token


def _refetch_with_cooldown(lab: Lab) -> Callable[[str], Any]:
    """KEYS built once; an unknown kid refetches the JWKS, at most once a minute (rotation)."""
    keys, fetch, last = dict(solution(lab)["KEYS"]), _fetcher(lab), [0.0]

    def key(header: dict) -> Any:
        if header.get("kid") not in keys and time.monotonic() - last[0] > 60:
            keys.update(fetch())
            last[0] = time.monotonic()
        return keys.get(header.get("kid"))

    return validator(lab, key=key)


def _lifetime(limit: Callable[[dict], bool]) -> Callable[[Lab], Callable[[str], Any]]:
    return lambda lab: validator(lab, too_long=limit)


def _own_expiry(lab: Lab) -> Callable[[str], Any]:
    """PyJWT's exp check off, the service's own check instead: a NaN compares as False."""
    return validator(
        lab,
        options=options(lab, verify_exp=False),
        claims_ok=lambda claims: not claims["exp"] <= time.time() - 30,
    )


def _as_floats(claims: dict) -> bool:
    """Checks the time claims by converting them: float() reads numeric strings too."""
    return all(math.isfinite(float(claims[n])) for n in ("exp", "iat", "nbf") if n in claims)


@dataclass(frozen=True)
class Rule:
    text: str  # the rule as the notebook's defend cells (or their hints) state it
    row: str  # the grader row (attack or check id) that enforces it
    wrong: Callable[[Lab], Callable[[str], Any]]  # the solution with this one rule broken


RULES = [
    Rule("return the claims of a valid token", "fresh-login", lambda lab: lambda token: None),
    Rule(
        "return the claims of every valid token, admins' too",
        "admin-token",
        lambda lab: validator(lab, claims_ok=lambda claims: claims.get("role") != "admin"),
    ),
    Rule("never raise: an exception is a 500", "malformed", _crashes_on_garbage),
    Rule(
        "KEYS built once, outside validate_token: a made-up kid fetches nothing",
        "jwks-refetch",
        _keys_every_call,
    ),
    Rule("a missing or unknown kid is a refusal, never a fallback", "kid-unknown", _fallback_key),
    Rule("never a key from the token (jwk)", "jwk-injection", _jwk_or_ours),
    Rule("never a URL from the token (jku)", "jku-injection", _jku_or_ours),
    Rule("the kid is never a path", "kid-traversal", _key_file),
    Rule("the kid is never a query", "kid-sqli", _key_sql),
    Rule(
        "algorithms=['RS256'], pinned",
        "alg-confusion",
        lambda lab: validator(lab, algorithms=lambda header: [header.get("alg")]),
    ),
    Rule("pinned whatever the kid", "weak-secret", _legacy_kept),
    Rule("algorithms=['RS256'], pinned: no unsigned path", "alg-none", _unsigned_when_none),
    Rule(
        "algorithms=['RS256'], pinned: the signature always verified",
        "unverified-signature",
        lambda lab: validator(lab, options=options(lab, verify_signature=False)),
    ),
    Rule("issuer=ISSUER", "audience", lambda lab: validator(lab, issuer=None)),
    Rule(
        "iss compared exactly: no trailing-slash forgiveness",
        "issuer-exact",
        lambda lab: _own_iss(lab, lambda iss: iss.rstrip("/") == ISSUER),
    ),
    Rule(
        "audience=AUDIENCE",
        "audience",
        lambda lab: validator(lab, options=options(lab, verify_aud=False)),
    ),
    Rule(
        "a token whose aud list contains orders-api is for this API (strict_aud off)",
        "multi-audience",
        lambda lab: validator(lab, options=options(lab, strict_aud=True)),
    ),
    Rule(
        "aud must contain orders-api exactly",
        "audience-list",
        lambda lab: _own_aud(
            lab, lambda aud: any(AUDIENCE in a for a in (aud if isinstance(aud, list) else [aud]))
        ),
    ),
    Rule(
        "leeway 30 s: a token 5 s past exp passes",
        "within-leeway",
        lambda lab: validator(lab, leeway=0),
    ),
    Rule(
        "leeway 30 s: tokens 90 s and 10 minutes past exp do not",
        "expired",
        lambda lab: validator(lab, leeway=300),
    ),
    Rule(
        "require exp",
        "expired",
        lambda lab: validator(lab, options={"require": ["iat", "iss", "aud", "sub", "jti"]}),
    ),
    Rule(
        "require jti (and the other REQUIRED claims)",
        "missing-claims",
        lambda lab: validator(lab, options={"require": ["exp", "iat", "iss", "aud", "sub"]}),
    ),
    Rule(
        "keep PyJWT's nbf check on",
        "expired",
        lambda lab: validator(lab, options=options(lab, verify_nbf=False)),
    ),
    Rule(
        "keep PyJWT's iat check on",
        "expired",
        lambda lab: validator(lab, options=options(lab, verify_iat=False)),
    ),
    Rule(
        "exp, iat and nbf are an int or a float, and a bool is not one",
        "claim-types",
        lambda lab: validator(
            lab,
            times=lambda c: all(
                isinstance(c[n], (int, float)) for n in ("exp", "iat", "nbf") if n in c
            ),
        ),
    ),
    Rule(
        "exp no more than LIFETIME after iat", "lifetime", lambda lab: validator(lab, too_long=None)
    ),
    Rule(
        "typ must be at+jwt or application/at+jwt",
        "wrong-typ",
        lambda lab: validator(lab, check_typ=False),
    ),
    Rule(
        "validate the whole token every time: no verdict cached by kid",
        "cached-verdict",
        lambda lab: _cached(lab, lambda t: jwt.get_unverified_header(t).get("kid"), True),
    ),
    Rule(
        "catch jwt.PyJWTError: InvalidKeyError is not an InvalidTokenError",
        "alg-confusion",
        lambda lab: validator(
            lab,
            keys=_pem_keys(lab),
            algorithms=lambda header: ["RS256", "HS256"],
            catch=jwt.InvalidTokenError,
        ),
    ),
]


def _breached(lab: Lab, defense: Callable[[str], Any]) -> DefenseBreached:
    lab.defend(validate_token=defense)
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    return caught.value


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.row}: {r.text}" for r in RULES])
def test_each_stated_rule_is_enforced_by_its_row(lab04: Lab, rule: Rule) -> None:
    """The solution with exactly one rule of the defend cell broken fails that rule's row."""
    breach = _breached(lab04, rule.wrong(lab04))
    assert rule.row in {failure.id for failure in breach.report.failures}
    assert f"] {rule.row} (" in str(breach)  # "] row-id (granted too much...):"


def test_every_row_enforces_a_stated_rule() -> None:
    """No grader row without a rule the notebook states (and no rule without a real row)."""
    rows = {a.id for a in LESSON.attacks} | {c.id for c in LESSON.checks}
    assert {rule.row for rule in RULES} == rows


# -- more plausible wrong defenses, by class (neighbours of each rule) -------------------------

WRONG: dict[str, tuple[Callable[[Lab], Callable[[str], Any]], str]] = {
    # keys, algorithms, signature
    "algorithms from the header, every error caught": (
        lambda lab: validator(lab, algorithms=lambda h: [h.get("alg")], catch=Exception),
        "alg-confusion",
    ),
    "RS256 and PS256 with one key": (
        lambda lab: validator(lab, algorithms=lambda header: ["RS256", "PS256"]),
        "alg-confusion",
    ),
    "an hour of leeway": (lambda lab: validator(lab, leeway=3600), "expired"),
    "a missing typ accepted": (_typ_optional, "wrong-typ"),
    "iat not required": (
        lambda lab: validator(lab, options={"require": ["exp", "iss", "aud", "sub", "jti"]}),
        "missing-claims",
    ),
    # registered claims of the wrong JSON type or absurd magnitude
    "PyJWT alone: no type or lifetime check": (
        lambda lab: validator(lab, times=None, too_long=None),
        "claim-types",
    ),
    "types checked for exp and iat, not nbf": (
        lambda lab: validator(lab, times=lambda c: numbers(c, ("exp", "iat"))),
        "claim-types",
    ),
    "time claims read with float()": (lambda lab: validator(lab, times=_as_floats), "claim-types"),
    "its own expiry check, which a NaN passes": (_own_expiry, "claim-types"),
    "lifetime by subtraction (overflows)": (
        _lifetime(lambda c: c["exp"] - c["iat"] > 900),
        "lifetime",
    ),
    "a day of lifetime allowed": (_lifetime(lambda c: c["exp"] > c["iat"] + 86400), "lifetime"),
    "exp bounded from now, iat ignored": (
        _lifetime(lambda c: c["exp"] > time.time() + 930),
        "lifetime",
    ),
    # aud in its list form
    "aud == AUDIENCE by hand": (
        lambda lab: _own_aud(lab, lambda aud: aud == AUDIENCE),
        "multi-audience",
    ),
    "the first aud of a list": (
        lambda lab: _own_aud(
            lab, lambda aud: (aud[0] if isinstance(aud, list) else aud) == AUDIENCE
        ),
        "multi-audience",
    ),
    "AUDIENCE in aud (a substring, a dict key)": (
        lambda lab: _own_aud(lab, lambda aud: AUDIENCE in aud),
        "audience-list",
    ),
    "aud compared without case": (
        lambda lab: _own_aud(
            lab,
            lambda aud: (
                AUDIENCE in [str(a).lower() for a in (aud if isinstance(aud, list) else [aud])]
            ),
        ),
        "audience-list",
    ),
    "aud split on spaces like a scope": (
        lambda lab: _own_aud(
            lab, lambda aud: AUDIENCE in (aud.split() if isinstance(aud, str) else aud)
        ),
        "audience-list",
    ),
    "billing accepted too": (
        lambda lab: validator(lab, audience=[AUDIENCE, "billing"]),
        "audience",
    ),
    # issuers compared loosely
    "issuer checked by prefix": (
        lambda lab: _own_iss(lab, lambda iss: iss.startswith("https://lab.example")),
        "audience",
    ),
    "issuer compared without case": (
        lambda lab: _own_iss(lab, lambda iss: iss.lower() == ISSUER.lower()),
        "issuer-exact",
    ),
    "issuer stripped of spaces": (
        lambda lab: _own_iss(lab, lambda iss: iss.strip() == ISSUER),
        "issuer-exact",
    ),
    "ISSUER in iss": (lambda lab: _own_iss(lab, lambda iss: ISSUER in iss), "issuer-exact"),
    "issuer compared by host and path": (
        lambda lab: _own_iss(
            lab,
            lambda iss: (urlsplit(iss).hostname, urlsplit(iss).path) == ("lab.example", "/issuer"),
        ),
        "issuer-exact",
    ),
    "issuer NFKC-normalised": (
        lambda lab: _own_iss(lab, lambda iss: unicodedata.normalize("NFKC", iss) == ISSUER),
        "issuer-exact",
    ),
    "issuer percent-decoded first": (
        lambda lab: _own_iss(lab, lambda iss: unquote(iss) == ISSUER),
        "issuer-exact",
    ),
    "issuer with and without its slash": (
        lambda lab: validator(lab, issuer=[ISSUER, ISSUER + "/"]),
        "issuer-exact",
    ),
    # validators that cache or shortcut on less than a full validation
    "verdict cached by header.payload": (
        lambda lab: _cached(lab, lambda t: t.rsplit(".", 1)[0]),
        "cached-verdict",
    ),
    "verdict cached by the payload": (
        lambda lab: _cached(lab, lambda t: t.split(".")[1]),
        "cached-verdict",
    ),
    "verdict cached by the signature": (
        lambda lab: _cached(lab, lambda t: t.rsplit(".", 1)[1]),
        "cached-verdict",
    ),
    "verdict cached by sub and jti": (
        lambda lab: _cached(lab, lambda t: (_unverified(t)["sub"], _unverified(t)["jti"])),
        "cached-verdict",
    ),
    "verdict cached by the first 200 characters": (
        lambda lab: _cached(lab, lambda t: t[:200], True),
        "cached-verdict",
    ),
    "verdicts cached by the whole token (lru_cache)": (
        lambda lab: functools.lru_cache(maxsize=256)(validator(lab)),
        "cached-verdict",
    ),
    # unknown or missing kid
    "every trusted key tried": (_every_key, "kid-unknown"),
    "kid normalised before the lookup": (
        lambda lab: validator(
            lab,
            key=lambda h: solution(lab)["KEYS"].get(str(h.get("kid")).strip().lower()),
        ),
        "kid-unknown",
    ),
    "header['kid'] (a KeyError without one)": (
        lambda lab: validator(lab, key=lambda header: solution(lab)["KEYS"].get(header["kid"])),
        "kid-unknown",
    ),
    "the JWKS refetched for every unknown kid": (_refetch_every_unknown_kid, "jwks-refetch"),
    "PyJWKClient without its key-set cache": (
        lambda lab: _jwks_client(lab, cache_jwk_set=False),
        "jwks-refetch",
    ),
    # header JSON that is hostile in shape
    "its own header parser": (_own_header_parser, "malformed"),
    "its own header parser, objects only": (_own_header_parser_checked, "malformed"),
    "the payload read before verifying, to log the caller": (_logs_the_subject_first, "malformed"),
    "typ found in the header's text": (_typ_in_raw_header, "wrong-typ"),
}


@pytest.mark.parametrize("mistake", list(WRONG))
def test_the_grader_catches_a_plausible_wrong_defense(lab04: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names it."""
    make, row = WRONG[mistake]
    breach = _breached(lab04, make(lab04))
    assert row in {failure.id for failure in breach.report.failures}


RIGHT: dict[str, Callable[[Lab], Callable[[str], Any]]] = {
    "the table's own baseline": lambda lab: validator(lab),
    "keys from PyJWKClient, cached, refetched after its cooldown": lambda lab: _jwks_client(
        lab, cache_keys=True, lifespan=300
    ),
    "KEYS refetched for an unknown kid at most once a minute": _refetch_with_cooldown,
}


@pytest.mark.parametrize("name", list(RIGHT))
def test_other_right_defenses_pass(lab04: Lab, name: str) -> None:
    """Defenses that follow every rule in another way pass too: the grader fails none of them."""
    lab04.defend(validate_token=RIGHT[name](lab04))
    report = lab04.grade()
    assert report.passed, str(report)


@pytest.mark.parametrize("leeway", [0, 60])
def test_the_expired_since_probe_fails_no_leeway_but_a_cache(lab04: Lab, leeway: int) -> None:
    """A validator without a cache passes the cached-verdict row whatever its leeway: the row
    learns nothing then, rather than guessing from a clock."""
    lab04.defend(validate_token=validator(lab04, leeway=leeway))
    row = run_item(lab04, next(a for a in LESSON.attacks if a.id == "cached-verdict"))
    assert row.passed, row.observed


def test_hs256_helper_matches_the_standard_library() -> None:
    """The lab's hand-rolled HS256 is plain HMAC-SHA-256 in base64url."""
    digest = hmac.new(b"k", b"a.b", hashlib.sha256).digest()
    assert hs256("a.b", b"k") == b64url(digest)


# -- hostile input: a 4xx, never a 5xx (the only 5xx allowed names the hook that failed) ----

HOSTILE_BODIES: dict[str, str | bytes] = {
    "a lone surrogate": '{"username": "\\ud800", "password": "x"}',
    "integers beyond 64 bits": f'{{"username": {2**70}, "password": {2**70}}}',
    "1e999": '{"username": "alice", "password": 1e999}',
    "NaN": '{"username": "alice", "password": NaN}',
    "nested 10000 deep": "[" * 10000 + "]" * 10000,
    "duplicate keys": '{"username": "alice", "username": "carol", "password": "x"}',
    "a list": "[]",
    "null": "null",
    "a string": '"alice"',
    "a number": "7",
    "not UTF-8": b'{"username": "\xff\xfe", "password": "x"}',
    "a megabyte": json.dumps({"username": "a" * 2**20, "password": "x"}),
    "no fields": "{}",
    "odd types": '{"username": ["alice"], "password": {"x": 1}}',
    "a password of surrogates": '{"username": "alice", "password": "\\udc80\\ud800"}',
}
HOSTILE_PATHS = (
    "/svc/%ED%A0%80/me",
    "/svc/%00/admin",
    f"/svc/{2**70}/me",
    "/svc/" + "a" * 4000 + "/me",
    f"/svc/reports/me?x=%ED%A0%80&x={2**70}&y=%00",
    "/svc/reports/admin?" + "a=1&" * 500,
    "/.well-known/jwks.json?kid=%ED%A0%80",
    f"/ops/token-log?limit={2**70}",
    "/robots.txt?x=[]",
    "/svc?x=%FF",
)


def _hostile_tokens(lab: Lab) -> dict[str, str]:
    """Tokens a validator may meet: garbage, hostile JSON, and hostile claims, genuinely signed."""
    m = load_material(lab.store)
    head = json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": m.kid})
    alice = m.claims("alice", "customer")
    deep_role = "[" * 500 + '"admin"' + "]" * 500
    surrogate_kid = b64url(b'{"kid":"\\ud800"}')

    def signed(**claims: str) -> str:
        body = json.dumps(alice)[:-1] + "".join(f',"{k}":{v}' for k, v in claims.items()) + "}"
        return m.sign_raw(head, body)

    return {
        "12 KB of garbage": "A" * 12000,
        "not base64 at all": "\u00e9\u00ff.\u00e9.\u00e9",
        "a header that is a list": f"{b64url(b'[]')}.{b64url(b'{}')}.c2ln",
        "a header nested 3000 deep": f"{b64url(b'[' * 3000 + b']' * 3000)}.{b64url(b'{}')}.c2ln",
        "a header with a lone surrogate": f"{surrogate_kid}.e30.c2ln",
        "sub a lone surrogate": signed(sub='"\\ud800"'),
        "sub beyond 64 bits": signed(sub=str(2**70)),
        "sub empty": signed(sub='""'),
        "role nested 500 deep": signed(role=deep_role),
        "role a lone surrogate": signed(role='"\\udfff"'),
        "role NaN": signed(role="NaN"),
        "role beyond 64 bits": signed(role=str(2**70)),
        "exp beyond 64 bits": signed(exp=str(2**70)),
        "aud a dict": signed(aud='{"orders-api": 1}'),
    }


def _accept_anything(token: str) -> Any:
    """Returns whatever the payload says: the app itself must survive any claims."""
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None


def _no_server_error(response: Any, weak: bool, what: str) -> None:
    if response.status_code < 500:
        return
    # The shipped weak validator crashes on a token that is not a JWS at all (the malformed
    # row teaches that): allowed only as the hook's own failure, named as such.
    named = response.text.startswith('{"detail":"validate_token() raised')
    assert weak and named, f"{what}: HTTP {response.status_code} {response.text[:200]}"


@pytest.mark.parametrize("defense", ["weak", "solution"])
def test_hostile_login_bodies_get_a_4xx(lab04: Lab, defense: str) -> None:
    """Bodies with surrogates, huge numbers, deep nesting or odd types are refused with a 4xx."""
    if defense == "solution":
        lab04.defend(validate_token=solution(lab04)["validate_token"])
    for name, body in HOSTILE_BODIES.items():
        for path in ("/login", "/billing/login"):
            response = lab04.client.post(
                path, content=body, headers={"content-type": "application/json"}
            )
            assert 400 <= response.status_code < 500, f"{path} with {name}: {response.text[:200]}"


@pytest.mark.parametrize("defense", ["weak", "solution", "accepts anything", "always alice"])
def test_hostile_paths_queries_and_tokens_get_no_server_error(lab04: Lab, defense: str) -> None:
    """Anonymous or signed in, hostile paths, queries and tokens on every service: no 5xx
    but the weak validator's own, named crash; and the app survives any claims a validator
    lets through."""
    hooks = {
        "solution": solution(lab04)["validate_token"],
        "accepts anything": _accept_anything,
        "always alice": lambda token: {"sub": "alice", "role": "admin"},  # any token reaches
    }
    if defense in hooks:
        lab04.defend(validate_token=hooks[defense])
    weak = defense == "weak"
    alice = _alice(lab04)
    for path in HOSTILE_PATHS:
        for headers in ({}, {"Authorization": f"Bearer {alice}"}):
            _no_server_error(lab04.client.get(path, headers=headers), weak, path)
    for name, token in _hostile_tokens(lab04).items():
        for service in SERVICES:
            for route in ("me", "admin"):
                headers = {"Authorization": f"Bearer {token}".encode()}
                response = lab04.client.get(f"/svc/{service}/{route}", headers=headers)
                _no_server_error(response, weak, f"{name} on {service}/{route}")


def test_a_hostile_key_set_behind_jku_is_a_refusal(lab04: Lab) -> None:
    """The weak integrations service fetches any loopback JWKS: a malformed one is a 401."""
    m = load_material(lab04.store)
    documents = {
        "/list.json": [1, 2],
        "/string.json": {"keys": "x"},
        "/empty.json": {"keys": []},
        "/number-n.json": {"keys": [{"kty": "RSA", "kid": "k", "n": 7, "e": "AQAB"}]},
        "/deep.json": {"keys": [[[[[[[[[[[]]]]]]]]]]]},
    }
    base = lab04.attacker_server(documents)
    for path in [*documents, "/missing.json"]:
        header = {"alg": "RS256", "typ": "at+jwt", "kid": "k", "jku": f"{base}{path}"}
        token = jwt.encode(m.claims("mallory", "admin"), m.private_key, "RS256", headers=header)
        response = _call(lab04, "integrations", token)
        assert response.status_code == 401, f"{path}: {response.text[:200]}"


# -- the rows name the cause: the hook, the direction, the fix --------------------------------


def _row(breach: DefenseBreached, row_id: str):
    return next(row for row in breach.report.rows if row.id == row_id)


def test_a_crash_on_the_algorithm_row_says_pin_the_algorithm(lab04: Lab) -> None:
    """HS256 allowed beside RS256, PEM keys, only InvalidTokenError caught: PyJWT's
    InvalidKeyError escapes. The row names the token that crashed validate_token, and the
    fix the lesson teaches (pin the algorithm, catch PyJWTError), not only "must not raise"."""
    wrong = validator(
        lab04, keys=_pem_keys(lab04), algorithms=lambda h: ["RS256", "HS256"],
        catch=jwt.InvalidTokenError,
    )  # fmt: skip
    row = _row(_breached(lab04, wrong), "alg-confusion")
    assert not row.passed and row.why().startswith("crashed (5xx)")
    assert "validate_token crashed on HS256 keyed with the public PEM" in row.observed
    assert "InvalidKeyError" in row.observed  # the learner's own exception, from the engine
    assert "pin algorithms=['RS256']" in row.hint and "catch jwt.PyJWTError" in row.hint


def test_an_open_audience_row_says_granted_too_much_and_names_the_argument(lab04: Lab) -> None:
    """aud not checked: the billing token gets through, and the row says validate_token
    accepted it (granted too much) and which argument to pass."""
    row = _row(_breached(lab04, validator(lab04, options=options(lab04, verify_aud=False))),
               "audience")  # fmt: skip
    assert row.why().startswith("granted too much")
    assert row.observed.startswith("got through (HTTP 200): validate_token accepted")
    assert row.hint.startswith("validate_token accepted a token meant for another API")
    assert "audience=AUDIENCE" in row.hint


def test_a_zero_leeway_row_says_denied_too_much(lab04: Lab) -> None:
    """No leeway: the legit row says validate_token refused a real token (denied too much)
    and names leeway=30, not the engine's generic "denying too much?"."""
    row = _row(_breached(lab04, validator(lab04, leeway=0)), "within-leeway")
    assert row.why().startswith("denied too much")
    assert "validate_token refused a token 5 s past exp (reports)" in row.observed
    assert row.hint.startswith("validate_token refused") and "leeway=30" in row.hint


def test_a_decode_without_audience_fails_fresh_login_naming_audience(lab04: Lab) -> None:
    """No audience= at all: PyJWT refuses every real token (they carry aud), so alice's fresh
    token is refused; the row's hint names audience=AUDIENCE, not only KEYS, sub and typ."""
    row = _row(_breached(lab04, validator(lab04, audience=None)), "fresh-login")
    assert not row.passed and row.why().startswith("denied too much")
    assert "audience=AUDIENCE" in row.hint and "aud claim" in row.hint


def test_the_defend_hints_pick_the_key_with_keys_get() -> None:
    """The hints state the notebook's rule, KEYS.get(kid), never KEYS[kid] (a KeyError, a 500,
    for an unknown kid), and so do the rows' fixes."""
    texts = [*LESSON.hints["defend"], *(a.fix for a in LESSON.attacks)]
    assert not any("KEYS[kid]" in text for text in texts)
    assert "KEYS.get(kid)" in LESSON.hints["defend"][1]


def test_a_strict_audience_row_names_strict_aud(lab04: Lab) -> None:
    """strict_aud=True refuses aud lists: the row says which list and names strict_aud."""
    row = _row(_breached(lab04, validator(lab04, options=options(lab04, strict_aud=True))),
               "multi-audience")  # fmt: skip
    assert row.why().startswith("denied too much")
    assert "aud ['billing', 'orders-api']: validate_token refused it" in row.observed
    assert "strict_aud=True" in row.hint


def test_a_jwks_fetch_per_token_names_the_hook_and_the_pyjwt_version(lab04: Lab) -> None:
    """KEYS fetched inside validate_token: the row counts the fetches and dates PyJWKClient's
    cooldown by version (2.14)."""
    row = _row(_breached(lab04, _keys_every_call(lab04)), "jwks-refetch")
    assert "made validate_token fetch the JWKS" in row.observed
    assert "since 2.14" in row.hint and "before 2.14" in row.hint


# -- the figure ---------------------------------------------------------------------------------


def test_the_token_figure_colours_each_part_of_a_real_token(lab04: Lab) -> None:
    """Drawn from a token the lab issued: each part's characters in its own colour, quickly."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labapp.lessons.l04_jwt.figure import PARTS, plot_token_parts

    token = _alice(lab04)
    start = time.perf_counter()
    fig = plot_token_parts(token)
    fig.canvas.draw()
    elapsed = time.perf_counter() - start
    try:
        texts = fig.axes[0].texts
        for index, (colour, name, _) in enumerate(PARTS):
            drawn = "".join(t.get_text().replace(" ", "") for t in texts
                            if t.get_color() == colour and t.get_fontweight() == "bold"
                            and ":" not in t.get_text())  # fmt: skip
            assert drawn == token.split(".")[index], name
        assert elapsed < 2.0  # about 0.3 s here; generous for a busy 2-core machine
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="three parts"):
        plot_token_parts("only.two")
