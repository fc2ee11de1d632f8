"""Lesson 01's battery: the attacks the grader replays (the checks real users need are in
``checks.py``, the header spoofing in ``spoofing.py``, the not-yet-shipped routes in ``probe.py``).

Attacks that sweep many routes judge the *gate*: any answer but 401 or 403 means the gate
let the request through (a 404 or 422 comes from a handler the gate should never have
reached). Single-route attacks judge the outcome: a 2xx means the data came back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx

from labapp.engine.grading import Attack, Observed
from labapp.lessons.common import IDENTITY, auth
from labapp.lessons.l01_unprotected.checks import CHECKS, as_user, roles_changed
from labapp.lessons.l01_unprotected.probe import attack_future_routes
from labapp.lessons.l01_unprotected.spoofing import Scenario, Spoof, learner_strings, search

PUBLIC = {("GET", "/health"), ("GET", "/products"), ("GET", "/products/{product_id}")}
# Shipped after the API document was last updated: deny by default must cover it anyway.
UNLISTED = [("GET", "/orders/{order_id}/invoice")]
BODIES = {("POST", "/orders"): {"product_id": 1}}
Attempt = tuple[str, str, dict[str, str]]
UNPLANNED_ROLE = "support"  # a role the policy has never heard of: it must open nothing


def _is_2xx(status: int) -> bool:
    return 200 <= status < 300


def _past_the_gate(status: int) -> bool:
    return status not in (401, 403)


def _url(method: str, route: str) -> str:
    # A DELETE the gate lets through must not cancel an order a later check reads.
    order = "4242" if method == "DELETE" else "1"
    return route.replace("{order_id}", order).replace("{product_id}", "1")


def _first_through(
    lab: Any,
    http: httpx.Client,
    attempts: list[Attempt],
    through: Callable[[int], bool],
    during: str = "",
) -> Observed:
    """Send each (method, route, headers); report the first the gate let through.

    A 5xx counts as "through" too: the row fails on it anyway, and reported so, the row keeps
    its own fix after the engine's crash advice (a crash here is nearly always the None that
    req.identify() returns, or the DependencyDown it raises, left unhandled).
    """
    last = None
    for method, route, headers in attempts:
        url = _url(method, route)
        response = http.request(method, url, headers=headers, json=BODIES.get((method, route)))
        last = response.status_code
        if through(last) or last >= 500:
            return Observed(True, last, f"{method} {url}{_as_who(lab, headers)}{during}")
    return Observed(False, last)


def _as_who(lab: Any, headers: dict[str, str]) -> str:
    """Describe the request's headers without printing anyone's token."""
    names = {f"Bearer {user['token']}": user["username"] for user in lab.users}
    parts = [
        (f"as {names[value]}" if value in names else "with a made-up token")
        if name == "Authorization"
        else f"{name}: {value}"
        for name, value in headers.items()
    ]
    return f" ({', '.join(parts)})" if parts else " (with no token)"


def _protected(http: httpx.Client) -> list[tuple[str, str]]:
    """Every non-public route: those in the OpenAPI document, and the unlisted ones."""
    spec = http.get("/openapi.json").json()
    listed = [(m.upper(), path) for path, ops in spec["paths"].items() for m in ops]
    return [route for route in listed + UNLISTED if route not in PUBLIC]


def attack_read_all(lab: Any, http: httpx.Client) -> Observed:
    attempts = [("GET", "/orders", {}), ("GET", "/orders/{order_id}", {})]
    return _first_through(lab, http, attempts, _is_2xx)


def attack_export(lab: Any, http: httpx.Client) -> Observed:
    attempts = [("GET", "/internal/export", {}), ("GET", "/internal/export", as_user(lab, "alice"))]
    return _first_through(lab, http, attempts, _is_2xx)


def _scenarios(lab: Any, http: httpx.Client) -> list[Scenario]:
    """Requests the gate must refuse: every protected route without a valid identity, the
    privileged ones with a role that does not cover them, and all of them during an outage."""
    found: list[Scenario] = []
    for method, route in _protected(http):
        found.append(Scenario(method, route, "with no token", {}))
        found.append(Scenario(method, route, "with a made-up token", auth("made-up-token")))
        if route.startswith(("/admin/", "/internal/")):
            for username in ("alice", "bob"):
                found.append(Scenario(method, route, f"as {username}", as_user(lab, username)))
        if route.startswith("/admin/"):
            found.append(Scenario(method, route, "as svc-frontend", as_user(lab, "svc-frontend")))
        found.append(Scenario(method, route, "as alice", as_user(lab, "alice"), outage=True))
    return found


def attack_trusted_header(lab: Any, http: httpx.Client) -> Observed:
    """Spoof every header the gate reads, with the values it looks for (see spoofing.py)."""
    reads = lab.server.app.state.header_reads

    def send(scenario: Scenario, spoof: Spoof) -> int:
        mark = len(reads.fields)
        sent = {k: v for k, v in spoof.items() if v is not None}
        request = http.build_request(
            scenario.method,
            _url(scenario.method, scenario.route),
            headers={**scenario.headers, **sent},
            json=BODIES.get((scenario.method, scenario.route)),
        )
        for name in spoof.keys() - sent.keys():  # a field httpx adds unasked, left out
            request.headers.pop(name, None)
        outage = lab.outage(IDENTITY) if scenario.outage else contextlib.nullcontext()
        with outage:
            try:
                response = http.send(request)
            except httpx.LocalProtocolError:  # a guess HTTP cannot carry: not an attack
                return 400
        scenario.fields |= reads.since(mark)
        return response.status_code

    with reads.watching():
        refused = []
        for scenario in _scenarios(lab, http):
            status = send(scenario, {})
            if status >= 500:  # the row fails on it; no need to look further
                outage = " during the identity outage" if scenario.outage else ""
                detail = f"{scenario.method} {scenario.url} {scenario.who}{outage}"
                return Observed(False, status, f"{detail}, before any header was spoofed")
            if status in (401, 403):  # a request let through plain is another row's failure
                refused.append(scenario)
        extra = learner_strings(lab.state.hooks["authorize"])
        found = search(refused, send, reads, extra)
    return found or Observed(False, None, "no header your authorize() reads changed a refusal")


def attack_fail_open(lab: Any, http: httpx.Client) -> Observed:
    """While identity is down, no token can be checked: every protected route must deny."""
    tokens = [auth("made-up-token"), as_user(lab, "alice"), as_user(lab, "carol")]
    with lab.outage(IDENTITY):
        attempts = [(m, r, t) for m, r in _protected(http) for t in tokens]
        return _first_through(lab, http, attempts, _past_the_gate, " during the identity outage")


def attack_no_identity_sweep(lab: Any, http: httpx.Client) -> Observed:
    """Every protected route, listed or not, with no token and with a made-up one."""
    attempts = [(m, r, h) for m, r in _protected(http) for h in ({}, auth("made-up-token"))]
    return _first_through(lab, http, attempts, _past_the_gate)


def attack_wrong_role(lab: Any, http: httpx.Client) -> Observed:
    """A customer and the frontend's service account at routes their roles do not cover; then
    a role nobody planned for, which a list of roles to keep *out* lets in everywhere."""
    attempts: list[Attempt] = []
    for method, route in _protected(http):
        if route.startswith("/admin/"):
            attempts += [
                (method, route, as_user(lab, "alice")),
                (method, route, as_user(lab, "svc-frontend")),
            ]
        elif route.startswith("/internal/"):
            attempts.append((method, route, as_user(lab, "bob")))
    seen = _first_through(lab, http, attempts, _past_the_gate)
    if seen.succeeded:
        return seen
    privileged = [(m, r) for m, r in _protected(http) if r.startswith(("/admin/", "/internal/"))]
    with roles_changed(lab, {"bob": UNPLANNED_ROLE}):
        attempts = [(m, r, as_user(lab, "bob")) for m, r in privileged]
        seen = _first_through(lab, http, attempts, _past_the_gate)
    if seen.succeeded:
        return Observed(True, seen.status, f"{seen.detail}, bob's role now {UNPLANNED_ROLE!r}")
    return seen


def attack_demoted_admin(lab: Any, http: httpx.Client) -> Observed:
    """Roles decide, now: carol, demoted to customer for this row, is refused /admin."""
    carol = as_user(lab, "carol")
    before = http.get("/admin/users", headers=carol).status_code
    with roles_changed(lab, {"carol": "customer"}):
        after = http.get("/admin/users", headers=carol)
    return Observed(
        _past_the_gate(after.status_code),
        after.status_code,
        f"GET /admin/users as carol, admin ({before}), then demoted to customer",
    )


ATTACKS = (
    Attack(
        "read-all-orders",
        "read every customer's orders without credentials",
        (
            "Compare the request alice sent in the Explore section with one the server cannot "
            "tie to anybody. The handler behind the order list assumes the frontend always "
            "says who is asking: what does it do when nobody is named?",
            "Missing authentication for a critical function (CWE-306): the gate lets the call "
            "through and the handler trusts the client to identify itself, so the server "
            "never decides who may read. OWASP API Security Top 10 2023, API5:2023 Broken "
            "Function Level Authorization: an endpoint that anonymous users should not reach.",
            "1. Send GET /orders with no Authorization header at all.\n"
            "2. Look at the owners of the orders that come back: not only alice.\n"
            "3. The answer also carries a flag: hand it to the grader.\n"
            "```python\n"
            'everything = lab.client.get("/orders").json()\n'
            'print(sorted({order["owner"] for order in everything["orders"]}))\n'
            'flag_orders = everything["flag"]\nlab.check_flag("read-all-orders", flag_orders)\n'
            "```",
        ),
        attack_read_all,
        fix="authorize() must return False here: GET /orders and GET /orders/{order_id} are "
        "not public, and req.identify() returned None (no token, or one nobody holds). Test "
        "for None before reading user['role'].",
    ),
    Attack(
        "internal-export",
        "use the 'internal-only' export route (anonymous, then as a customer)",
        (
            "The API describes itself: read the route list the framework publishes, the "
            "descriptions as well as the paths. Which route says who is meant to call it, "
            "and does the server check that?",
            "Forced browsing (CWE-425 Direct Request): a route nobody links to is still "
            "reachable, and 'only our frontend calls this' is not an access rule. OWASP API "
            "Security Top 10 2023, API5:2023 Broken Function Level Authorization (and API9:2023 "
            "Improper Inventory Management).",
            "1. In the route list, find the route described as internal: GET /internal/export.\n"
            "2. Call it yourself, with no credentials (alice's customer token works too).\n"
            "3. Hand the flag in the answer to the grader.\n"
            "```python\n"
            'export = lab.client.get("/internal/export").json()\n'
            'print(len(export["customers"]), "customer rows, with shipping addresses")\n'
            'flag_export = export["flag"]\nlab.check_flag("internal-export", flag_export)\n'
            "```",
        ),
        attack_export,
        fix="authorize() must return False here: /internal/... is for the roles admin and "
        "service only, and this caller had no identity (None) or was a customer.",
    ),
    Attack(
        "trusted-header",
        "each refused request again, with every header your authorize() reads spoofed",
        (
            "GET /admin/users refuses you without an admin's token. Read what the route list "
            "says about who reaches it, and how the shop recognises them. Then ask: which part "
            "of a request carries that mark, and who writes it?",
            "Authentication bypass by spoofing (CWE-290), through a field the client controls "
            "(CWE-348 Use of Less Trusted Source). Proxies add headers such as X-Forwarded-For, "
            "but unless your own proxy overwrites them, any client can send them: OWASP ASVS "
            "5.0 V15.3.4 wants such values only from fields the end user cannot manipulate.",
            "1. Send GET /admin/users with the header the shop's gateway adds, X-Internal: true "
            "(X-Forwarded-For: 127.0.0.1 fools this gate too).\n"
            "2. Send no Authorization header: the gate never asks who you are.\n"
            "3. Hand the flag in the answer to the grader.\n"
            "```python\n"
            'staff = lab.client.get("/admin/users", headers={"X-Internal": "true"}).json()\n'
            'print([user["username"] for user in staff["users"]])\n'
            'flag_header = staff["flag"]\nlab.check_flag("trusted-header", flag_header)\n'
            "```",
        ),
        attack_trusted_header,
        fix="authorize() must not let a header the client writes decide: X-Internal, "
        "X-Forwarded-For and any header you invent come from the client. Who calls comes only "
        "from req.identify(), which checks the bearer token.",
    ),
    Attack(
        "fail-open",
        "every protected route while the identity service is down, with any token",
        (
            "Open an outage (`with lab.outage('identity'):`; GET /health shows it) and compare "
            "how the gate treats a request with no token and one with a token it cannot check.",
            "Failing open (CWE-636 Not Failing Securely): when the identity lookup fails, the "
            "gate chooses to allow, so any string becomes a key. OWASP ASVS 5.0 V16.5.3: fail "
            "securely, with no fail-open conditions when an exception occurs.",
            "1. Start an outage: `with lab.outage('identity'):`.\n"
            "2. Inside it, send GET /admin/users with an Authorization: Bearer header holding "
            "any made-up value.\n"
            "3. Hand the flag in the answer to the grader.\n"
            "```python\n"
            'with lab.outage("identity"):\n'
            '    anything = {"Authorization": "Bearer not-a-real-token"}\n'
            '    during = lab.client.get("/admin/users", headers=anything).json()\n'
            'flag_outage = during["flag"]\nlab.check_flag("fail-open", flag_outage)\n'
            "```",
        ),
        attack_fail_open,
        fix="authorize() must fail closed: while the identity service is down req.identify() "
        "raises DependencyDown. Catch it and return False on every route that is not public, "
        "even for a real user's token.",
    ),
    Attack(
        "no-identity-sweep",
        "every non-public route, including one not in the API document, with no valid token",
        ("Deny by default: only an explicit allowlist of (method, route) is public.",),
        attack_no_identity_sweep,
        fix="authorize() must return False here: this route is not on your public list and "
        "req.identify() returned None. Deny by default: allow only the (method, route) pairs "
        "on the list; every other route, even one missing from the API document, needs a "
        "user from req.identify().",
        flag=False,
    ),
    Attack(
        "wrong-role",
        "a customer and a service account at admin routes; a customer, and a role nobody "
        "planned for, at /admin and /internal",
        ("Identity is not enough: admin routes need the admin role.",),
        attack_wrong_role,
        fix="authorize() must return False here: identity is not enough. /admin/... needs "
        "role admin; /internal/... admin or service. Name the roles let in, not those kept "
        "out: a new role must get nothing privileged.",
        flag=False,
    ),
    Attack(
        "future-routes",
        "your authorize() asked about routes not shipped yet (POST /products, /admin/audit...)",
        ("Deny by default: a route nobody has told your function about must be refused.",),
        attack_future_routes,
        fix="authorize() must return False for a route the shop has not shipped yet: compare "
        "(req.method, req.route) as a pair with your public list (not by path prefix, not by "
        "route alone); every other route needs an identity, and /admin/ or /internal/ their "
        "roles. A list of today's protected routes misses tomorrow's.",
        flag=False,
    ),
    Attack(
        "demoted-admin",
        "carol, demoted to customer during the grade, at an admin route",
        ("Roles change: decide by the role req.identify() returns on this request.",),
        attack_demoted_admin,
        fix="authorize() must return False here: carol is a customer now. Read user['role'] "
        "from req.identify() on every request: not a username, not a role remembered from an "
        "earlier request.",
        flag=False,
    ),
)

__all__ = ["ATTACKS", "CHECKS"]
