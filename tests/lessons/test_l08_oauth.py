"""Lesson 08 as a lab: its weak hooks let the attacks through, the sound ones (policy) don't."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from labapp.engine.lab import Lab, start
from labapp.lessons.l08_oauth import LESSON, people
from tests.lessons import l08_policy as policy


@pytest.fixture
def lab() -> Iterator[Lab]:
    running = start(LESSON)
    try:
        yield running
    finally:
        running.stop()


def _unescape(text: str) -> str:
    return text.replace("&amp;", "&").replace("&quot;", '"')


def password(lab: Lab, user: str) -> str:
    return next(u["password"] for u in lab.users if u["username"] == user)


def authorize(lab: Lab, url: str, user: str = "alice") -> httpx.Response:
    """A browser at /authorize: log in, consent to all, return the AS's last answer."""
    with httpx.Client(base_url=lab.url, timeout=10) as browser:
        page = browser.get(url)
        if page.status_code != 200:
            return page
        next_url = re.search(r'name=next value="([^"]+)"', page.text)
        assert next_url is not None, page.text
        login = browser.post(
            "/login",
            data={
                "username": user,
                "password": password(lab, user),
                "next": _unescape(next_url[1]),
            },
        )
        assert login.status_code == 303
        consent = browser.get(login.headers["location"])
        csrf = re.search(r'name=csrf value="([^"]+)"', consent.text)
        action = re.search(r'form method=post action="([^"]+)"', consent.text)
        assert csrf is not None and action is not None, consent.text
        scopes = re.findall(r'name=consented_scope value="([^"]+)"', consent.text)
        return browser.post(
            _unescape(action[1]),
            data={"csrf": csrf[1], "decision": "allow", "consented_scope": scopes},
        )


def spa(lab: Lab, redirect_uri: str | None = None) -> OAuth2Client:
    client = lab.net.clients[people.SPA]
    return OAuth2Client(
        client["client_id"],
        scope="openid profile photos:read",
        redirect_uri=redirect_uri or client["redirect_uris"][0],
        token_endpoint_auth_method="none",
        code_challenge_method="S256",
    )


def spa_login(lab: Lab) -> dict[str, Any]:
    """A full code + PKCE S256 + OIDC login of the SPA; the callback URL and the verifier."""
    verifier = secrets.token_urlsafe(48)
    with spa(lab) as client:
        url, _ = client.create_authorization_url(
            lab.url + "/authorize", code_verifier=verifier, nonce=secrets.token_urlsafe(12)
        )
    answer = authorize(lab, url)
    assert answer.status_code == 302, answer.text
    return {"callback": answer.headers["location"], "verifier": verifier}


def redeem(lab: Lab, flow: dict[str, Any]) -> httpx.Response:
    code = parse_qs(urlsplit(flow["callback"]).query)["code"][0]
    return httpx.post(
        lab.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": people.SPA,
            "redirect_uri": lab.net.clients[people.SPA]["redirect_uris"][0],
            "code_verifier": flow["verifier"],
        },
        timeout=10,
    )


def extended_redirect(lab: Lab) -> tuple[str, str]:
    registered = lab.net.clients[people.SPA]["redirect_uris"][0]
    evil = registered + ".attacker.test/steal"
    with spa(lab, evil) as client:
        url, _ = client.create_authorization_url(
            lab.url + "/authorize", code_verifier=secrets.token_urlsafe(48), nonce="n-1"
        )
    return evil, url


def test_prefix_extended_redirect_uri_gets_the_code_with_the_weak_default(lab: Lab) -> None:
    evil, url = extended_redirect(lab)
    answer = authorize(lab, url)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(evil + "?") and "code" in parse_qs(urlsplit(location).query)


def test_prefix_extended_redirect_uri_is_refused_by_exact_matching(lab: Lab) -> None:
    lab.defend(check_redirect_uri=policy.check_redirect_uri)
    _, url = extended_redirect(lab)
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 400 and "location" not in answer.headers
    assert answer.json()["error"] == "invalid_request"
    assert spa_login(lab)["callback"].startswith(lab.net.client_url)  # the real one still works


def test_a_code_redeemed_twice_works_with_the_weak_default(lab: Lab) -> None:
    flow = spa_login(lab)
    first, second = redeem(lab, flow), redeem(lab, flow)
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["access_token"] != second.json()["access_token"]


def test_a_code_redeemed_twice_is_refused_and_revokes_the_first_tokens(lab: Lab) -> None:
    lab.defend(code_single_use=policy.code_single_use)
    flow = spa_login(lab)
    first, second = redeem(lab, flow), redeem(lab, flow)
    assert first.status_code == 200
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    rs = lab.net.clients[people.RESOURCE_SERVER]
    seen = httpx.post(
        lab.url + "/introspect",
        auth=(rs["client_id"], rs["client_secret"]),
        data={"token": first.json()["access_token"]},
        timeout=10,
    )
    assert seen.json() == {"active": False}


def photos(lab: Lab, token: str) -> httpx.Response:
    return httpx.get(
        lab.net.api_url + "/photos", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_the_weak_photos_api_takes_an_id_token_as_an_access_token(lab: Lab) -> None:
    tokens = redeem(lab, spa_login(lab)).json()
    answer = photos(lab, tokens["id_token"])
    assert answer.status_code == 200 and answer.json()["owner"] == "alice"


def test_the_sound_photos_api_refuses_an_id_token_and_takes_an_access_token(lab: Lab) -> None:
    lab.defend(validate_access_token=policy.validate_access_token)
    tokens = redeem(lab, spa_login(lab)).json()
    refused = photos(lab, tokens["id_token"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    taken = photos(lab, tokens["access_token"])
    assert taken.status_code == 200 and taken.json()["owner"] == "alice"


def test_a_hook_that_raises_is_a_named_500_not_a_hang(lab: Lab) -> None:
    """The bridge from Authlib's worker thread carries the guard's verdict back."""

    def broken(registered: list[str], redirect_uri: str) -> bool:
        raise ValueError("oops")

    lab.defend(check_redirect_uri=broken)
    _, url = extended_redirect(lab)
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 500 and "check_redirect_uri" in answer.json()["detail"]


def test_the_authorization_server_audits_its_decisions_and_no_secret(lab: Lab) -> None:
    """Every sign-in, authorization and token decision is a row of lab.audit(); a refused
    code reuse is a deny with its error; a mistyped name is not logged; no password, code
    or token is ever in a row."""
    from labapp.engine.grading import run_item

    lab.defend(**policy.SOUND)
    with httpx.Client(base_url=lab.url, timeout=10) as http:
        http.post("/login", data={"username": "alice", "password": "wrong", "next": ""})
        typed = password(lab, "bob")  # bob's password typed into the username box
        http.post("/login", data={"username": typed, "password": "x", "next": ""})
    reuse = next(a for a in LESSON.attacks if a.id == "code-reuse")
    assert run_item(lab, reuse).passed
    rows = [(r["actor"], r["action"], r["decision"], r["reason"]) for r in lab.audit()]
    assert ("alice", "POST /login", "deny", "wrong username or password") in rows
    assert ("unknown user", "POST /login", "deny", "wrong username or password") in rows
    assert ("alice", "POST /authorize", "allow", "code issued") in rows
    assert ("photo-spa", "POST /token", "allow", "authorization_code: tokens issued") in rows
    refused = ("photo-spa (claimed)", "POST /token", "deny", "authorization_code: invalid_grant")
    assert refused in rows
    text = str(lab.audit())
    assert typed not in text and all(u["password"] not in text for u in lab.users)
