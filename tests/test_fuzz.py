"""No lab answers hostile input with a 5xx: schemathesis against every lab's OpenAPI, and a
hand-made set of the inputs it does not generate (lone surrogates, huge and deep JSON...).

Each lab is fuzzed with its weak defaults, anonymously and signed in, and with the solution
notebook's defense, signed in. ``make test`` runs 20 examples per route, the same every run
(LABAPP_FUZZ_EXAMPLES); ``make fuzz`` runs 500, new ones each time. A 5xx is reported with
the request that caused it; none is allowed (the only 5xx a lab may give is a *learner's*
hook failing, and no learner code runs here).

A lab is all the servers a learner reaches: ``lab.url``, and for lesson 08 the photos API
and the PrintShop client app of ``lab.net`` too. Lesson 08's authorization server signs
users in with an HTML form, not a JSON /login: it is signed in to by a real browser flow
(form login, consent, code + PKCE S256), and its routes read OAuth parameters by hand, so
its OpenAPI is given the parameters RFC 6749/7636/7009/7662 and OIDC Core define.
"""

from __future__ import annotations

import ast
import base64
import copy
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import nbformat
import pytest
import requests
import schemathesis
from authlib.integrations.httpx_client import OAuth2Client
from fastapi import FastAPI, Request
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.core import NotSet

import labapp
from labapp import Lab, start_lab
from labapp.engine.grading import grader_client
from labapp.lessons import all_lessons
from labapp.lessons.l08_oauth import people
from labapp.tools import authoring
from tests.conftest import ROOT

EXAMPLES = int(os.environ.get("LABAPP_FUZZ_EXAMPLES", "20"))
# The bounded run of `make test` draws the same examples every time (a CI run never flakes);
# `make fuzz` sets LABAPP_FUZZ_RANDOM=1 to explore new ones on each run.
DERANDOMIZE = os.environ.get("LABAPP_FUZZ_RANDOM") != "1"
LESSONS = [lesson.id for lesson in all_lessons()]
MODES = ["weak-anonymous", "weak-signed-in", "solution-signed-in"]


def signed_in(lab: Lab) -> dict[str, str]:
    """Credentials of the lab's most privileged listed user, as its legitimate clients send."""
    users = sorted(lab.users, key=lambda u: u.get("role") != "admin")
    if not users:
        return {}
    user = users[0]
    if "token" in user:
        return {"Authorization": f"Bearer {user['token']}"}
    if "api_key" in user:
        return {"X-API-Key": user["api_key"]}
    body = {"username": user["username"], "password": user["password"]}
    answer = lab.client.post("/login", json=body).json()
    token = answer.get("access_token") or answer.get("token")
    return {"Authorization": f"Bearer {token}"}


def _notebook_imports(path: Path) -> dict[str, Any]:
    """What the notebook's import statements bind: a hook's cell may use a module that an
    earlier cell imported (lesson 08's ``check_state`` uses ``secrets``), as in the kernel."""
    names: dict[str, Any] = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # a cell magic: no imports of ours there
            continue
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                code = compile(ast.Module([node], type_ignores=[]), path.name, "exec")
                exec(code, names)  # noqa: S102 - the course's own solution notebook
    names.pop("__builtins__", None)
    return names


def defended(lab: Lab) -> None:
    """Plug in every hook as the lesson's solution notebook writes it."""
    path = ROOT / "solutions" / lab.lesson.notebook
    public = {name: getattr(labapp, name) for name in labapp.__all__}
    given_names = _notebook_imports(path) | public | {"lab": lab}
    hooks = authoring.solution_hooks(path, [h.name for h in lab.lesson.hooks], **given_names)
    missing = {h.name for h in lab.lesson.hooks} - set(hooks)
    assert not missing, f"the solution notebook defines no {sorted(missing)}"
    if hooks:
        lab.defend(**hooks)
    if "mount" in getattr(lab.net, "exports", ()):  # the capstone: a whole app, mounted
        models = authoring.solution_namespace(path, "public", **given_names)
        app_cell = authoring.solution_namespace(path, "build_app", **{**given_names, **models})
        lab.mount(app_cell["build_app"])


# -- the servers of a lab ------------------------------------------------------------------


@dataclass
class Target:
    """One server of a lab as the fuzzers see it: its address, its OpenAPI, and what its
    legitimate clients send (``by_path``: other credentials on some routes)."""

    name: str
    url: str
    spec: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    by_path: dict[str, dict[str, str]] = field(default_factory=dict)
    verify: str | bool = True  # for schemathesis (requests)
    options: dict[str, Any] = field(default_factory=dict)  # for httpx

    def headers_for(self, path: str) -> dict[str, str]:
        return self.by_path.get(path, self.headers)


def targets(lab: Lab, signed: bool) -> list[Target]:
    """Every server of the lab a learner reaches, signed in (as its users are) or not."""
    special = NETWORKS.get(lab.lesson.id)
    if special is not None:
        return special(lab, signed)
    return [
        Target(
            "lab",
            lab.url,
            copy.deepcopy(lab.server.app.openapi()),
            signed_in(lab) if signed else {},
            verify=str(lab.ca_file) if lab.ca_file else True,  # schemathesis calls with requests
            options=lab.client_options(),
        )
    ]


# -- lesson 08: an authorization server, its photos API and its client app -----------------


def _text(*known: str | None) -> dict[str, Any]:
    """A string: one the lab knows (a client id, a registered redirect URI...), if given.

    Schema-valid requests then carry what real clients send and get past the client lookup
    to the hooks; schema-breaking ones (``GenerationMode.NEGATIVE``) carry anything else.
    (An ``anyOf`` of the known values and any string would be simplified to any string.)
    """
    values = sorted({value for value in known if value})
    return {"type": "string", "enum": values} if values else {"type": "string"}


def _overlay(
    spec: dict[str, Any],
    path: str,
    method: str,
    query: dict[str, dict[str, Any]] | None = None,
    form: dict[str, dict[str, Any]] | None = None,
    required: tuple[str, ...] = (),
) -> None:
    """Declare the query parameters and form fields a route reads by hand (``required``:
    the ones the RFC requires, which schema-valid requests always carry)."""
    assert method in spec["paths"].get(path, {}), f"no {method.upper()} {path} in the app"
    operation = spec["paths"][path][method]
    parameters = operation.setdefault("parameters", [])
    declared = {(p["name"], p["in"]): p for p in parameters}
    for name, schema in (query or {}).items():
        where = "path" if f"{{{name}}}" in path else "query"
        if (name, where) in declared:
            declared[(name, where)]["schema"] = schema
        else:
            needed = name in required
            parameters.append({"name": name, "in": where, "required": needed, "schema": schema})
    if form:
        schema = {
            "type": "object",
            "properties": form,
            "required": [name for name in required if name in form],
        }
        content = {"application/x-www-form-urlencoded": {"schema": schema}}
        operation["requestBody"] = {"required": True, "content": content}


@dataclass
class _OAuthSession:
    """What alice's browser and clients hold once signed in (empty for an outsider)."""

    as_cookie: str = ""
    shop_cookie: str = ""
    access_token: str = ""  # photo-spa's, every scope it is registered for
    csrf: str = ""  # of alice's consent forms
    spare: dict[str, str] = field(default_factory=dict)  # another flow's code, verifier, tokens


def _spa_flow(lab: Lab, browser: Any, client: dict[str, Any]) -> dict[str, str]:
    """The public client's code + PKCE S256 + OIDC flow, alice consenting: its tokens,
    and the code and verifier it redeemed."""
    callback = client["redirect_uris"][0]
    verifier = secrets.token_urlsafe(48)
    with OAuth2Client(
        client["client_id"],
        scope=client["scope"],
        redirect_uri=callback,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",  # noqa: S106 - a public client: no secret
    ) as spa:
        url, _ = spa.create_authorization_url(
            lab.net.issuer + "/authorize", code_verifier=verifier, nonce=secrets.token_urlsafe(12)
        )
        browser.get(url, stop_before=callback)
        assert browser.url and browser.url.startswith(callback + "?"), browser.flow()
        tokens = spa.fetch_token(
            lab.net.issuer + "/token", authorization_response=browser.url, code_verifier=verifier
        )
    code = parse_qs(urlsplit(browser.url).query)["code"][0]
    return {**{k: str(v) for k, v in tokens.items()}, "code": code, "code_verifier": verifier}


def _oauth_sign_in(lab: Lab) -> _OAuthSession:
    """alice signs in at PrintShop (its own code + PKCE + state + nonce flow, through the
    AS's login form and consent), then in the public client: the cookies and tokens."""
    net = lab.net
    browser = net.browser("alice")  # closed when the lab stops
    prints = browser.get(net.client_url + "/prints")
    assert prints.status_code == 200, f"alice cannot sign in at PrintShop:\n{browser.flow()}"
    spa = net.clients[people.SPA]
    tokens, spare = _spa_flow(lab, browser, spa), _spa_flow(lab, browser, spa)
    page = browser.http.get(net.issuer + "/authorize", params=_spa_request(spa))
    csrf = _field("csrf", page.text)
    assert csrf, f"no consent form for a signed-in alice: {page.status_code} {page.text[:200]}"
    return _OAuthSession(
        as_cookie=str(browser.http.cookies.get("as_session", domain="127.0.0.1") or ""),
        shop_cookie=str(browser.http.cookies.get("shop_session", domain="127.0.0.1") or ""),
        access_token=tokens["access_token"],
        csrf=csrf,
        spare=spare,
    )


def _spa_request(client: dict[str, Any]) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": client["redirect_uris"][0],
        "scope": client["scope"],
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": secrets.token_urlsafe(32),
        "code_challenge_method": "S256",
    }


def _field(name: str, page: str) -> str:
    start = page.find(f'name={name} value="')
    if start < 0:
        return ""
    start += len(f'name={name} value="')
    return page[start : page.index('"', start)]


def _oauth_specs(lab: Lab, me: _OAuthSession) -> dict[str, dict[str, Any]]:
    """The three apps' OpenAPI, with the OAuth parameters their routes read by hand (RFC 6749
    §4.1, §4.4, §6; RFC 7636 §4; RFC 7009 §2.1; RFC 7662 §2.1; OIDC Core §3.1.2.1): drawn
    often from what the lab knows (its clients, their redirect URIs, scopes, alice's tokens
    once she is signed in), so that requests get past the client lookup to the hooks."""
    net, clients = lab.net, lab.net.clients.values()
    scopes = lab.server.app.state.auth.discovery()["scopes_supported"]
    scope = _text(" ".join(scopes), *scopes, *(c["scope"] for c in clients))
    client_id = _text(*(c["client_id"] for c in clients))
    uris = [uri for c in clients for uri in c["redirect_uris"]]
    redirect_uri = _text(*uris, *(uri + "/../../next?url=http://attacker.test/" for uri in uris))
    spare = me.spare
    secret = _text(*(c["client_secret"] for c in clients if me.as_cookie))
    authorization = {
        "response_type": _text("code", "token", "id_token", "code id_token", "none"),
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": _text(),
        "nonce": _text(),
        "code_challenge": _text(secrets.token_urlsafe(32)),
        "code_challenge_method": _text("S256", "plain"),
        "prompt": _text("none", "login", "consent", "select_account"),
        "response_mode": _text("query", "fragment", "form_post"),
        "max_age": _text("0", "60"),
    }
    tokens = _text(spare.get("access_token"), spare.get("refresh_token"), spare.get("id_token"))
    authserver = copy.deepcopy(lab.server.app.openapi())  # not the app's own, cached
    asked = ("response_type", "client_id", "redirect_uri")  # RFC 6749 §4.1.1; §3.1.2.3 here
    _overlay(authserver, "/authorize", "get", query=authorization, required=asked)
    consent = {
        "csrf": _text(me.csrf),
        "decision": _text("allow", "deny"),
        "consented_scope": {"type": "array", "items": scope},
    }
    answered = (*asked, "csrf", "decision")
    _overlay(authserver, "/authorize", "post", authorization, consent, required=answered)
    password = _text(*(u["password"] for u in lab.users if me.as_cookie))
    login = {"username": _text("alice", "bob"), "password": password, "next": _text("/authorize?")}
    _overlay(authserver, "/login", "post", form=login, required=("username", "password"))
    grant = _text("authorization_code", "refresh_token", "client_credentials", "password")
    token_request = {
        "grant_type": grant,
        "code": _text(spare.get("code")),
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "client_secret": secret,
        "code_verifier": _text(spare.get("code_verifier")),
        "refresh_token": _text(spare.get("refresh_token")),
        "scope": scope,
        "username": _text("alice", "bob"),
        "password": password,
    }
    _overlay(authserver, "/token", "post", form=token_request, required=("grant_type",))
    token_hint = _text("access_token", "refresh_token")
    about = {"token": tokens, "token_type_hint": token_hint, "client_id": client_id}
    about |= {"client_secret": secret}
    _overlay(authserver, "/revoke", "post", form=about, required=("token",))  # RFC 7009 §2.1
    _overlay(authserver, "/introspect", "post", form=about, required=("token",))  # 7662 §2.1

    shop = copy.deepcopy(net.shop.openapi())
    share = lab.client.post(net.client_url + "/share", data={"url": "/prints"}).json()["link"]
    _overlay(shop, "/s/{slug}", "get", query={"slug": _text(share.rsplit("/", 1)[-1])})
    callback = {
        "code": _text(spare.get("code")),
        "state": _text(),
        "iss": _text(net.issuer),
        "error": _text("access_denied"),
        "error_description": _text(),
    }
    _overlay(shop, "/shop/callback", "get", query=callback)
    _overlay(shop, "/share", "post", form={"url": _text("/prints", "http://attacker.test/")})
    session = {
        "access_token": _text(spare.get("access_token"), spare.get("id_token")),
        "id_token": _text(spare.get("id_token"), spare.get("access_token")),
        "sub": _text("alice", "bob"),
    }
    _overlay(shop, "/spa/session", "post", form=session)
    # Signing out ends alice's shop session: fuzzed last, after every route that needs it.
    shop["paths"]["/logout"] = shop["paths"].pop("/logout")
    photos = copy.deepcopy(net.photos.app.openapi())
    return {"authserver": authserver, "photos": photos, "shop": shop}


def _oauth_targets(lab: Lab, signed: bool) -> list[Target]:
    """The authorization server (alice's session cookie at its pages, her access token at
    /userinfo), the photos API (her access token) and PrintShop (her shop session cookie)."""
    net = lab.net
    me = _oauth_sign_in(lab) if signed else _OAuthSession()
    specs = _oauth_specs(lab, me)
    as_headers, api_headers, shop_headers = {}, {}, {}
    by_path: dict[str, dict[str, str]] = {}
    if signed:
        bearer = {"Authorization": f"Bearer {me.access_token}"}
        as_headers = {"Cookie": f"as_session={me.as_cookie}"}
        by_path = {"/userinfo": bearer}
        # The endpoints a client calls: the public client authenticates in the form, and
        # the resource server (the photos API) with its secret at /introspect.
        rs = net.clients[people.RESOURCE_SERVER]
        pair = f"{rs['client_id']}:{rs['client_secret']}".encode()
        basic = "Basic " + base64.b64encode(pair).decode()
        by_path |= {"/token": {}, "/revoke": {}, "/introspect": {"Authorization": basic}}
        api_headers = bearer
        shop_headers = {"Cookie": f"shop_session={me.shop_cookie}"}
    # Access tokens live 5 minutes, and a `make fuzz` run (500 examples a route) takes minutes:
    # the servers that need alice's tokens first, the AS (whose session does not expire) last.
    return [
        Target("photos API", net.api_url, specs["photos"], api_headers),
        Target("PrintShop", net.client_url, specs["shop"], shop_headers),
        Target("authorization server", lab.url, specs["authserver"], as_headers, by_path),
    ]


def _capstone_targets(lab: Lab, signed: bool) -> list[Target]:
    """Lesson 11 serves the app the learner mounted (or the baseline): fuzz its own OpenAPI."""
    app = lab.server.app.state.holder.app
    app.openapi_schema = None
    return [
        Target(
            "lab",
            lab.url,
            copy.deepcopy(app.openapi()),
            signed_in(lab) if signed else {},
            verify=str(lab.ca_file),
            options=lab.client_options(),
        )
    ]


NETWORKS: dict[str, Callable[[Lab, bool], list[Target]]] = {
    "08-oauth": _oauth_targets,
    "11-capstone": _capstone_targets,
}


# -- schemathesis ----------------------------------------------------------------------------


def _described(case: Any) -> str:
    sent = [f"query {case.query!r:.300}"] if case.query else []
    sent += [] if isinstance(case.body, NotSet) else [f"body {case.body!r:.300}"]
    return f"{case.method} {case.formatted_path} ({'; '.join(sent) or 'no parameters'})"


def _server_errors(target: Target, examples: int = EXAMPLES) -> list[str]:
    schema = schemathesis.openapi.from_dict(target.spec)
    found: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=DERANDOMIZE,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            headers = target.headers_for(case.path)
            try:
                response = case.call(
                    base_url=target.url, headers=headers, verify=target.verify, timeout=10
                )
            except requests.TooManyRedirects:  # a route that sends the browser to itself
                found.append(f"[{target.name}] {_described(case)} -> a redirect loop")
                return
            if response.status_code >= 500:
                final = response.request.url  # schemathesis follows a same-host redirect
                moved = unquote(urlsplit(final).path) != case.formatted_path
                hop = f", redirected to {final:.200}" if moved else ""
                found.append(
                    f"[{target.name}] {_described(case)}{hop} -> "
                    f"{response.status_code} {response.text[:160]!r}"
                )

        call()
    return found


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lesson_id", LESSONS)
def test_schemathesis_finds_no_server_error(lesson_id: str, mode: str) -> None:
    """Schema-valid and schema-breaking requests to every route: a 4xx at worst, never a 5xx."""
    with start_lab(lesson_id) as lab:
        if mode.startswith("solution"):
            defended(lab)
        errors = []
        for target in targets(lab, signed=mode.endswith("signed-in")):
            errors += _server_errors(target)
    assert errors == [], "\n".join(errors[:10])


# -- what schemathesis does not generate -------------------------------------------------

HUGE_INT = "9" * 40
SURROGATE = '"\\ud800"'  # a lone surrogate, JSON-escaped: valid JSON, not valid text
HOSTILE_BODIES: dict[str, bytes] = {
    "a lone surrogate": f'{{"username": {SURROGATE}, "password": {SURROGATE}}}'.encode(),
    "an integer beyond 64 bits": f'{{"username": {HUGE_INT}, "id": {HUGE_INT}}}'.encode(),
    "duplicate keys": b'{"username": "alice", "username": {"$ne": 1}, "password": []}',
    "deeply nested": b"[" * 5000 + b"]" * 5000,
    "a huge body": json.dumps({"username": "a" * 2_000_000, "password": "b"}).encode(),
    "not UTF-8": b'{"username": "\xff\xfe", "password": "\xc3"}',
    "not JSON": b"username=alice&password=x",
    "a bare number": b"1e999999",
}
# The same, as HTML forms and OAuth clients post them (lesson 08 reads forms by hand).
FORM_FIELDS = (
    *("username", "password", "next", "csrf", "decision", "consented_scope"),  # the AS's pages
    *("grant_type", "code", "redirect_uri", "client_id", "client_secret", "code_verifier"),
    *("refresh_token", "scope", "token", "token_type_hint"),  # /token, /revoke, /introspect
    *("url", "access_token", "id_token", "sub"),  # PrintShop's /share and /spa/session
)
HOSTILE_FORMS: dict[str, bytes] = {
    "a lone surrogate": "&".join(f"{f}=%ED%A0%80" for f in FORM_FIELDS).encode(),
    "not UTF-8": b"&".join(f.encode() + b"=\xff\xfe\xc3" for f in FORM_FIELDS),
    "a NUL": "&".join(f"{f}=%00" for f in FORM_FIELDS).encode(),
    "every field twice": "&".join(f"{f}=a&{f}=b" for f in FORM_FIELDS).encode(),
    "an integer beyond 64 bits": "&".join(f"{f}={HUGE_INT}" for f in FORM_FIELDS).encode(),
    "fields without values": "&".join(FORM_FIELDS).encode(),
    "too many fields": "&".join(f"f{i}=1" for i in range(5000)).encode(),
    "a huge value": b"username=" + b"a" * 2_000_000 + b"&password=b",
}
HOSTILE_SEGMENTS = [
    HUGE_INT,
    "-" + HUGE_INT,
    "%ED%A0%80",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "1e9999",
]


def _fill(path: str, value: str) -> str:
    while "{" in path:
        start = path.index("{")
        path = path[:start] + value + path[path.index("}", start) + 1 :]
    return path


def _hostile_requests(spec: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, route, URL, httpx options) of every hostile request to the app of ``spec``."""
    requests = []
    json_type = {"Content-Type": "application/json"}
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    for path, methods in spec["paths"].items():
        for method in methods:
            method = method.upper()
            segments = HOSTILE_SEGMENTS if "{" in path else ["x"]
            for segment in segments:
                url = _fill(path, segment)
                # A surrogate's bytes, percent-encoded: not valid UTF-8 once decoded.
                query = f"?q=%ED%A0%80&limit={HUGE_INT}&id=-1e999"
                requests.append((method, path, url + query, {}))
            if method in ("POST", "PATCH", "PUT", "DELETE"):
                url = _fill(path, "1")
                for body in HOSTILE_BODIES.values():
                    requests.append((method, path, url, {"content": body, "headers": json_type}))
                for body in HOSTILE_FORMS.values():
                    requests.append((method, path, url, {"content": body, "headers": form_type}))
    return requests


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lesson_id", LESSONS)
def test_hand_made_hostile_input_gets_no_server_error(lesson_id: str, mode: str) -> None:
    """Lone surrogates, integers beyond 64 bits, duplicate keys, deep and huge JSON, bytes
    that are not UTF-8, in paths, queries, JSON bodies and forms: a 4xx at worst."""
    errors = []
    with start_lab(lesson_id) as lab:
        if mode.startswith("solution"):
            defended(lab)
        for target in targets(lab, signed=mode.endswith("signed-in")):
            with grader_client(target.url, **target.options) as http:
                for method, path, url, options in _hostile_requests(target.spec):
                    headers = {**target.headers_for(path), **options.pop("headers", {})}
                    try:
                        response = http.request(method, url, headers=headers, **options)
                    except httpx.HTTPError as exc:  # a refused request is not a crash
                        errors.append(f"[{target.name}] {method} {url}: transport error {exc!r}")
                        continue
                    if response.status_code >= 500:
                        errors.append(
                            f"[{target.name}] {method} {url} -> {response.status_code} "
                            f"{response.text[:160]!r} (body {options.get('content', b'')!r:.80})"
                        )
    assert errors == [], "\n".join(errors[:10])


# -- the fuzzers can fail ------------------------------------------------------------------


def _fragile_app(state: Any) -> Any:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        if item_id >= 2**31:  # the kind of limit a database column has
            raise ValueError("this id cannot be stored")
        return {"id": item_id}

    @app.post("/notes")
    async def note(request: Request) -> dict[str, int]:
        body = await request.json()  # read by hand: no model to refuse a lone surrogate
        return {"bytes": len(str(body["text"]).encode())}

    return app


def _fragile_lab() -> Lab:
    from labapp.engine.lab import Lab as EngineLab
    from labapp.engine.spec import Lesson

    lesson = Lesson("98-fragile", "a fragile app", "98-x.ipynb", 1, _fragile_app, lambda s: None)
    return EngineLab(lesson)


def test_schemathesis_reports_a_route_that_crashes() -> None:
    """The harness is not blind: a route that divides by zero is caught with its request."""
    with _fragile_lab() as lab:
        errors = _server_errors(targets(lab, signed=False)[0], examples=50)
    assert any(error.startswith("[lab] GET /items/") and "-> 500" in error for error in errors)


def test_the_hand_made_inputs_catch_a_route_that_trusts_text_to_encode() -> None:
    """A lone surrogate in a JSON string crashes an app that encodes it: caught."""
    with _fragile_lab() as lab, grader_client(lab.url) as http:
        headers = {"Content-Type": "application/json"}
        answer = http.post(
            "/notes",
            content=HOSTILE_BODIES["a lone surrogate"].replace(b"username", b"text"),
            headers=headers,
        )
    assert answer.status_code == 500


def test_lesson_08_fuzzers_are_signed_in_at_every_server() -> None:
    """The signed-in modes are not anonymous in disguise: alice's cookies and token open the
    authorization server's consent page and /userinfo, the photos API and PrintShop."""
    with start_lab("08-oauth") as lab:
        photos, shop, authserver = targets(lab, signed=True)
        spa = lab.net.clients[people.SPA]
        with grader_client(lab.url) as http:
            page = http.get(
                "/authorize", params=_spa_request(spa), headers=authserver.headers_for("/authorize")
            )
            assert page.status_code == 200 and _field("csrf", page.text), page.text[:200]
            me = http.get("/userinfo", headers=authserver.headers_for("/userinfo"))
            assert me.status_code == 200 and me.json()["sub"] == "alice"
            album = http.get(photos.url + "/photos", headers=photos.headers_for("/photos"))
            assert album.status_code == 200 and album.json()["owner"] == "alice"
            prints = http.get(shop.url + "/prints", headers=shop.headers_for("/prints"))
            assert prints.status_code == 200 and prints.json()["shop_user"] == "alice"
