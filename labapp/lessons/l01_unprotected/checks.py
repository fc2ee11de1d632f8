"""Lesson 01's legitimate checks: what real users must still do behind the learner's gate.

Each rule of the defend exercise that *allows* something has a check here, so a gate that
denies too much (or decides by name where the rule says role) fails a row that says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from labapp.engine.grading import Check, Observed
from labapp.lessons.common import IDENTITY, auth, user_token

Call = tuple[str, str, dict[str, str], Any]  # method, url, headers, JSON body


# What each seeded user's software sends: legitimate traffic looks like the client it is
# (alice's phone app, bob's and carol's browsers, the frontend's server), not like a script.
USER_AGENTS = {
    "alice": "ShopApp/5.8.1 (iPhone; iOS 17.5; Scale/3.00)",
    "bob": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "carol": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "svc-frontend": "shop-frontend/4.12.0 (+https://shop.example; undici)",
}
VISITOR = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
DURING = " during the identity outage"


def as_user(lab: Any, username: str) -> dict[str, str]:
    """A seeded user's bearer token (what an attacker holding it sends: no disguise)."""
    return auth(user_token(lab.state, username))


def from_app(lab: Any, username: str | None = None) -> dict[str, str]:
    """The headers a real user's own software sends: its User-Agent, and its token if any."""
    if username is None:
        return {"User-Agent": VISITOR}
    return {**as_user(lab, username), "User-Agent": USER_AGENTS[username]}


def works(
    http: httpx.Client, method: str, url: str, headers: dict[str, str], **kw: Any
) -> Observed:
    response = http.request(method, url, headers=headers, **kw)
    return Observed(response.is_success, response.status_code, f"{method} {url}")


def all_work(http: httpx.Client, calls: list[Call], who: str = "") -> Observed:
    """Every call must succeed; report the first that does not."""
    seen = Observed(False)
    for method, url, headers, body in calls:
        seen = works(http, method, url, headers, json=body)
        if not seen.succeeded:
            return Observed(False, seen.status, f"{seen.detail}{who}")
    return seen


@contextlib.contextmanager
def roles_changed(lab: Any, changes: dict[str, str]) -> Iterator[None]:
    """Change seeded users' roles in the lab's store for the block (a promotion, a demotion)."""
    store = lab.state.store
    before = {
        name: store.one("SELECT role FROM users WHERE username = ?", (name,))["role"]
        for name in changes
    }
    try:
        for name, role in changes.items():
            store.execute("UPDATE users SET role = ? WHERE username = ?", (role, name))
        yield
    finally:
        for name, role in before.items():
            store.execute("UPDATE users SET role = ? WHERE username = ?", (role, name))


def check_public(lab: Any, http: httpx.Client) -> Observed:
    urls = ("/health", "/products", "/products/2")
    return all_work(http, [("GET", url, from_app(lab), None) for url in urls], " with no token")


def check_customer(lab: Any, http: httpx.Client) -> Observed:
    alice = from_app(lab, "alice")
    seen = all_work(
        http,
        [
            ("POST", "/orders", alice, {"product_id": 2}),
            ("GET", "/orders/1", alice, None),
            ("GET", "/orders/1/invoice", alice, None),
            ("GET", "/me", alice, None),
        ],
        " as alice",
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
    carol = from_app(lab, "carol")
    calls: list[Call] = [
        ("GET", "/admin/users", carol, None),
        ("GET", "/internal/export", carol, None),
        ("DELETE", "/admin/orders/2", carol, None),
    ]
    return all_work(http, calls, " as carol")


def check_service_export(lab: Any, http: httpx.Client) -> Observed:
    seen = works(http, "GET", "/internal/export", from_app(lab, "svc-frontend"))
    return Observed(seen.succeeded, seen.status, f"{seen.detail} as svc-frontend")


def check_signed_in(lab: Any, http: httpx.Client) -> Observed:
    """Any signed-in user reaches the routes with no role rule, whatever their role."""
    for username in ("bob", "carol", "svc-frontend"):
        who = from_app(lab, username)
        calls: list[Call] = [("GET", "/me", who, None), ("GET", "/orders", who, None)]
        seen = all_work(http, calls, f" as {username}")
        if not seen.succeeded:
            return seen
    return seen


def check_new_admin(lab: Any, http: httpx.Client) -> Observed:
    """Roles decide, not names: bob, promoted to admin for this row, manages accounts."""
    with roles_changed(lab, {"bob": "admin"}):
        seen = works(http, "GET", "/admin/users", from_app(lab, "bob"))
    return Observed(seen.succeeded, seen.status, f"{seen.detail} as bob, just made admin")


def check_public_during_outage(lab: Any, http: httpx.Client) -> Observed:
    """Anyone, and a signed-in customer whose app sends her token anyway, reads the catalogue."""
    alice = from_app(lab, "alice")
    visitor = from_app(lab)
    anyone: list[Call] = [("GET", "/products", visitor, None), ("GET", "/health", visitor, None)]
    with lab.outage(IDENTITY):
        seen = all_work(http, anyone, f" with no token{DURING}")
        if seen.succeeded:
            calls: list[Call] = [("GET", "/products/2", alice, None)]
            seen = all_work(http, calls, f" with alice's token{DURING}")
    return seen


DENIED = "authorize() denied too much: "
CHECKS = (
    Check(
        "public-catalogue",
        "anyone reads /health and the products",
        check_public,
        hint=DENIED + "GET /health, GET /products and GET /products/{product_id} are public: "
        "return True for exactly these (method, route) pairs, before asking req.identify().",
    ),
    Check(
        "customer-works",
        "alice orders, reads her order and its invoice, and sees only her orders",
        check_customer,
        hint=DENIED + "a signed-in customer places orders and reads her orders, their invoices "
        "(GET /orders/{order_id}/invoice, missing from the API document) and /me. Routes "
        "outside /admin/ and /internal/ are for any signed-in user.",
    ),
    Check(
        "admin-works",
        "carol (admin) lists users, reads the export and cancels an order",
        check_admin,
        hint=DENIED + "an admin may use /admin/... and /internal/...: check the role, admin "
        "included.",
    ),
    Check(
        "service-export",
        "svc-frontend calls the export it exists for",
        check_service_export,
        hint=DENIED + "the service role (svc-frontend) may call /internal/...: it is what the "
        "export exists for.",
    ),
    Check(
        "signed-in-users",
        "bob, carol and svc-frontend reach /me and /orders (no role rule there)",
        check_signed_in,
        hint=DENIED + "routes outside /admin/ and /internal/ are for any signed-in user, "
        "whatever the role: the handlers scope the data to its owner.",
    ),
    Check(
        "new-admin",
        "bob, promoted to admin during the grade, lists the accounts",
        check_new_admin,
        hint=DENIED + "bob is an admin now. Decide by the role req.identify() returns on this "
        "request, not by a list of names: people are promoted and demoted.",
    ),
    Check(
        "public-during-outage",
        "the catalogue still works while identity is down, with or without a token",
        check_public_during_outage,
        hint=DENIED + "public routes need no identity, even while the identity service is down "
        "and even when a token comes along: answer them before asking req.identify().",
    ),
)
