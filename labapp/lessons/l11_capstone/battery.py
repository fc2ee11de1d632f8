"""What the capstone's grader replays against the learner's mounted app (first groups).

Rows are grouped by the checklist item they prove; the report ends with one line per item
(holds / does not hold). The API's contract, stated in the notebook: ``/health``, ``/login``
and ``/refresh`` are public; every other route needs a user's bearer token (HS256 with
``kit.signing_key``, issuer ``kit.issuer``, audience ``kit.audience``, an ``exp`` at most 15
minutes out), except ``/partners/events``, which needs a partner's ``X-API-Key``.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import httpx
import jwt

from labapp.engine.grading import Attack, Check, Observed

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
    }
    sent = [
        (what, http.get("/me", headers={"Authorization": f"Bearer {token}"}))
        for what, token in forged.items()
    ]
    return _refused(sent)


def _valid_token(lab: Any, http: httpx.Client) -> Observed:
    r = http.get("/me", headers={"Authorization": f"Bearer {_token(lab)}"})
    return Observed(r.status_code == 200, r.status_code, "a token made as the contract says")


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
            "unsigned, foreign-key, expiry-less, expired, day-long, "
            "wrong-audience, audience-less, wrong-issuer and unknown-user tokens",
            (),
            _forged,
            flag=False,
            fix="One validator: algorithms pinned, key from the kit, "
            "require exp, iat, sub, jti; check audience and issuer; at most 15 minutes.",
        ),
        Check("valid-token", "a token made exactly as the contract says is accepted", _valid_token),
    ),
    "authorize at the server": (
        Attack(
            "added-route",
            "a route someone adds tomorrow, without any dependency",
            (),
            _added_route,
            flag=False,
            fix="Deny by default: the app's own dependency runs "
            "for every route, public ones are the marked exceptions.",
        ),
    ),
}
