"""The lesson 08 authorization server, sound for now, driven over real HTTP on loopback."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from labapp.engine.server import LabServer
from labapp.lessons.l08_oauth import people
from labapp.lessons.l08_oauth.authserver import API_AUDIENCE, AuthServer, create_app
from tests.lessons import l08_policy as policy

CLIENT_URL = "http://127.0.0.1:9"


@dataclass
class AS:
    auth: AuthServer
    url: str

    def client(self, client_id: str) -> Any:
        return self.auth.records.clients[client_id]


@pytest.fixture
def as_() -> Iterator[AS]:
    auth = AuthServer(people.users(), people.clients(CLIENT_URL), decisions=policy.SOUND)
    server = LabServer(create_app(auth))
    server.start()
    auth.issuer = server.url
    try:
        yield AS(auth, server.url)
    finally:
        server.stop()


def spa_client(as_: AS) -> OAuth2Client:
    spa = as_.client(people.SPA)
    return OAuth2Client(
        spa.client_id,
        scope="openid profile photos:read",
        redirect_uri=spa.redirect_uris[0],
        token_endpoint_auth_method="none",
        code_challenge_method="S256",
    )


def log_in(as_: AS, url: str, user: str = "alice") -> tuple[str, list[str]]:
    """Follow /authorize hop by hop as a browser: login form, consent form, redirect."""
    hops: list[str] = []
    with httpx.Client(timeout=5) as browser:
        page = browser.get(url)
        hops.append(f"GET /authorize -> {page.status_code}")
        assert page.status_code == 200 and 'action="/login"' in page.text
        next_url = re.search(r'name=next value="([^"]+)"', page.text)
        assert next_url is not None
        password = as_.auth.records.users[user].password
        login = browser.post(
            as_.url + "/login",
            data={"username": user, "password": password, "next": _unescape(next_url[1])},
        )
        hops.append(f"POST /login -> {login.status_code}")
        assert login.status_code == 303
        consent = browser.get(as_.url + login.headers["location"])
        hops.append(f"GET /authorize -> {consent.status_code}")
        csrf = re.search(r'name=csrf value="([^"]+)"', consent.text)
        action = re.search(r'form method=post action="([^"]+)"', consent.text)
        assert csrf is not None and action is not None
        scopes = re.findall(r'name=consented_scope value="([^"]+)"', consent.text)
        done = browser.post(
            as_.url + _unescape(action[1]),
            data={"csrf": csrf[1], "decision": "allow", "consented_scope": scopes},
        )
        hops.append(f"POST /authorize -> {done.status_code}")
        assert done.status_code == 302, done.text
        return done.headers["location"], hops


def _unescape(text: str) -> str:
    return text.replace("&amp;", "&").replace("&quot;", '"')


def jwks_key(as_: AS, token: str) -> Any:
    keys = jwt.PyJWKSet.from_dict(httpx.get(as_.url + "/jwks").json())
    return keys[jwt.get_unverified_header(token)["kid"]].key


def code_flow(as_: AS, client: OAuth2Client) -> dict[str, Any]:
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        as_.url + "/authorize", code_verifier=verifier, nonce=nonce
    )
    callback, _ = log_in(as_, url)
    token = client.fetch_token(
        as_.url + "/token", authorization_response=callback, code_verifier=verifier, state=state
    )
    return {"token": token, "nonce": nonce, "callback": callback, "verifier": verifier}


def test_code_pkce_oidc_login_of_the_public_client(as_: AS) -> None:
    """The SPA logs alice in with code + PKCE S256 and gets an RFC 9068 token and an ID token."""
    with spa_client(as_) as client:
        flow = code_flow(as_, client)
    query = parse_qs(urlsplit(flow["callback"]).query)
    assert query["iss"] == [as_.url]  # RFC 9207
    token = flow["token"]
    header = jwt.get_unverified_header(token["access_token"])
    assert header["typ"] == "at+jwt"
    claims = jwt.decode(
        token["access_token"],
        jwks_key(as_, token["access_token"]),
        algorithms=["RS256"],
        audience=API_AUDIENCE,
        issuer=as_.url,
    )
    assert claims["sub"] == "alice" and claims["client_id"] == people.SPA
    assert set(claims["scope"].split()) == {"openid", "profile", "photos:read"}
    id_claims = jwt.decode(
        token["id_token"],
        jwks_key(as_, token["id_token"]),
        algorithms=["RS256"],
        audience=people.SPA,
        issuer=as_.url,
    )
    assert id_claims["nonce"] == flow["nonce"] and id_claims["sub"] == "alice"
    me = httpx.get(
        as_.url + "/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert me.status_code == 200 and me.json() == {"sub": "alice", "name": "Alice Martin"}
    discovery = httpx.get(as_.url + "/.well-known/openid-configuration").json()
    assert discovery["issuer"] == as_.url
    assert discovery["code_challenge_methods_supported"] == ["S256"]


def test_refresh_rotates_and_the_old_refresh_token_is_refused(as_: AS) -> None:
    """A refresh gives a new refresh token; the old one no longer works (RFC 9700 §4.14.2)."""
    with spa_client(as_) as client:
        first = code_flow(as_, client)["token"]
        second = client.refresh_token(as_.url + "/token", refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    again = httpx.post(
        as_.url + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": people.SPA,
        },
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_client_credentials_get_only_registered_scopes(as_: AS) -> None:
    """The service client gets a token for itself, filtered to its registered scope."""
    svc = as_.client(people.SERVICE)
    with OAuth2Client(svc.client_id, svc.client_secret, scope="photos:read photos:write") as c:
        token = c.fetch_token(as_.url + "/token", grant_type="client_credentials")
    assert token["scope"] == "photos:read" and "refresh_token" not in token
    claims = jwt.decode(
        token["access_token"],
        jwks_key(as_, token["access_token"]),
        algorithms=["RS256"],
        audience=API_AUDIENCE,
    )
    assert claims["sub"] == people.SERVICE


def test_revoked_token_introspects_as_inactive(as_: AS) -> None:
    """RFC 7009 revocation, then RFC 7662 introspection by the API says active: false."""
    rs = as_.client(people.RESOURCE_SERVER)
    with spa_client(as_) as client:
        token = code_flow(as_, client)["token"]
        with OAuth2Client(rs.client_id, rs.client_secret) as api:
            live = api.introspect_token(as_.url + "/introspect", token=token["access_token"])
            assert live.json()["active"] is True and live.json()["sub"] == "alice"
            revoked = client.revoke_token(as_.url + "/revoke", token=token["access_token"])
            assert revoked.status_code == 200
            dead = api.introspect_token(as_.url + "/introspect", token=token["access_token"])
    assert dead.json() == {"active": False}


def test_reused_code_is_refused_and_revokes_the_first_tokens(as_: AS) -> None:
    """A code redeemed twice: the second is invalid_grant, and the first tokens die too."""
    with spa_client(as_) as client:
        flow = code_flow(as_, client)
    code = parse_qs(urlsplit(flow["callback"]).query)["code"][0]
    again = httpx.post(
        as_.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": people.SPA,
            "redirect_uri": as_.client(people.SPA).redirect_uris[0],
            "code_verifier": flow["verifier"],
        },
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    rs = as_.client(people.RESOURCE_SERVER)
    seen = httpx.post(
        as_.url + "/introspect",
        auth=(rs.client_id, rs.client_secret),
        data={"token": flow["token"]["access_token"]},
    )
    assert seen.json() == {"active": False}


def test_prefix_extended_redirect_uri_is_refused_without_redirect(as_: AS) -> None:
    """A redirect_uri that merely starts with the registered one: 400, and no Location."""
    spa = as_.client(people.SPA)
    evil = spa.redirect_uris[0] + ".attacker.test/steal"
    with OAuth2Client(
        spa.client_id, redirect_uri=evil, scope="openid", code_challenge_method="S256"
    ) as client:
        url, _ = client.create_authorization_url(
            as_.url + "/authorize", code_verifier=secrets.token_urlsafe(48), nonce="n"
        )
    answer = httpx.get(url)
    assert answer.status_code == 400
    assert "location" not in answer.headers
