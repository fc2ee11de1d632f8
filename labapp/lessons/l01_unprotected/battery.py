"""Lesson 01's battery: the attacks the grader replays and the checks real users need.

Attacks that sweep many routes judge the *gate*: any answer but 401 or 403 means the gate
let the request through (a 404 or 422 comes from a handler the gate should never have
reached). Single-route attacks judge the outcome: a 2xx means the data came back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.common import IDENTITY, auth, user_token

PUBLIC = {("GET", "/health"), ("GET", "/products"), ("GET", "/products/{product_id}")}
# Shipped after the API document was last updated: deny by default must cover it anyway.
UNLISTED = [("GET", "/orders/{order_id}/invoice")]
BODIES = {("POST", "/orders"): {"product_id": 1}}
SPOOFS = [  # every "trust me, I'm internal" a client can write, several addresses each
    {"X-Internal": "true", "X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
    {"X-Internal": "1", "X-Forwarded-For": "10.0.0.7", "X-Real-IP": "10.0.0.7"},
    {"X-Forwarded-For": "192.168.1.20, 127.0.0.1", "X-User": "carol", "X-User-Role": "admin"},
    {"X-Forwarded-For": "::1", "X-Client-IP": "127.0.0.1", "Forwarded": "for=127.0.0.1"},
]
Attempt = tuple[str, str, dict[str, str]]


def _is_2xx(status: int) -> bool:
    return 200 <= status < 300


def _past_the_gate(status: int) -> bool:
    return status not in (401, 403)


def _first_through(
    lab: Any, http: httpx.Client, attempts: list[Attempt], through: Callable[[int], bool]
) -> Observed:
    """Send each (method, route, headers); report the first the gate let through."""
    last = None
    for method, route, headers in attempts:
        url = route.replace("{order_id}", "1").replace("{product_id}", "1")
        response = http.request(method, url, headers=headers, json=BODIES.get((method, route)))
        last = response.status_code
        if through(last):
            return Observed(True, last, f"{method} {url}{_as_who(lab, headers)}")
    return Observed(False, last)


def _as_who(lab: Any, headers: dict[str, str]) -> str:
    """Describe the request's headers without printing anyone's token."""
    names = {f"Bearer {user['token']}": user["username"] for user in lab.users}
    parts = [
        f"as {names.get(value, 'a made-up token')}"
        if name == "Authorization"
        else f"{name}: {value}"
        for name, value in headers.items()
    ]
    return f" ({', '.join(parts)})" if parts else ""


def _protected(http: httpx.Client) -> list[tuple[str, str]]:
    """Every non-public route: those in the OpenAPI document, and the unlisted ones."""
    spec = http.get("/openapi.json").json()
    listed = [(m.upper(), path) for path, ops in spec["paths"].items() for m in ops]
    return [route for route in listed + UNLISTED if route not in PUBLIC]


def _as(lab: Any, username: str) -> dict[str, str]:
    return auth(user_token(lab.state, username))


def attack_read_all(lab: Any, http: httpx.Client) -> Observed:
    attempts = [("GET", "/orders", {}), ("GET", "/orders/{order_id}", {})]
    return _first_through(lab, http, attempts, _is_2xx)


def attack_export(lab: Any, http: httpx.Client) -> Observed:
    attempts = [("GET", "/internal/export", {}), ("GET", "/internal/export", _as(lab, "alice"))]
    return _first_through(lab, http, attempts, _is_2xx)


def attack_trusted_header(lab: Any, http: httpx.Client) -> Observed:
    """Every spoof against every protected route; with alice's token on privileged ones."""
    attempts: list[Attempt] = []
    for method, route in _protected(http):
        privileged = route.startswith(("/admin/", "/internal/"))
        for spoof in SPOOFS:
            attempts.append((method, route, spoof))
            if privileged:
                attempts.append((method, route, {**_as(lab, "alice"), **spoof}))
    return _first_through(lab, http, attempts, _past_the_gate)


def attack_fail_open(lab: Any, http: httpx.Client) -> Observed:
    """While identity is down, no token can be checked: every protected route must deny."""
    tokens = [auth("made-up-token"), _as(lab, "alice"), _as(lab, "carol")]
    with lab.outage(IDENTITY):
        attempts = [(m, r, t) for m, r in _protected(http) for t in tokens]
        return _first_through(lab, http, attempts, _past_the_gate)


def attack_no_identity_sweep(lab: Any, http: httpx.Client) -> Observed:
    """Every protected route, listed or not, with no token and with a made-up one."""
    attempts = [(m, r, h) for m, r in _protected(http) for h in ({}, auth("made-up-token"))]
    return _first_through(lab, http, attempts, _past_the_gate)


def attack_wrong_role(lab: Any, http: httpx.Client) -> Observed:
    """A customer and the frontend's service account at routes their roles do not cover."""
    attempts: list[Attempt] = []
    for method, route in _protected(http):
        if route.startswith("/admin/"):
            attempts += [
                (method, route, _as(lab, "alice")),
                (method, route, _as(lab, "svc-frontend")),
            ]
        elif route.startswith("/internal/"):
            attempts.append((method, route, _as(lab, "bob")))
    return _first_through(lab, http, attempts, _past_the_gate)


def _works(
    http: httpx.Client, method: str, url: str, headers: dict[str, str], **kw: Any
) -> Observed:
    response = http.request(method, url, headers=headers, **kw)
    return Observed(response.is_success, response.status_code, f"{method} {url}")


def _all_work(http: httpx.Client, calls: list[tuple[str, str, dict[str, str], Any]]) -> Observed:
    seen = Observed(False)
    for method, url, headers, body in calls:
        seen = _works(http, method, url, headers, json=body)
        if not seen.succeeded:
            return seen
    return seen


def check_public(lab: Any, http: httpx.Client) -> Observed:
    return _all_work(
        http, [("GET", url, {}, None) for url in ("/health", "/products", "/products/2")]
    )


def check_customer(lab: Any, http: httpx.Client) -> Observed:
    alice = _as(lab, "alice")
    seen = _all_work(
        http,
        [
            ("POST", "/orders", alice, {"product_id": 2}),
            ("GET", "/orders/1", alice, None),
            ("GET", "/orders/1/invoice", alice, None),
            ("GET", "/me", alice, None),
        ],
    )
    if not seen.succeeded:
        return seen
    response = http.get("/orders", headers=alice)
    owners = (
        {o["owner"] for o in response.json().get("orders", [])} if response.is_success else set()
    )
    return Observed(
        response.is_success and owners == {"alice"},
        response.status_code,
        "GET /orders as alice: her orders only",
    )


def check_admin(lab: Any, http: httpx.Client) -> Observed:
    carol = _as(lab, "carol")
    return _all_work(
        http, [("GET", "/admin/users", carol, None), ("DELETE", "/admin/orders/2", carol, None)]
    )


def check_service_export(lab: Any, http: httpx.Client) -> Observed:
    return _works(http, "GET", "/internal/export", _as(lab, "svc-frontend"))


def check_public_during_outage(lab: Any, http: httpx.Client) -> Observed:
    with lab.outage(IDENTITY):
        return _all_work(http, [("GET", "/products", {}, None), ("GET", "/health", {}, None)])


ATTACKS = (
    Attack(
        "read-all-orders",
        "read every customer's orders without credentials",
        (
            "Which routes does the card list? Try GET /orders with no Authorization header.",
            "lab.client.get('/orders').json(): whose orders are these?",
        ),
        attack_read_all,
        fix="GET /orders is not public: without an identity, return False.",
    ),
    Attack(
        "internal-export",
        "use the 'internal-only' export route (anonymous, then as a customer)",
        (
            "Read the paths in lab.client.get('/openapi.json').json(): is anything internal?",
            "A URL nobody links to is still a URL: call GET /internal/export yourself.",
        ),
        attack_export,
        fix="/internal/... needs an identity with role admin or service, whoever asks.",
    ),
    Attack(
        "trusted-header",
        "spoofed 'internal' headers (X-Internal, X-Forwarded-For, ...) on every protected route",
        (
            "GET /admin/users says 401 without a token. Does the server believe anything else?",
            "Headers are written by the client. Try X-Internal: true, or "
            "X-Forwarded-For: 127.0.0.1.",
        ),
        attack_trusted_header,
        fix="Ignore X-Internal, X-Forwarded-For and friends: identity comes from req.identify().",
    ),
    Attack(
        "fail-open",
        "every protected route while the identity service is down, with any token",
        (
            "with lab.outage('identity'): ... simulates the identity service being down.",
            "The gate only asks the identity service when you send a token. Send one, any one: "
            "headers={'Authorization': 'Bearer whatever'}.",
        ),
        attack_fail_open,
        fix="Catch DependencyDown around req.identify() and return False: fail closed.",
    ),
    Attack(
        "no-identity-sweep",
        "every non-public route, including one not in the API document, with no valid token",
        ("Deny by default: only an explicit allowlist of (method, route) is public.",),
        attack_no_identity_sweep,
        fix="Deny by default: allow only the (method, route) pairs on your public list; "
        "a route you have never heard of must be denied too.",
        flag=False,
    ),
    Attack(
        "wrong-role",
        "a customer and a service account at admin routes; a customer at /internal",
        ("Identity is not enough: admin routes need the admin role.",),
        attack_wrong_role,
        fix="Identity is not enough: /admin/... needs role admin; /internal/... admin or service.",
        flag=False,
    ),
)

CHECKS = (
    Check("public-catalogue", "anyone reads /health and the products", check_public),
    Check(
        "customer-works",
        "alice orders, reads her order and its invoice, and sees only her orders",
        check_customer,
    ),
    Check("admin-works", "carol (admin) lists users and cancels an order", check_admin),
    Check("service-export", "svc-frontend calls the export it exists for", check_service_export),
    Check(
        "public-during-outage",
        "the catalogue still works while identity is down",
        check_public_during_outage,
    ),
)
