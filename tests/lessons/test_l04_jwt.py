"""Lesson 04: each forged token breaches its weak service; the solution stops all of them."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

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
from labapp.lessons.l04_jwt.jose import SERVICES, b64url, hs256, load_material, segment
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


def test_a_validator_returning_the_wrong_type_is_named_in_the_report(lab04: Lab) -> None:
    """validate_token returning True is reported as the hook's mistake, not a bare 500."""
    lab04.defend(validate_token=lambda token: True)
    with pytest.raises(DefenseBreached) as caught:
        lab04.grade()
    assert "validate_token() returned: must return the claims dict or None" in str(
        caught.value.report
    )


# -- plausible wrong defenses ---------------------------------------------------------------


def validator(lab: Lab, **changes: Any) -> Callable[[str], Any]:
    """The solution's validator with one decision changed (keys, algorithms, options...)."""
    ns = solution(lab)
    keys: dict[str, Any] = changes.pop("keys", ns["KEYS"])
    catch = changes.pop("catch", jwt.PyJWTError)
    check_typ = changes.pop("check_typ", True)
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
            header = jwt.get_unverified_header(token)
            key = pick_key(header)
            if key is None:
                return None
            verified = jwt.decode_complete(
                token, key, algorithms=pick_algorithms(header), **arguments
            )
        except catch:
            return None
        if check_typ and verified["header"].get("typ") not in ns["ACCESS_TOKEN_TYPES"]:
            return None
        return verified["payload"]

    return validate_token


def _pem_keys(lab: Lab) -> dict[str, bytes]:
    """The issuer's keys as PEM text, as many services keep them."""
    keys = solution(lab)["KEYS"]
    return {
        kid: key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        for kid, key in keys.items()
    }


def _key_file(lab: Lab) -> Callable[[dict], bytes]:
    """Keys kept as files named by kid: the issuer's PEM is written there for the test."""
    for kid, pem in _pem_keys(lab).items():
        (lab.workdir / "keys" / kid).write_bytes(pem)
    return lambda header: (lab.workdir / "keys" / header["kid"]).read_bytes()


def _jwk_or_ours(lab: Lab) -> Callable[[dict], Any]:
    keys = solution(lab)["KEYS"]
    return lambda header: (
        jwt.PyJWK(header["jwk"]).key if "jwk" in header else keys.get(header.get("kid"))
    )


def _jku_or_ours(lab: Lab) -> Callable[[dict], Any]:
    keys = solution(lab)["KEYS"]

    def key(header: dict) -> Any:
        if "jku" in header:
            return jwt.PyJWKClient(header["jku"]).get_signing_key(header["kid"]).key
        return keys.get(header.get("kid"))

    return key


def _crashes_on_garbage(lab: Lab) -> Callable[[str], Any]:
    good = validator(lab)

    def validate_token(token: str) -> Any:
        jwt.get_unverified_header(token)  # "it's a JWT, surely": outside the try
        return good(token)

    return validate_token


def _issuer_prefix(lab: Lab) -> Callable[[str], Any]:
    """Checks iss with startswith, so a staging issuer of the same domain passes."""
    lax = validator(lab, issuer=None)

    def validate_token(token: str) -> Any:
        claims = lax(token)
        ok = claims and str(claims.get("iss", "")).startswith("https://lab.example")
        return claims if ok else None

    return validate_token


def _typ_optional(lab: Lab) -> Callable[[str], Any]:
    """Refuses a wrong typ, but lets a token without any typ through."""
    lax = validator(lab, check_typ=False)

    def validate_token(token: str) -> Any:
        typ = jwt.get_unverified_header(token).get("typ") if token.count(".") == 2 else "?"
        return lax(token) if typ in (None, "at+jwt", "application/at+jwt") else None

    return validate_token


REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti"]
WRONG: dict[str, tuple[Callable[[Lab], Callable[[str], Any]], str]] = {
    "no audience check": (
        lambda lab: validator(lab, options={"require": REQUIRED, "verify_aud": False}),
        "audience",
    ),
    "no issuer check": (lambda lab: validator(lab, issuer=None), "audience"),
    "algorithms read from the token header": (
        lambda lab: validator(lab, algorithms=lambda header: [header.get("alg")]),
        "alg-confusion",
    ),
    "verify_signature off for debug": (
        lambda lab: validator(lab, options={"require": REQUIRED, "verify_signature": False}),
        "unverified-signature",
    ),
    "catching only InvalidTokenError (RS256 and HS256, PEM keys)": (
        lambda lab: validator(
            lab,
            keys=_pem_keys(lab),
            algorithms=lambda header: ["RS256", "HS256"],
            catch=jwt.InvalidTokenError,
        ),
        "alg-confusion",
    ),
    "key chosen by kid from a user-controlled path": (
        lambda lab: validator(
            lab,
            key=_key_file(lab),
            algorithms=lambda header: ["RS256", "HS256"],
            catch=(jwt.PyJWTError, OSError, KeyError),
        ),
        "kid-traversal",
    ),
    "the token's jwk trusted": (
        lambda lab: validator(lab, key=_jwk_or_ours(lab)),
        "jwk-injection",
    ),
    "the token's jku fetched with PyJWKClient": (
        lambda lab: validator(lab, key=_jku_or_ours(lab)),
        "jku-injection",
    ),
    "exp not required": (
        lambda lab: validator(lab, options={"require": ["iat", "iss", "aud", "sub", "jti"]}),
        "expired",
    ),
    "an hour of leeway": (lambda lab: validator(lab, leeway=3600), "expired"),
    "no leeway": (lambda lab: validator(lab, leeway=0), "within-leeway"),
    "typ not checked": (lambda lab: validator(lab, check_typ=False), "wrong-typ"),
    "jti and iat not required": (
        lambda lab: validator(lab, options={"require": ["exp", "iss", "aud", "sub"]}),
        "missing-claims",
    ),
    "algorithms from the header, every error caught": (
        lambda lab: validator(lab, algorithms=lambda h: [h.get("alg")], catch=Exception),
        "alg-confusion",
    ),
    "RS256 and PS256 with one key": (
        lambda lab: validator(lab, algorithms=lambda header: ["RS256", "PS256"]),
        "alg-confusion",
    ),
    "nbf not checked": (
        lambda lab: validator(lab, options={"require": REQUIRED, "verify_nbf": False}),
        "expired",
    ),
    "iat in the future not checked": (
        lambda lab: validator(lab, options={"require": REQUIRED, "verify_iat": False}),
        "expired",
    ),
    "five minutes of leeway": (lambda lab: validator(lab, leeway=300), "expired"),
    "issuer checked by prefix": (lambda lab: _issuer_prefix(lab), "audience"),
    "a missing typ accepted": (lambda lab: _typ_optional(lab), "wrong-typ"),
    "crashes on a malformed token": (_crashes_on_garbage, "malformed"),
    "denies every token": (lambda lab: lambda token: None, "fresh-login"),
}


@pytest.mark.parametrize("mistake", list(WRONG))
def test_the_grader_catches_a_plausible_wrong_defense(lab04: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names it."""
    make, row = WRONG[mistake]
    lab04.defend(validate_token=make(lab04))
    with pytest.raises(DefenseBreached) as caught:
        lab04.grade()
    assert row in {failure.id for failure in caught.value.report.failures}


def test_hs256_helper_matches_the_standard_library() -> None:
    """The lab's hand-rolled HS256 is plain HMAC-SHA-256 in base64url."""
    digest = hmac.new(b"k", b"a.b", hashlib.sha256).digest()
    assert hs256("a.b", b"k") == b64url(digest)
