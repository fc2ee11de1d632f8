"""Lesson 01's battery: the attacks the grader replays and the checks real users need."""

from __future__ import annotations

from typing import Any

import httpx

from labapp.grading import Attack, Check, Observed
from labapp.lessons.common import IDENTITY, auth, user_token

PUBLIC = {("GET", "/health"), ("GET", "/products"), ("GET", "/products/{product_id}")}


def _first_through(
    lab: Any, http: httpx.Client, attempts: list[tuple[str, str, dict[str, str]]]
) -> Observed:
    """Try each (method, url, headers); report the first that got a 2xx."""
    last = None
    for method, url, headers in attempts:
        response = http.request(method, url, headers=headers)
        last = response.status_code
        if response.is_success:
            return Observed(True, last, f"{method} {url}{_as_who(lab, headers)}")
    return Observed(False, last)


def _as_who(lab: Any, headers: dict[str, str]) -> str:
    """Describe the request's headers without printing anyone's token."""
    names = {f"Bearer {user['token']}": user["username"] for user in lab.users}
    parts = [
        f"as {names.get(value, 'someone')}" if name == "Authorization" else f"{name}: {value}"
        for name, value in headers.items()
    ]
    return f" ({', '.join(parts)})" if parts else ""


def attack_read_all(lab: Any, http: httpx.Client) -> Observed:
    return _first_through(lab, http, [("GET", "/orders", {}), ("GET", "/orders/3", {})])


def attack_export(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    return _first_through(
        lab, http, [("GET", "/internal/export", {}), ("GET", "/internal/export", alice)]
    )


def attack_trusted_header(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    spoofs = [{"X-Internal": "true"}, {"X-Forwarded-For": "127.0.0.1"}, {"X-Real-IP": "127.0.0.1"}]
    attempts = [("GET", "/admin/users", spoof) for spoof in spoofs]
    attempts += [("GET", "/admin/users", {**alice, **spoof}) for spoof in spoofs]
    return _first_through(lab, http, attempts)


def attack_fail_open(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    with lab.outage(IDENTITY):
        return _first_through(
            lab,
            http,
            [
                ("GET", "/admin/users", {}),
                ("GET", "/admin/users", alice),
                ("GET", "/orders", {}),
                ("GET", "/internal/export", alice),
            ],
        )


def attack_no_identity_sweep(lab: Any, http: httpx.Client) -> Observed:
    """Call every non-public route in the OpenAPI document without credentials."""
    spec = http.get("/openapi.json").json()
    attempts = []
    for path, methods in spec["paths"].items():
        for method in methods:
            if (method.upper(), path) not in PUBLIC:
                attempts.append((method.upper(), path.replace("{order_id}", "1"), {}))
    return _first_through(lab, http, attempts)


def attack_customer_admin(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    return _first_through(
        lab,
        http,
        [
            ("GET", "/admin/users", alice),
            ("DELETE", "/admin/orders/3", alice),
        ],
    )


def _works(
    http: httpx.Client, method: str, url: str, headers: dict[str, str], **kw: Any
) -> Observed:
    response = http.request(method, url, headers=headers, **kw)
    return Observed(response.is_success, response.status_code, f"{method} {url}")


def check_public(lab: Any, http: httpx.Client) -> Observed:
    for url in ("/health", "/products", "/products/2"):
        seen = _works(http, "GET", url, {})
        if not seen.succeeded:
            return seen
    return seen


def check_alice_orders(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    seen = _works(http, "POST", "/orders", alice, json={"product_id": 2})
    if not seen.succeeded:
        return seen
    response = http.get("/orders", headers=alice)
    owners = (
        {o["owner"] for o in response.json().get("orders", [])} if response.is_success else set()
    )
    ok = response.is_success and owners == {"alice"}
    return Observed(ok, response.status_code, "GET /orders as alice")


def check_admin(lab: Any, http: httpx.Client) -> Observed:
    carol = auth(user_token(lab.state, "carol"))
    seen = _works(http, "GET", "/admin/users", carol)
    return seen if not seen.succeeded else _works(http, "DELETE", "/admin/orders/2", carol)


def check_service_export(lab: Any, http: httpx.Client) -> Observed:
    return _works(http, "GET", "/internal/export", auth(user_token(lab.state, "svc-frontend")))


def check_public_during_outage(lab: Any, http: httpx.Client) -> Observed:
    with lab.outage(IDENTITY):
        return _works(http, "GET", "/products", {})


ATTACKS = (
    Attack(
        "read-all-orders",
        "read every customer's orders without credentials",
        (
            "Which routes does the card list? Try GET /orders with no Authorization header.",
            "lab.client.get('/orders').json() — whose orders are these?",
        ),
        attack_read_all,
        fix="GET /orders is not public: without an identity, return False.",
    ),
    Attack(
        "internal-export",
        "use the 'internal-only' export route",
        (
            "Read the paths in lab.client.get('/openapi.json').json(): is anything internal?",
            "A URL nobody links to is still a URL: call GET /internal/export yourself.",
        ),
        attack_export,
        fix="/internal/... needs an identity with role admin or service, whoever asks.",
    ),
    Attack(
        "trusted-header",
        "reach an admin route with a spoofed 'internal' header",
        (
            "GET /admin/users says 401 without a token. Does the server believe anything else?",
            "Headers are written by the client. Try X-Internal: true, or "
            "X-Forwarded-For: 127.0.0.1.",
        ),
        attack_trusted_header,
        fix="Ignore X-Internal and X-Forwarded-For: identity comes from req.identify().",
    ),
    Attack(
        "fail-open",
        "get in while the identity service is down",
        (
            "with lab.outage('identity'): ... simulates the identity service being down.",
            "During the outage, call GET /admin/users with no credentials at all.",
        ),
        attack_fail_open,
        fix="Catch DependencyDown around req.identify() and return False: fail closed.",
    ),
    Attack(
        "no-identity-sweep",
        "every non-public route, called without credentials",
        ("Deny by default: only an explicit allowlist of (method, route) is public.",),
        attack_no_identity_sweep,
        fix="Deny by default: allow only the (method, route) pairs on your public list.",
        flag=False,
    ),
    Attack(
        "customer-admin",
        "a customer calls admin routes",
        ("Identity is not enough: admin routes need the admin role.",),
        attack_customer_admin,
        fix="Identity is not enough: /admin/... needs role admin.",
        flag=False,
    ),
)

CHECKS = (
    Check("public-catalogue", "anyone can read /health and the products", check_public),
    Check("customer-orders", "alice places an order and sees only her orders", check_alice_orders),
    Check("admin-works", "carol (admin) lists users and cancels an order", check_admin),
    Check("service-export", "svc-frontend calls the export it exists for", check_service_export),
    Check(
        "public-during-outage",
        "the catalogue still works while identity is down",
        check_public_during_outage,
    ),
)
