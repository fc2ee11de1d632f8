"""What the capstone's grader replays against the learner's mounted app (first groups).

Rows are grouped by the checklist item they prove; the report ends with one line per item
(holds / does not hold). The API's contract, stated in the notebook: ``/health``, ``/login``
and ``/refresh`` are public; every other route needs a user's bearer token (HS256 with
``kit.signing_key``, issuer ``kit.issuer``, audience ``kit.audience``, an ``exp`` at most 15
minutes out), except ``/partners/events``, which needs a partner's ``X-API-Key``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.l11_capstone.kit import reset

PUBLIC = {("GET", "/health"), ("POST", "/login"), ("POST", "/refresh")}
PROTECTED = (
    ("GET", "/me"),
    ("GET", "/documents"),
    ("GET", "/documents/1"),
    ("PUT", "/documents/1"),
    ("GET", "/admin/users"),
    ("POST", "/partners/events"),
    ("POST", "/logout"),
)
ADDED = "/internal/export-{}"  # the route "someone forgot", added at grade time
MAX_LIFETIME = 15 * 60
HSTS_YEAR = 31_536_000  # ASVS 5.0 3.4.1: at least a year


def _holder(lab: Any) -> Any:
    return lab.server.app.state.holder


def _token(lab: Any, user: str = "alice", **changes: Any) -> str:
    """A token for ``user`` as the contract says, with ``changes`` (None removes a claim)."""
    kit = _holder(lab).kit
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": kit.issuer,
        "aud": kit.audience,
        "sub": user,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    key = changes.pop("_key", kit.signing_key)
    algorithm = changes.pop("_alg", "HS256")
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode(claims, key, algorithm=algorithm, headers={"typ": "at+jwt"})


MINE = b"the attacker's own key, 32 bytes!"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _with_header(lab: Any, header: dict[str, Any], key: bytes = MINE) -> str:
    """An admin's token signed with a key the token itself points to (not the kit's)."""
    kit = _holder(lab).kit
    now = int(time.time())
    claims = {
        "iss": kit.issuer,
        "aud": kit.audience,
        "sub": "ada",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    # Signed by hand: PyJWT refuses an empty HMAC key, and the /dev/null trick needs one.
    head = {"alg": "HS256", "typ": "at+jwt", **header}
    signing_input = f"{_b64(json.dumps(head).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _refused(responses: list[tuple[str, httpx.Response]]) -> Observed:
    """Got through when any request was answered 2xx (a 5xx is judged by the engine)."""
    through = [what for what, r in responses if r.status_code < 300]
    if through:
        return Observed(True, None, "answered 2xx: " + ", ".join(through[:4]))
    codes = sorted({r.status_code for _, r in responses})
    return Observed(False, None, f"{len(responses)} requests refused ({codes})")


def _no_credentials(lab: Any, http: httpx.Client) -> Observed:
    sent = [(f"{m} {p}", http.request(m, p, json={})) for m, p in PROTECTED]
    return _refused(sent)


def _added_route(lab: Any, http: httpx.Client) -> Observed:
    app = _holder(lab).app
    path = ADDED.format(secrets.token_hex(3))

    def export() -> dict[str, str]:
        return {"everything": "every user's documents"}

    app.add_api_route(path, export, methods=["GET"])
    try:
        return _refused([(f"GET {path}", http.get(path))])
    finally:  # leave the learner's app as it was
        app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", "") != path]
        app.openapi_schema = None


def _forged(lab: Any, http: httpx.Client) -> Observed:
    """Tokens the API must refuse, each on ``GET /me``."""
    now = int(time.time())
    forged = {
        "alg none": jwt.encode({"sub": "ada"}, None, algorithm="none"),
        "another key": _token(lab, "ada", _key=secrets.token_bytes(32)),
        "no exp": _token(lab, exp=None),
        "expired": _token(lab, iat=now - 3600, exp=now - 1800),
        "a day long": _token(lab, exp=now + 86_400),
        "another audience": _token(lab, aud="another-api"),
        "no audience": _token(lab, aud=None),
        "another issuer": _token(lab, iss="https://evil.test"),
        "an unknown user": _token(lab, "mallory"),
        # Lesson 04's header tricks: the key named or carried by the token itself.
        "its own key in jwk": _with_header(lab, {"jwk": {"kty": "oct", "k": _b64(MINE)}}),
        "a jku to fetch keys from": _with_header(lab, {"jku": "https://evil.test/jwks.json"}),
        "a kid path to an empty file": _with_header(lab, {"kid": "../../../../dev/null"}, b""),
        "a kid that is SQL": _with_header(lab, {"kid": "x' UNION SELECT 'k"}, b"k"),
    }
    sent = [
        (what, http.get("/me", headers={"Authorization": f"Bearer {token}"}))
        for what, token in forged.items()
    ]
    return _refused(sent)


def _valid_token(lab: Any, http: httpx.Client) -> Observed:
    r = http.get("/me", headers={"Authorization": f"Bearer {_token(lab)}"})
    return Observed(r.status_code == 200, r.status_code, "a token made as the contract says")


# -- authorize at the server, least privilege ---------------------------------------------


def _db(lab: Any) -> Any:
    return _holder(lab).kit.connect()


def _as(lab: Any, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(lab, user)}"}


def _owner_of(lab: Any, document: int) -> str:
    row = _db(lab).execute("SELECT owner FROM documents WHERE id = ?", (document,)).fetchone()
    return row["owner"] if row else ""


def _bola(lab: Any, http: httpx.Client) -> Observed:
    """alice reads and edits bob's document 3 by its id."""
    read = http.get("/documents/3", headers=_as(lab, "alice"))
    body = {"title": "mine now", "body": "alice wrote this"}
    write = http.put("/documents/3", headers=_as(lab, "alice"), json=body)
    title = _db(lab).execute("SELECT title FROM documents WHERE id = 3").fetchone()["title"]
    if title == "mine now":
        return Observed(True, write.status_code, "alice's edit of bob's document was saved")
    return _refused([("GET /documents/3 as alice", read), ("PUT /documents/3 as alice", write)])


def _list_filter(lab: Any, http: httpx.Client) -> Observed:
    listed = http.get("/documents", headers=_as(lab, "alice"))
    if listed.status_code >= 300:
        return Observed(False, listed.status_code, "alice's list refused")
    owners = {doc.get("owner") for doc in listed.json() if isinstance(doc, dict)}
    others = sorted(owners - {"alice"})
    return Observed(bool(others), 200, f"alice's list holds documents of {others or 'nobody else'}")


def _bfla(lab: Any, http: httpx.Client) -> Observed:
    sent = [
        (f"GET /admin/users as {who}", http.get("/admin/users", headers=_as(lab, who)))
        for who in ("alice", "sam")
    ]
    return _refused(sent)


def _mass_assignment(lab: Any, http: httpx.Client) -> Observed:
    body = {"title": "plan", "body": "text", "owner": "bob", "internal_note": "all good"}
    r = http.put("/documents/1", headers=_as(lab, "alice"), json=body)
    row = _db(lab).execute("SELECT owner, internal_note FROM documents WHERE id = 1").fetchone()
    if row["owner"] != "alice" or row["internal_note"] == "all good":
        return Observed(True, r.status_code, "a field the client may not write was saved")
    return Observed(False, r.status_code, "owner and internal_note unchanged")


def _exposure(lab: Any, http: httpx.Client) -> Observed:
    answers = {
        "GET /me": http.get("/me", headers=_as(lab, "alice")),
        "GET /documents": http.get("/documents", headers=_as(lab, "alice")),
        "GET /documents/1": http.get("/documents/1", headers=_as(lab, "alice")),
    }
    leaked = [
        f"{what}: {name}"
        for what, r in answers.items()
        for name in ("password_hash", "internal_note", "$argon2")
        if name in r.text
    ]
    return Observed(bool(leaked), None, "; ".join(leaked) or "no hash, no staff note")


def _owner_works(lab: Any, http: httpx.Client) -> Observed:
    body = {"title": "alice's plan", "body": "revised"}
    edit = http.put("/documents/1", headers=_as(lab, "alice"), json=body)
    read = http.get("/documents/1", headers=_as(lab, "alice"))
    ok = edit.status_code == 200 and read.status_code == 200 and "revised" in read.text
    return Observed(ok, read.status_code, "alice edits and reads her own document")


def _staff_works(lab: Any, http: httpx.Client) -> Observed:
    sam = http.get("/documents/3", headers=_as(lab, "sam"))
    ada = http.get("/admin/users", headers=_as(lab, "ada"))
    ok = sam.status_code == 200 and ada.status_code == 200
    return Observed(ok, sam.status_code, "sam (support) reads bob's document; ada lists users")


# -- short-lived tokens, revocation and rotation ---------------------------------------------


def _login(lab: Any, http: httpx.Client, user: str = "alice") -> dict[str, Any]:
    password = _holder(lab).secrets[user]
    r = http.post("/login", json={"username": user, "password": password})
    if r.status_code != 200:
        raise RuntimeError(f"{user}'s login failed: {r.status_code} {r.text:.100}")
    return r.json()


def _lifetime(lab: Any, http: httpx.Client) -> Observed:
    claims = jwt.decode(_login(lab, http)["access_token"], options={"verify_signature": False})
    life = claims.get("exp", 10**12) - claims.get("iat", 0)
    return Observed(life > MAX_LIFETIME, None, f"the access token lives {life} s")


def _rotation(lab: Any, http: httpx.Client) -> Observed:
    """A refresh token is spent once; spending it again revokes what it had become."""
    first = _login(lab, http)["refresh_token"]
    renewed = http.post("/refresh", json={"refresh_token": first})
    again = http.post("/refresh", json={"refresh_token": first})
    if again.status_code < 300:
        return Observed(True, again.status_code, "a spent refresh token was accepted again")
    newer = renewed.json().get("refresh_token") if renewed.status_code == 200 else None
    if newer is None:
        return Observed(True, renewed.status_code, "the refresh answer holds no new refresh token")
    after = http.post("/refresh", json={"refresh_token": newer})
    return Observed(
        after.status_code < 300,
        after.status_code,
        "after the reuse, its successor still works (the family lives on)"
        if after.status_code < 300
        else "reuse refused, and the family revoked",
    )


def _logout(lab: Any, http: httpx.Client) -> Observed:
    tokens = _login(lab, http)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    http.post("/logout", headers=auth, json={"refresh_token": tokens["refresh_token"]})
    me = http.get("/me", headers=auth)
    spent = http.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    return _refused([("the access token after logout", me), ("the refresh token after", spent)])


def _refresh_works(lab: Any, http: httpx.Client) -> Observed:
    r = http.post("/refresh", json={"refresh_token": _login(lab, http)["refresh_token"]})
    token = r.json().get("access_token") if r.status_code == 200 else None
    me = http.get("/me", headers={"Authorization": f"Bearer {token}"}) if token else r
    return Observed(me.status_code == 200, me.status_code, "login, refresh, use the new token")


# -- encrypt traffic ----------------------------------------------------------------------------


def _hsts(lab: Any, http: httpx.Client) -> Observed:
    r = http.get("/health")
    value = r.headers.get("strict-transport-security", "")
    found = re.search(r'max-age\s*=\s*"?(\d+)"?', value, re.IGNORECASE)
    ok = found is not None and int(found[1]) >= HSTS_YEAR
    return Observed(ok, r.status_code, f"Strict-Transport-Security: {value or '(none)'}")


# -- partners' API keys ----------------------------------------------------------------------------


def _partner_keys(lab: Any, http: httpx.Client) -> Observed:
    real = _holder(lab).secrets["partner_key"]
    prefix = real.partition("_")[0]
    event = {"kind": "invoice.paid", "reference": "r-1"}
    sent = [
        (
            "the partner's prefix, another secret",
            http.post("/partners/events", headers={"X-API-Key": f"{prefix}_guess"}, json=event),
        ),
        (
            "a user's bearer token",
            http.post("/partners/events", headers=_as(lab, "alice"), json=event),
        ),
        ("the partner's key on a user route", http.get("/documents", headers={"X-API-Key": real})),
    ]
    return _refused(sent)


def _partner_works(lab: Any, http: httpx.Client) -> Observed:
    real = _holder(lab).secrets["partner_key"]
    r = http.post(
        "/partners/events",
        headers={"X-API-Key": real},
        json={"kind": "invoice.paid", "reference": "r-2"},
    )
    return Observed(r.status_code < 300, r.status_code, "the partner posts an event")


# -- log meaningful events, test failure paths -----------------------------------------------

EVENT_KINDS = ("login.failure", "authz.denied", "refresh.reuse", "logout")


def _events(lab: Any, http: httpx.Client) -> Observed:
    kit = _holder(lab).kit
    before = len(kit.events)
    http.post("/login", json={"username": "alice", "password": "not her password"})
    http.get("/documents/3", headers=_as(lab, "alice"))
    tokens = _login(lab, http, "bob")
    http.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    http.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    http.post("/logout", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    seen = {str(event.get("kind")) for event in kit.events[before:]}
    missing = [kind for kind in EVENT_KINDS if kind not in seen]
    return Observed(
        not missing,
        None,
        f"missing {', '.join(missing)}" if missing else "every decision has its event",
        cause="the log does not say what happened" if missing else "",
    )


def _secrets_in_events(lab: Any, http: httpx.Client) -> Observed:
    kit = _holder(lab).kit
    before = len(kit.events)
    near_miss = _holder(lab).secrets["alice"] + "!"
    http.post("/login", json={"username": "alice", "password": near_miss})
    tokens = _login(lab, http, "alice")
    http.get("/documents/3", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    http.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    http.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    text = json.dumps(kit.events[before:])
    found = [
        what
        for what, value in (
            ("a password", near_miss),
            ("a password", _holder(lab).secrets["alice"]),
            ("an access token", tokens["access_token"]),
            ("a refresh token", tokens["refresh_token"]),
        )
        if value in text
    ]
    return Observed(bool(found), None, "events hold " + ", ".join(found) if found else "none")


def _no_secrets_in_events(lab: Any, http: httpx.Client) -> Observed:
    leaked = _secrets_in_events(lab, http)
    return Observed(not leaked.succeeded, None, leaked.detail)


HOSTILE_HEADERS = (
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer " + "a" * 10_000},
    {"Authorization": "Bearer e30.e30.e30"},  # {} header, {} payload
    {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"},  # payload not JSON
    {"Authorization": b"Bearer \xff\xfe"},
    {"Authorization": "Basic YWxpY2U6eA=="},
    {"X-API-Key": "_"},
)


def _malformed(lab: Any, http: httpx.Client) -> Observed:
    sent = [(f"GET /me with {list(h)[0]}", http.get("/me", headers=h)) for h in HOSTILE_HEADERS]
    sent += [
        ("a huge id", http.get("/documents/" + "9" * 40, headers=_as(lab, "alice"))),
        (
            "a body that is not JSON",
            http.post("/login", content=b"{", headers={"Content-Type": "application/json"}),
        ),
        (
            "a lone surrogate",
            http.post(
                "/login",
                content=b'{"username": "\\ud800", "password": "x"}',
                headers={"Content-Type": "application/json"},
            ),
        ),
        ("a number for a name", http.post("/login", json={"username": 1, "password": 2})),
    ]
    through = [what for what, r in sent if not 400 <= r.status_code < 500]
    return Observed(
        not through,
        None,
        "answered outside 4xx: " + ", ".join(through)
        if through
        else f"{len(sent)} malformed requests, each a 4xx",
    )


def _schemathesis(lab: Any, http: httpx.Client) -> Observed:
    from labapp.lessons.l11_capstone.fuzz import server_errors  # schemathesis loads slowly

    found = server_errors(_holder(lab).app, lab.url, _as(lab, "alice"), str(lab.ca_file))
    if found:
        return Observed(False, None, f"{len(found)} server errors: " + "; ".join(found[:3]))
    return Observed(True, None, "no 5xx from valid and invalid requests to every operation")


SPOOFED = {
    "X-User-Role": "admin",
    "X-Forwarded-For": "127.0.0.1",
    "X-Real-IP": "127.0.0.1",
    "X-Internal": "true",
    "X-Authenticated-User": "ada",
}


def _spoofed(lab: Any, http: httpx.Client) -> Observed:
    sent = [
        (f"{method} {path} with {', '.join(SPOOFED)}", http.request(method, path, headers=SPOOFED))
        for method, path in (("GET", "/admin/users"), ("GET", "/documents"), ("GET", "/me"))
    ]
    return _refused(sent)


def _enumeration(lab: Any, http: httpx.Client) -> Observed:
    unknown = http.post("/login", json={"username": "zed", "password": "a guess"})
    known = http.post("/login", json={"username": "bob", "password": "a guess"})
    same = (unknown.status_code, unknown.text) == (known.status_code, known.text)
    if unknown.status_code < 300 or known.status_code < 300:
        return Observed(True, None, "a guessed password logged in")
    detail = (
        "the same answer"
        if same
        else (
            f"unknown user {unknown.status_code} {unknown.text[:40]!r}, known user "
            f"{known.status_code} {known.text[:40]!r}"
        )
    )
    return Observed(not same, None, detail)


def _race(lab: Any, http: httpx.Client) -> Observed:
    """Eight spends of one refresh token at once: one winner at most, and the reuse seen."""
    token = _login(lab, http, "bob")["refresh_token"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(lambda _: http.post("/refresh", json={"refresh_token": token}), range(8))
        )
    winners = [r for r in answers if r.status_code == 200]
    if len(winners) > 1:
        return Observed(True, 200, f"{len(winners)} of 8 spends of one token won")
    if winners:
        newer = winners[0].json().get("refresh_token", "")
        after = http.post("/refresh", json={"refresh_token": newer})
        if after.status_code < 300:
            return Observed(
                True,
                after.status_code,
                "one winner, but the reuse went unseen: its new refresh token still works",
            )
    return Observed(False, None, f"{len(winners)} winner, the family revoked")


def _fresh(item: Attack | Check) -> Attack | Check:
    """The same row, run on freshly seeded data (documents back, every token forgotten)."""
    run = item.run

    def fresh_run(lab: Any, http: httpx.Client) -> Observed:
        reset(_holder(lab).kit.db_path)
        return run(lab, http)

    return dataclasses.replace(item, run=fresh_run)


ITEMS: dict[str, tuple[Attack | Check, ...]] = {
    "validate every credential": (
        Attack(
            "no-credentials",
            "every protected route without credentials",
            (),
            _no_credentials,
            flag=False,
            fix="An app-level dependency that identifies "
            "every caller; mark the public routes, not the private ones.",
        ),
        Attack(
            "forged-tokens",
            "unsigned, foreign-key, expiry-less, expired, day-long, wrong-audience, "
            "audience-less, wrong-issuer and unknown-user tokens, and lesson 04's header tricks "
            "(a key in jwk, a jku, a kid path, a kid that is SQL)",
            (),
            _forged,
            flag=False,
            fix="One validator: algorithms pinned, key from the kit, "
            "require exp, iat, sub, jti; check audience and issuer; at most 15 minutes.",
        ),
        Attack(
            "partner-keys",
            "a guessed key with the partner's prefix, a bearer token on the "
            "partner route, the partner's key on a user route",
            (),
            _partner_keys,
            flag=False,
            fix="Look the key up by prefix, compare its SHA-256 with "
            "hmac.compare_digest, and accept keys on the partner route only.",
        ),
        Attack(
            "spoofed-headers",
            "headers a client writes: a role, a loopback address, an internal flag, a user",
            (),
            _spoofed,
            flag=False,
            fix="Identity comes from a verified credential only, never from a header the "
            "client can set.",
        ),
        Attack(
            "user-enumeration",
            "a wrong password for an unknown user and for bob",
            (),
            _enumeration,
            flag=False,
            fix="One answer for every failed login (and the same argon2 work: a dummy hash).",
            expected="the same answer",
        ),
        Check("valid-token", "a token made exactly as the contract says is accepted", _valid_token),
        Check("partner-works", "the partner posts an event with its key", _partner_works),
    ),
    "keep tokens short-lived": (
        Attack(
            "token-lifetime",
            "the access token a login hands out",
            (),
            _lifetime,
            flag=False,
            fix="exp = iat + 15 minutes at most.",
            expected="≤ 900 s",
        ),
    ),
    "authorize at the server": (
        Attack(
            "added-route",
            "a path operation someone adds tomorrow, with no dependency of its own",
            (),
            _added_route,
            flag=False,
            fix="Deny by default: the app's own dependency runs "
            "for every route, public ones are the marked exceptions.",
        ),
        Attack(
            "bola",
            "alice reads and edits bob's document by its id",
            (),
            _bola,
            flag=False,
            fix="The owner in the query: WHERE id = ? AND owner = ?.",
        ),
        Attack(
            "list-filter",
            "alice's document list",
            (),
            _list_filter,
            flag=False,
            fix="Filter the list by owner in the query, unless the role reads any.",
        ),
        Attack(
            "bfla",
            "alice (customer) and sam (support) list every user",
            (),
            _bfla,
            flag=False,
            fix="A scope per route (Security(..., scopes=[...])), checked "
            "against the caller's role.",
        ),
        Check("owner-works", "alice edits and reads her own document", _owner_works),
        Check("staff-works", "sam reads any document; ada lists the users", _staff_works),
    ),
    "least privilege": (
        Attack(
            "mass-assignment",
            "alice's edit also sends owner and internal_note",
            (),
            _mass_assignment,
            flag=False,
            fix="An input model with "
            "model_config = ConfigDict(extra='forbid') and only title and body.",
        ),
        Attack(
            "data-exposure",
            "what alice's answers carry",
            (),
            _exposure,
            flag=False,
            fix="A response_model per route: no password_hash, no internal_note.",
        ),
    ),
    "encrypt traffic": (
        Check(
            "hsts",
            "every answer tells browsers to use HTTPS only, for a year or more (ASVS 5.0 3.4.1)",
            _hsts,
            hint="A middleware that sets Strict-Transport-Security: max-age=31536000.",
        ),
    ),
    "log meaningful events": (
        Check(
            "security-events",
            "a failed login, a denied read, a refresh reuse and a "
            "logout each write their event (kit.audit)",
            _events,
            hint="Call kit.audit(kind, who=..., ...) at each decision, with lesson 10's kinds.",
        ),
        Check(
            "secrets-in-events",
            "no password or token in the events of a login, a denial and a refresh reuse",
            _no_secrets_in_events,
            hint="Log who and why, never the password or the token (a token's jti is enough).",
        ),
    ),
    "test failure paths": (
        Check(
            "schemathesis",
            "schemathesis: valid and invalid requests to every operation of your OpenAPI",
            _schemathesis,
            hint="Each finding is a route that crashes on input its own document allows or "
            "refuses: declare types and limits (Path, Field), catch what a library raises.",
        ),
        Check(
            "malformed-input",
            "malformed tokens, headers and bodies each get a 4xx",
            _malformed,
            hint="Catch PyJWT's PyJWTError (and your own arithmetic on exp and iat), declare "
            "bodies as models: FastAPI answers 422 for what does not fit.",
        ),
    ),
    "plan revocation and rotation": (
        Attack(
            "refresh-rotation",
            "a refresh token spent twice, then its successor",
            (),
            _rotation,
            flag=False,
            fix="Single-use refresh tokens in families: a reuse "
            "revokes the family (RFC 9700 §4.14.2).",
        ),
        Attack(
            "after-logout",
            "the access and refresh tokens after a logout",
            (),
            _logout,
            flag=False,
            fix="Logout revokes the access token's jti and the refresh family.",
        ),
        Attack(
            "refresh-race",
            "eight spends of one refresh token at once",
            (),
            _race,
            flag=False,
            fix="Spend the token in one transaction (BEGIN IMMEDIATE, or UPDATE ... WHERE used = "
            "0 and check the row count); a reuse revokes the family.",
            expected="one winner at most, the reuse seen",
        ),
        Check("refresh-works", "login, refresh, and the new access token works", _refresh_works),
    ),
}
ITEMS = {item: tuple(_fresh(row) for row in rows) for item, rows in ITEMS.items()}
ROWS = [row for rows in ITEMS.values() for row in rows]
ATTACKS = tuple(row for row in ROWS if isinstance(row, Attack))
CHECKS = tuple(row for row in ROWS if isinstance(row, Check))
BY_ITEM = {item: tuple(row.id for row in rows) for item, rows in ITEMS.items()}
