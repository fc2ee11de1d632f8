"""Lesson 08's battery: each attack breaches the weak lab and earns its flag; the sound
policy stops them all while the legitimate checks pass; plausible wrong defenses each fail
their own row."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list

from labapp.engine.errors import DefenseBreached
from labapp.engine.grading import run_item
from labapp.engine.lab import Lab, start
from labapp.lessons.l08_oauth import LESSON, verifier
from labapp.lessons.l08_oauth.battery import CHECKS, HINTS
from tests.lessons import l08_policy as policy
from tests.lessons.test_hints import steps_code

ATTACK_IDS = [a.id for a in LESSON.attacks]


@pytest.fixture
def lab() -> Iterator[Lab]:
    running = start(LESSON)
    try:
        yield running
    finally:
        running.stop()


def test_the_lesson_wires_its_battery() -> None:
    assert ATTACK_IDS == [
        "pkce-missing",
        "token-audience",
        "scope-escalation",
        "code-reuse",
        "redirect-uri",
        "open-redirect",
        "login-csrf",
        "implicit-flow",
        "nonce",
        "implicit-token",
        "password-grant",
        "id-token-audience",
    ]
    assert LESSON.flag_names == tuple(ATTACK_IDS[:9])
    assert [c.id for c in LESSON.checks] == [c.id for c in CHECKS]


def test_every_attack_gets_through_the_weak_lab_and_every_check_works(lab: Lab) -> None:
    for item in (*LESSON.attacks, *LESSON.checks):
        row = run_item(lab, item)
        assert not row.passed if row.kind == "attack" else row.passed, row


def test_the_sound_policy_stops_every_attack_and_keeps_every_check(lab: Lab) -> None:
    lab.defend(**policy.SOUND)
    report = lab.grade()
    assert report.passed and len(report.rows) == len(LESSON.attacks) + len(LESSON.checks)


def test_deny_everything_is_not_a_defense(lab: Lab) -> None:
    lab.defend(**policy.SOUND)
    lab.defend(allowed_scope=lambda registered, requested, consented: "")
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    failed = {row.id for row in caught.value.report.failures}
    assert {"login", "consent", "client-credentials"} <= failed
    assert not failed & set(ATTACK_IDS)


def test_refusing_every_grant_but_the_code_is_not_a_defense(lab: Lab) -> None:
    lab.defend(**policy.SOUND)
    lab.defend(check_grant_type=lambda registered, grant_type: grant_type == "authorization_code")
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    failed = {row.id for row in caught.value.report.failures}
    assert {"refresh", "client-credentials"} <= failed
    assert not failed & set(ATTACK_IDS)


# -- plausible wrong defenses, each caught on its own row --------------------------------------


def aud_but_not_typ(token: str, required_scope: str) -> dict[str, Any] | None:
    """Audience, issuer, signature and scope checked; typ forgotten (an ID token whose aud
    lists the API passes)."""
    known = verifier.current()
    try:
        claims = jwt.decode(
            token,
            known.signing_key(token),
            algorithms=["RS256"],
            audience=known.audience,
            issuer=known.issuer,
        )
    except (jwt.PyJWTError, KeyError):
        return None
    return claims if required_scope in str(claims.get("scope", "")).split() else None


def typ_but_not_aud(token: str, required_scope: str) -> dict[str, Any] | None:
    """typ at+jwt required, but any audience of the issuer taken (a token for another API)."""
    known = verifier.current()
    try:
        if jwt.get_unverified_header(token).get("typ") != "at+jwt":
            return None
        claims = jwt.decode(
            token,
            known.signing_key(token),
            algorithms=["RS256"],
            issuer=known.issuer,
            options={"verify_aud": False},
        )
    except (jwt.PyJWTError, KeyError):
        return None
    return claims if required_scope in str(claims.get("scope", "")).split() else None


def pkce_only_if_sent(public: bool, code_challenge: str | None, method: str | None) -> str | None:
    """S256 enforced, but only when the client chose to send a challenge."""
    if code_challenge and method != "S256":
        return "code_challenge_method must be S256"
    return None


def pkce_plain_allowed(public: bool, code_challenge: str | None, method: str | None) -> str | None:
    """A challenge required, any RFC 7636 method accepted (plain too)."""
    return None if code_challenge else "PKCE is required"


def pkce_public_only(public: bool, code_challenge: str | None, method: str | None) -> str | None:
    """Required of confidential clients only, the wrong way round (the secret "is enough")."""
    if not public and (not code_challenge or method != "S256"):
        return "PKCE S256 is required"
    return None


def scope_ignores_consent(registered: str, requested: str, consented: str | None) -> str:
    """Registered ∩ requested; what the user unticked is granted anyway."""
    keep = set(scope_to_list(registered) or [])
    return list_to_scope([s for s in scope_to_list(requested) or [] if s in keep])


def scope_trusts_consent(registered: str, requested: str, consented: str | None) -> str:
    """What the user consented to, else what was asked: registration never consulted (and
    client credentials have no user to consent)."""
    return consented if consented is not None else requested


def scope_union(registered: str, requested: str, consented: str | None) -> str:
    """Registered ∪ requested, "so a client keeps its defaults": a union for an intersection."""
    have = scope_to_list(registered) or []
    return list_to_scope(have + [s for s in scope_to_list(requested) or [] if s not in have])


def single_use_inverted(already_used: bool) -> bool:
    """The hook's question read backwards ("is single use in force?"): the second use passes."""
    return already_used


def redirect_subpaths(registered: list[str], redirect_uri: str) -> bool:
    """The registered URI or a path below it, "so the app can route after sign-in"."""
    return any(redirect_uri == r or redirect_uri.startswith(r + "/") for r in registered)


def redirect_same_origin(registered: list[str], redirect_uri: str) -> bool:
    """Scheme, host and port of a registered URI: "the client owns its whole site"."""
    origin = urlsplit(redirect_uri)[:2]
    return any(urlsplit(r)[:2] == origin for r in registered)


def state_only_when_expected(expected: str | None, received: str | None) -> bool:
    """Checked when this session started a flow, else waved through (Authlib's own client
    compares state only when it is given one)."""
    return expected is None or expected == received


def state_only_present(expected: str | None, received: str | None) -> bool:
    """A state must come back, any state."""
    return bool(received)


def implicit_trusts_claim_of_a_valid_token(
    claimed: str | None, userinfo: dict | None
) -> str | None:
    """The token is checked at /userinfo, but the user is still the one the page posts."""
    if userinfo is None:
        return None
    return claimed or str(userinfo.get("sub"))


def for_this_client(claims: dict[str, Any], client_id: str) -> bool:
    """The sound iss/aud/azp part of validate_id_token, for the wrong nonce checks below."""
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    issuer_ok = claims.get("iss") == verifier.current().issuer
    return issuer_ok and audiences == [client_id] and claims.get("azp", client_id) == client_id


def nonce_only_when_expected(claims: dict[str, Any], nonce: str | None, client_id: str) -> bool:
    """The nonce compared when the flow has one (Authlib's IDToken.validate_nonce)."""
    return for_this_client(claims, client_id) and (nonce is None or claims.get("nonce") == nonce)


def nonce_only_present(claims: dict[str, Any], nonce: str | None, client_id: str) -> bool:
    """The ID token must carry a nonce, any nonce."""
    return for_this_client(claims, client_id) and bool(claims.get("nonce"))


def nonce_but_not_audience(claims: dict[str, Any], nonce: str | None, client_id: str) -> bool:
    """The nonce required and equal; the audience never looked at ("same issuer, same
    signature: it is ours")."""
    return bool(nonce) and claims.get("nonce") == nonce


def id_token_audience_among_others(
    claims: dict[str, Any], nonce: str | None, client_id: str
) -> bool:
    """This client anywhere in aud: an untrusted second audience passes."""
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    issuer_ok = claims.get("iss") == verifier.current().issuer
    return issuer_ok and client_id in audiences and bool(nonce) and claims.get("nonce") == nonce


def id_token_without_azp(claims: dict[str, Any], nonce: str | None, client_id: str) -> bool:
    """iss, a sole aud and the nonce checked; azp never read."""
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    issuer_ok = claims.get("iss") == verifier.current().issuer
    return issuer_ok and audiences == [client_id] and bool(nonce) and claims.get("nonce") == nonce


def id_token_without_issuer(claims: dict[str, Any], nonce: str | None, client_id: str) -> bool:
    """aud, azp and nonce checked; "the signature is our AS's, so iss must be too"."""
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    same_client = audiences == [client_id] and claims.get("azp", client_id) == client_id
    return same_client and bool(nonce) and claims.get("nonce") == nonce


def access_token_without_scope(token: str, required_scope: str) -> dict[str, Any] | None:
    """typ, signature, issuer and audience checked; the route's scope never looked at."""
    known = verifier.current()
    try:
        if jwt.get_unverified_header(token).get("typ") != "at+jwt":
            return None
        return jwt.decode(
            token,
            known.signing_key(token),
            algorithms=["RS256"],
            audience=known.audience,
            issuer=known.issuer,
        )
    except (jwt.PyJWTError, KeyError):
        return None


def access_token_without_issuer(token: str, required_scope: str) -> dict[str, Any] | None:
    """typ, signature, audience and scope checked; any issuer whose key verifies taken."""
    known = verifier.current()
    try:
        if jwt.get_unverified_header(token).get("typ") != "at+jwt":
            return None
        claims = jwt.decode(
            token, known.signing_key(token), algorithms=["RS256"], audience=known.audience
        )
    except (jwt.PyJWTError, KeyError):
        return None
    return claims if required_scope in str(claims.get("scope", "")).split() else None


def access_token_unverified(token: str, required_scope: str) -> dict[str, Any] | None:
    """Every claim checked, the signature never ("the gateway verified it already")."""
    known = verifier.current()
    try:
        if jwt.get_unverified_header(token).get("typ") != "at+jwt":
            return None
        claims = jwt.decode(
            token,
            options={"verify_signature": False, "verify_aud": True, "verify_iss": True},
            audience=known.audience,
            issuer=known.issuer,
            algorithms=["RS256"],
        )
    except jwt.PyJWTError:
        return None
    return claims if required_scope in str(claims.get("scope", "")).split() else None


def scope_empty_consent_as_none(registered: str, requested: str, consented: str | None) -> str:
    """`if consented:` where `is not None` was meant: a consent to nothing counts as none."""
    keep = set(registered.split())
    if consented:
        keep &= set(consented.split())
    return " ".join(s for s in requested.split() if s in keep)


def response_type_as_registered(registered: list[str], response_type: str) -> bool:
    """Whatever the client's registration lists (photo-spa's still lists token)."""
    return response_type in registered


def grant_type_as_registered(registered: list[str], grant_type: str) -> bool:
    """Whatever the client's registration lists (photo-spa's still lists password)."""
    return grant_type in registered


WRONG: list[tuple[str, Callable[..., Any], str]] = [
    ("check_redirect_uri", redirect_subpaths, "redirect-uri"),
    ("check_redirect_uri", redirect_same_origin, "redirect-uri"),
    ("check_state", state_only_when_expected, "login-csrf"),
    ("check_state", state_only_present, "login-csrf"),
    ("implicit_user", implicit_trusts_claim_of_a_valid_token, "implicit-flow"),
    ("validate_id_token", nonce_only_when_expected, "nonce"),
    ("validate_id_token", nonce_only_present, "nonce"),
    ("validate_id_token", nonce_but_not_audience, "id-token-audience"),
    ("validate_id_token", id_token_audience_among_others, "id-token-audience"),
    ("validate_id_token", id_token_without_azp, "id-token-audience"),
    ("validate_id_token", id_token_without_issuer, "id-token-audience"),
    ("validate_access_token", access_token_without_scope, "token-audience"),
    ("validate_access_token", access_token_without_issuer, "token-audience"),
    ("validate_access_token", access_token_unverified, "token-audience"),
    ("allowed_scope", scope_empty_consent_as_none, "scope-escalation"),
    ("check_response_type", response_type_as_registered, "implicit-token"),
    ("check_grant_type", grant_type_as_registered, "password-grant"),
    ("validate_access_token", aud_but_not_typ, "token-audience"),
    ("validate_access_token", typ_but_not_aud, "token-audience"),
    ("check_pkce", pkce_only_if_sent, "pkce-missing"),
    ("check_pkce", pkce_plain_allowed, "pkce-missing"),
    ("check_pkce", pkce_public_only, "pkce-missing"),
    ("allowed_scope", scope_ignores_consent, "scope-escalation"),
    ("allowed_scope", scope_trusts_consent, "scope-escalation"),
    ("allowed_scope", scope_union, "scope-escalation"),
]


@pytest.mark.parametrize(("hook", "wrong", "row"), WRONG, ids=[w.__name__ for _, w, _ in WRONG])
def test_a_plausible_wrong_defense_fails_its_row(
    lab: Lab, hook: str, wrong: Callable[..., Any], row: str
) -> None:
    lab.defend(**policy.SOUND)
    lab.defend(**{hook: wrong})
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    failed = {r.id for r in caught.value.report.failures}
    assert failed == {row}, caught.value.report


def failures(lab: Lab) -> set[str]:
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    return {r.id for r in caught.value.report.failures}


def next_relative_only(url: str) -> bool:
    """ "Relative paths only": a leading slash, so //attacker.test passes."""
    return url.startswith("/")


def next_prefix_of_origin(lab: Lab) -> Callable[[str], bool]:
    """A local path or a URL starting with PrintShop's origin (userinfo slips past)."""
    return lambda url: url.startswith(("/", lab.net.client_url)) and not url.startswith("//")


@pytest.mark.parametrize("wrong", ["relative", "origin-prefix"])
def test_a_wrong_allow_next_fails_open_redirect_where_redirect_uris_are_loose(
    lab: Lab, wrong: str
) -> None:
    """Exact redirect_uri matching alone stops the open-redirect chain, so its own fix is
    graded where the authorization server still matches by prefix."""
    from labapp.lessons.l08_oauth.app import weak_check_redirect_uri

    lab.defend(**policy.SOUND)
    lab.defend(check_redirect_uri=weak_check_redirect_uri)
    assert failures(lab) == {"redirect-uri"}
    bad = next_relative_only if wrong == "relative" else next_prefix_of_origin(lab)
    lab.defend(allow_next=bad)
    assert failures(lab) == {"redirect-uri", "open-redirect"}


def test_an_inverted_single_use_fails_code_reuse_and_the_logins(lab: Lab) -> None:
    lab.defend(**policy.SOUND)
    lab.defend(code_single_use=single_use_inverted)
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    failed = {r.id for r in caught.value.report.failures}
    assert {"code-reuse", "login", "refresh", "api-scope"} <= failed
    assert not failed & {"pkce-missing", "scope-escalation"}  # token-audience needs a login


# -- flags: only a working exploit reveals one -------------------------------------------------


@pytest.mark.parametrize("name", LESSON.flag_names)
def test_the_steps_hint_earns_the_flag_on_a_fresh_lab(lab: Lab, name: str) -> None:
    nudge, technique, steps = HINTS[name]
    assert "```" not in nudge + technique and "RFC " in technique
    code = steps_code(steps)
    flag_line, check_line = code.strip().splitlines()[-2:]
    variable = flag_line.split(" = ")[0]
    assert variable.startswith("flag_")
    assert check_line == f'lab.check_flag("{name}", {variable})'
    exec(compile(code, f"<steps {name}>", "exec"), {"lab": lab})  # noqa: S102


def test_no_flag_for_legitimate_traffic_nor_for_a_refused_exploit(lab: Lab) -> None:
    import httpx

    from labapp.lessons.l08_oauth.battery import photos, spa_login

    with httpx.Client(base_url=lab.url, timeout=10) as http:
        tokens, _ = spa_login(lab, http, "openid photos:read photos:write")
        assert tokens.status_code == 200 and "flag" not in tokens.json()
        assert "flag" not in photos(lab, http, tokens.json()["access_token"]).json()
    lab.defend(**policy.SOUND)
    namespace = {"lab": lab}
    with pytest.raises(Exception):  # noqa: B017, PT011 - the recipe stops somewhere
        exec(compile(steps_code(HINTS["token-audience"][2]), "<steps>", "exec"), namespace)  # noqa: S102
    assert "flag_audience" not in namespace


def test_the_logout_row_fails_when_the_shop_keeps_its_tokens_alive(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labapp.lessons.l08_oauth.client import PrintShop

    logout = next(c for c in LESSON.checks if c.id == "logout")
    assert run_item(lab, logout).passed
    monkeypatch.setattr(PrintShop, "revoke", lambda self, tokens: None)
    row = run_item(lab, logout)
    assert not row.passed and "1 of the shop's 1 tokens still active" in row.observed
