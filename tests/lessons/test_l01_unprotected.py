"""Lesson 01: every attack breaches the weak gate; the solution stops all; wrong gates fail."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nbformat
import pytest
import uvicorn

from labapp import DefenseBreached, DependencyDown, Lab
from labapp.engine.grading import run_item
from labapp.lessons.l01_unprotected import LESSON
from labapp.lessons.l01_unprotected.app import weak_authorize
from labapp.lessons.l01_unprotected.checks import USER_AGENTS, VISITOR, roles_changed
from labapp.lessons.l01_unprotected.headers import (
    EVERY_FIELD,
    FIELD_NAMES,
    HeaderReads,
    WatchedHeaders,
)
from labapp.lessons.l01_unprotected.spoofing import learner_strings
from tests.conftest import ROOT, solution_namespace

FLAG = re.compile(r"FLAG\{01-unprotected:[\w-]+:[0-9a-f]{32}\}")


def solution_authorize():
    """The `authorize` the solution notebook shows."""
    return solution_namespace(
        "01-unprotected-endpoints.ipynb", "authorize", DependencyDown=DependencyDown
    )["authorize"]


def _row(lab: Lab, attack_id: str):
    attack = next(a for a in LESSON.attacks if a.id == attack_id)
    return run_item(lab, attack)


@pytest.mark.parametrize("attack", [a.id for a in LESSON.attacks if a.flag])
def test_each_flagged_attack_breaches_the_weak_gate(lab01: Lab, attack: str) -> None:
    """Against the shipped gate, each attack of the lesson gets through."""
    assert not _row(lab01, attack).passed


def test_reading_all_orders_without_credentials_reveals_the_flag(lab01: Lab) -> None:
    """No token, everyone's orders, and a flag that check_flag accepts."""
    body = lab01.client.get("/orders").json()
    assert {order["owner"] for order in body["orders"]} == {"alice", "bob"}
    lab01.check_flag("read-all-orders", body["flag"])


def test_internal_export_reveals_the_flag_to_an_anonymous_caller(lab01: Lab) -> None:
    """The 'internal-only' route answers anyone."""
    lab01.check_flag("internal-export", lab01.client.get("/internal/export").json()["flag"])


@pytest.mark.parametrize(
    "header", [{"X-Internal": "true"}, {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}]
)
def test_a_spoofed_internal_header_reaches_the_admin_route(lab01: Lab, header) -> None:
    """A header any client can write is believed by the weak gate."""
    body = lab01.client.get("/admin/users", headers=header).json()
    lab01.check_flag("trusted-header", body["flag"])


def test_the_gate_fails_open_during_an_identity_outage(lab01: Lab) -> None:
    """While identity is down, the weak gate lets any made-up token into admin routes."""
    with lab01.outage("identity"):
        assert lab01.client.get("/admin/users").status_code == 401  # no token: nothing to ask
        made_up = {"Authorization": "Bearer whatever"}
        body = lab01.client.get("/admin/users", headers=made_up).json()
    lab01.check_flag("fail-open", body["flag"])


def test_real_credentials_during_an_outage_earn_no_flag(lab01: Lab) -> None:
    """Flags follow who really holds the token, so an outage hands none to real users."""
    tokens = {user["username"]: user["token"] for user in lab01.users}
    with lab01.outage("identity"):
        for username, url in [("carol", "/admin/users"), ("svc-frontend", "/internal/export")]:
            headers = {"Authorization": f"Bearer {tokens[username]}"}
            assert "flag" not in lab01.client.get(url, headers=headers).json()
        alice = {"Authorization": f"Bearer {tokens['alice']}"}
        assert "flag" not in lab01.client.get("/orders", headers=alice).json()


def test_legitimate_callers_get_no_flag(lab01: Lab) -> None:
    """Flags appear only for exploits: a real admin and the real service see none."""
    carol = {"Authorization": f"Bearer {lab01.users[2]['token']}"}
    svc = {"Authorization": f"Bearer {lab01.users[3]['token']}"}
    assert "flag" not in lab01.client.get("/admin/users", headers=carol).json()
    assert "flag" not in lab01.client.get("/internal/export", headers=svc).json()
    alice = {"Authorization": f"Bearer {lab01.users[0]['token']}"}
    assert "flag" not in lab01.client.get("/orders", headers=alice).json()


def test_a_promoted_user_earns_no_flag_and_a_demoted_one_gets_nothing(lab01: Lab) -> None:
    """The role-change rows stay honest: a real promotion is no exploit, a demotion is denied."""
    bob = {"Authorization": f"Bearer {lab01.users[1]['token']}"}
    carol = {"Authorization": f"Bearer {lab01.users[2]['token']}"}
    with roles_changed(lab01, {"bob": "admin", "carol": "customer"}):
        assert "flag" not in lab01.client.get("/admin/users", headers=bob).json()
        assert lab01.client.get("/admin/users", headers=carol).status_code == 403
    assert lab01.client.get("/admin/users", headers=bob).status_code == 403


def test_the_solution_defense_stops_every_attack_and_keeps_real_users_working(
    lab01: Lab,
) -> None:
    """The solution notebook's gate passes every row of the grader."""
    lab01.defend(authorize=solution_authorize())
    report = lab01.grade()
    assert report.passed
    assert len(report.rows) == len(LESSON.attacks) + len(LESSON.checks)


def test_the_defended_gate_answers_401_with_a_bearer_challenge_and_403_for_wrong_role(
    lab01: Lab,
) -> None:
    """No identity is 401 with WWW-Authenticate; a customer at an admin route is 403."""
    lab01.defend(authorize=solution_authorize())
    anonymous = lab01.client.get("/orders")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="orders"'
    made_up = lab01.client.get("/orders", headers={"Authorization": "Bearer nope"})
    assert made_up.headers["www-authenticate"] == 'Bearer realm="orders", error="invalid_token"'

    alice = {"Authorization": f"Bearer {lab01.users[0]['token']}"}
    assert lab01.client.get("/admin/users", headers=alice).status_code == 403
    assert lab01.client.get("/orders/1/invoice").status_code == 401  # not in the API document
    for broken in (b"Bearer", b"Basic YWxpY2U6eA==", "Bearer é".encode(), b"x" * 5000):
        assert lab01.client.get("/orders", headers={"Authorization": broken}).status_code == 401


def test_every_decision_is_audited_without_the_token(lab01: Lab) -> None:
    """The audit log names the actor and decision, and never holds a token."""
    token = lab01.users[0]["token"]
    lab01.defend(authorize=solution_authorize())
    lab01.client.get("/orders", headers={"Authorization": f"Bearer {token}"})
    lab01.client.get("/admin/users", headers={"Authorization": f"Bearer {token}"})
    events = lab01.audit()
    assert [(e["actor"], e["decision"]) for e in events[-2:]] == [
        ("alice", "allow"),
        ("alice", "deny"),
    ]
    assert token not in str(events)
    assert not FLAG.search(str(events))


# -- the defend cell's rules, each enforced by a row ---------------------------------------

PUBLIC = {("GET", "/health"), ("GET", "/products"), ("GET", "/products/{product_id}")}
PUBLIC_PATHS = {"/health", "/products"}


def _user_or_none(req):
    """req.identify(), with an outage as "no identity" (fail closed)."""
    try:
        return req.identify()
    except DependencyDown:
        return None


def _solution_with(*, before=None, on_outage=None):
    """The solution gate with one plausible mistake added in front or in its except clause."""
    right = solution_authorize()

    def authorize(req):
        if before is not None and before(req):
            return True
        try:
            req.identify()
        except DependencyDown:
            return bool(on_outage and on_outage(req))
        return right(req)

    return authorize


def _gate(*, public=lambda req: (req.method, req.route) in PUBLIC, roles=None):
    """A gate shaped like the solution: ``public(req)``, then identity, then ``roles``."""

    def default_roles(req, user):
        if req.route.startswith("/admin/"):
            return user["role"] == "admin"
        if req.route.startswith("/internal/"):
            return user["role"] in ("admin", "service")
        return True

    decide = roles or default_roles

    def authorize(req):
        if public(req):
            return True
        user = _user_or_none(req)
        return user is not None and bool(decide(req, user))

    return authorize


def returns_none_to_deny():
    right = solution_authorize()
    return lambda req: True if right(req) else None


def returns_the_user():
    """'Truthy means allowed': returns the user dict instead of True."""

    def authorize(req):
        if (req.method, req.route) in PUBLIC:
            return True
        user = _user_or_none(req)
        if user is not None and req.route.startswith(("/admin/", "/internal/")):
            return user["role"] in ("admin", "service") and (
                user["role"] == "admin" or req.route.startswith("/internal/")
            )
        return user  # a dict for anyone signed in: not a decision

    return authorize


def forgets_health():
    return _gate(public=lambda req: (req.method, req.route) in PUBLIC - {("GET", "/health")})


def public_by_route_any_method():
    return _gate(public=lambda req: req.route in {route for _, route in PUBLIC})


def public_by_path_prefix():
    return _gate(public=lambda req: req.path.startswith(("/health", "/products")))


def guest_checkout():
    return _gate(public=lambda req: (req.method, req.route) in PUBLIC | {("POST", "/orders")})


def admin_routes_for_staff():
    return _gate(
        roles=lambda req, user: (
            user["role"] in ("admin", "service")
            if req.route.startswith(("/admin/", "/internal/"))
            else True
        )
    )


def internal_for_service_only():
    return _gate(
        roles=lambda req, user: (
            user["role"] == "service"
            if req.route.startswith("/internal/")
            else (user["role"] == "admin" if req.route.startswith("/admin/") else True)
        )
    )


def internal_for_anyone_signed_in():
    return _gate(
        roles=lambda req, user: user["role"] == "admin" if req.route.startswith("/admin/") else True
    )


def keeps_customers_out():
    """A list of roles kept *out* of /internal: a role nobody planned for walks in."""
    return _gate(
        roles=lambda req, user: (
            user["role"] == "admin"
            if req.route.startswith("/admin/")
            else user["role"] != "customer"
            if req.route.startswith("/internal/")
            else True
        )
    )


def rest_for_customers_only():
    return _gate(
        roles=lambda req, user: (
            user["role"] == "admin"
            if req.route.startswith("/admin/")
            else user["role"] in ("admin", "service")
            if req.route.startswith("/internal/")
            else user["role"] == "customer"
        )
    )


def admins_by_name():
    admins = {"carol"}
    return _gate(
        roles=lambda req, user: (
            user["username"] in admins
            if req.route.startswith("/admin/")
            else user["username"] in admins | {"svc-frontend"}
            if req.route.startswith("/internal/")
            else True
        )
    )


def remembers_roles():
    """Caches each user's role the first time it sees them ("saves a lookup")."""
    seen: dict[str, str] = {}

    def roles(req, user):
        role = seen.setdefault(user["username"], user["role"])
        if req.route.startswith("/admin/"):
            return role == "admin"
        if req.route.startswith("/internal/"):
            return role in ("admin", "service")
        return True

    return _gate(roles=roles)


def internal_route_public():
    return _gate(
        public=lambda req: (req.method, req.route) in PUBLIC | {("GET", "/internal/export")}
    )


def internal_for_admin_only():
    return _gate(
        roles=lambda req, user: (
            user["role"] == "admin" if req.route.startswith(("/admin/", "/internal/")) else True
        )
    )


def trusts_x_internal():
    return _solution_with(before=lambda r: r.headers.get("x-internal") == "true")


def fails_open():
    return _solution_with(on_outage=lambda r: True)


def fails_open_on_reads():
    return _solution_with(on_outage=lambda r: r.method == "GET")


def denylist_of_every_route_today():
    """Lists every route it knows as protected, the unlisted invoice too; the rest is open."""
    known = {
        ("GET", "/me"),
        ("GET", "/orders"),
        ("POST", "/orders"),
        ("GET", "/orders/{order_id}"),
        ("GET", "/orders/{order_id}/invoice"),
        ("GET", "/internal/export"),
        ("GET", "/admin/users"),
        ("DELETE", "/admin/orders/{order_id}"),
    }
    right = solution_authorize()
    return lambda req: right(req) if (req.method, req.route) in known else True


def protects_known_prefixes():
    """Protects the prefixes it knows of; a brand-new /reports is open."""
    right = solution_authorize()
    prefixes = ("/me", "/orders", "/admin/", "/internal/")
    return lambda req: right(req) if req.route.startswith(prefixes) else True


def trusts_an_invented_header():
    return _solution_with(before=lambda r: r.headers.get("x-shop-staff") == "yes")


def asks_identity_first():
    """Asks the identity service before looking at the public list: an outage closes the shop."""
    right = solution_authorize()

    def authorize(req):
        try:
            req.identify()
        except DependencyDown:
            return False
        return right(req)

    return authorize


@dataclass(frozen=True)
class Rule:
    text: str  # the rule as the notebook (or a hint) states it
    row: str  # the grader row that enforces it
    wrong: Callable[[], Callable[..., Any]]  # makes the solution with this one rule broken


RULES = [
    Rule("Return True to let it through, False to deny", "read-all-orders", returns_none_to_deny),
    Rule("anything else (a user dict...) is your failure", "customer-works", returns_the_user),
    Rule(
        "GET /health, GET /products, GET /products/{id} are public",
        "public-catalogue",
        forgets_health,
    ),
    Rule(
        "an explicit allowlist of (method, route) pairs",
        "future-routes",
        public_by_route_any_method,
    ),
    Rule("nothing else is public, whatever its path", "future-routes", public_by_path_prefix),
    Rule("identity required everywhere else", "no-identity-sweep", guest_checkout),
    Rule(
        "identity required everywhere else: /internal too", "internal-export", internal_route_public
    ),
    Rule("/admin/... for admin", "wrong-role", admin_routes_for_staff),
    Rule("/internal/... for admin and service", "admin-works", internal_for_service_only),
    Rule(
        "/internal/... for admin and service (the service)",
        "service-export",
        internal_for_admin_only,
    ),
    Rule(
        "/internal/... for admin and service, and no other role", "wrong-role", keeps_customers_out
    ),
    Rule("/internal/... only for admin and service", "wrong-role", internal_for_anyone_signed_in),
    Rule("any signed-in user for the rest", "signed-in-users", rest_for_customers_only),
    Rule("decide by the role identify() returns, not by name", "new-admin", admins_by_name),
    Rule("the role it returns now: roles change", "demoted-admin", remembers_roles),
    Rule("no trust in client-supplied headers", "trusted-header", trusts_x_internal),
    Rule("fail closed: if identity cannot be established, deny", "fail-open", fails_open),
    Rule(
        "public routes need no identity, outage or not", "public-during-outage", asks_identity_first
    ),
    Rule(
        "write rules, not a list of today's routes", "future-routes", denylist_of_every_route_today
    ),
    Rule(
        "hint: start from return False, allow what you can name",
        "future-routes",
        protects_known_prefixes,
    ),
    Rule(
        "hint: public routes are a set of (req.method, req.route)",
        "future-routes",
        public_by_route_any_method,
    ),
    Rule("hint: on DependencyDown return False", "fail-open", fails_open_on_reads),
    Rule(
        "hint: let no header decide but the bearer token",
        "trusted-header",
        trusts_an_invented_header,
    ),
    Rule("hint: roles from this request, never a name", "new-admin", admins_by_name),
    Rule("hint: never a role remembered", "demoted-admin", remembers_roles),
    Rule("hint: name the roles let in", "wrong-role", keeps_customers_out),
]


def _fails_on(lab: Lab, wrong: Callable[..., Any], row: str) -> None:
    lab.defend(authorize=wrong)
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    failed = {failure.id for failure in caught.value.report.failures}
    assert row in failed, caught.value.report
    assert row in str(caught.value)


@pytest.mark.parametrize("rule", RULES, ids=[rule.text for rule in RULES])
def test_each_rule_of_the_defend_cell_is_enforced_by_its_row(lab01: Lab, rule: Rule) -> None:
    """The solution with exactly this rule broken fails the row that enforces the rule."""
    _fails_on(lab01, rule.wrong(), rule.row)


def test_every_row_enforces_a_rule_and_every_rule_has_a_row() -> None:
    """The rule map names only real rows, and every attack row has a rule behind it."""
    rows = {item.id for item in (*LESSON.attacks, *LESSON.checks)}
    assert {rule.row for rule in RULES} <= rows
    assert rows == {rule.row for rule in RULES}


# -- plausible wrong defenses, by class: each must be caught by the grader ----------------


def blocklist_instead_of_allowlist(req):
    """Protects the routes it remembers; everything else stays open."""
    if req.route.startswith(("/admin/", "/internal/")):
        user = _user_or_none(req)
        return user is not None and user["role"] in ("admin", "service")
    return True


def identity_without_roles(req):
    if (req.method, req.route) in PUBLIC:
        return True
    return _user_or_none(req) is not None


def crashes_on_anonymous(req):
    if (req.method, req.route) in PUBLIC:
        return True
    user = req.identify()
    return user["role"] in ("admin", "service", "customer")  # None["role"]: TypeError


def denies_everything(req):
    return False


def public_by_path_prefix_no_outage_handling(req):
    """Allowlists by raw path prefix, and forgets the outage."""
    if req.path.startswith(("/products", "/health")):
        return True
    user = req.identify()
    return user is not None and (not req.route.startswith("/admin/") or user["role"] == "admin")


def denylist_of_todays_routes(req):
    """Lists the documented routes as protected; a route it never heard of is open."""
    known = {
        ("GET", "/me"),
        ("GET", "/orders"),
        ("POST", "/orders"),
        ("GET", "/orders/{order_id}"),
        ("GET", "/internal/export"),
        ("GET", "/admin/users"),
        ("DELETE", "/admin/orders/{order_id}"),
    }
    if (req.method, req.route) not in known:
        return True
    return solution_authorize()(req)


def service_accounts_trusted(req):
    user = _user_or_none(req)
    if user is not None and user["role"] == "service":
        return True  # "it is our own frontend"
    return solution_authorize()(req)


def _trusts(condition):
    """The solution, but a request for which ``condition(req)`` holds is let in."""
    return _solution_with(before=condition)


def _role_from_header(req):
    """A real token, and the role from X-Role when the gateway 'adds' one."""
    user = _user_or_none(req)
    if user is not None and req.route.startswith("/admin/"):
        return user["role"] == "admin" or req.headers.get("X-Role", "") == "admin"
    return solution_authorize()(req)


def _user_from_header(req):
    """No token? The gateway's X-User names the caller; roles from a table of staff."""
    staff = {"carol": "admin", "svc-frontend": "service"}
    name = req.headers.get("x-user")
    if name in staff and _user_or_none(req) is None:
        prefix = "/admin/" if staff[name] == "admin" else "/internal/"
        return req.route.startswith(prefix) or not req.route.startswith(("/admin/", "/internal/"))
    return solution_authorize()(req)


def _path_from_x_original_url(req):
    """Behind a rewriting proxy, the 'real' path is in X-Original-URL."""
    path = req.headers.get("x-original-url", req.path)
    if path in PUBLIC_PATHS or path.startswith("/products/"):
        return True
    return solution_authorize()(req) if path == req.path else False


def _private_forwarded_for(req):
    forwarded = req.headers.get("x-forwarded-for", "")
    try:
        return ipaddress.ip_address(forwarded.split(",")[0].strip()).is_private
    except ValueError:
        return False


def _staff_header_by_iteration(req):
    return any(name.startswith("x-staff") and value for name, value in req.headers.items())


def _gateway_and_role(req):
    return req.headers.get("x-gateway") == "edge-7" and req.headers.get("x-role") in {"admin"}


def _copied_headers(req):
    copy = dict(req.headers)
    return copy.get("x-internal-call") == "1"


def _claims_header(req):
    """The gateway 'forwards the verified claims' as JSON in a header."""
    try:
        claims = json.loads(req.headers.get("x-claims", "{}"))
    except ValueError:
        return False
    return isinstance(claims, dict) and claims.get("role") == "admin"


def _trust_level(req):
    try:
        return int(req.headers.get("x-trust-level", "0")) >= 50
    except ValueError:
        return False


def _no_user_agent(req):
    """'Only our cron job sends no User-Agent.'"""
    return "user-agent" not in req.headers and not req.route.startswith("/me")


def _bob_from_the_office(req):
    """bob, on the office network, is staff."""
    user = _user_or_none(req)
    return (
        user is not None
        and user["username"] == "bob"
        and req.headers.get("x-forwarded-for", "").startswith("10.")
    )


def rides_out_outages():
    """Remembers who held each token, to keep serving them while identity is down."""
    known: dict[str, dict] = {}
    right = solution_authorize()

    def authorize(req):
        token = req.headers.get("authorization", "")
        try:
            user = req.identify()
        except DependencyDown:
            user = known.get(token)
            if user is None:
                return (req.method, req.route) in PUBLIC
            return not req.route.startswith(("/admin/", "/internal/")) or user["role"] == "admin"
        if user is not None:
            known[token] = user
        return right(req)

    return authorize


KEYS = {"k3y-2024-a", "k3y-2024-b"}

WRONG_DEFENSES = {
    # identity or privilege from a client-writable header
    "still trusts X-Internal": (trusts_x_internal(), "trusted-header"),
    "trusts X-Internal only on /internal": (
        _trusts(
            lambda r: r.route.startswith("/internal/") and r.headers.get("x-internal") == "true"
        ),
        "trusted-header",
    ),
    "trusts loopback X-Forwarded-For outside /admin": (
        _trusts(
            lambda r: (
                r.headers.get("x-forwarded-for", "").startswith("127.")
                and not r.route.startswith("/admin")
            )
        ),
        "trusted-header",
    ),
    "trusts private-network X-Forwarded-For": (
        _trusts(lambda r: r.headers.get("x-forwarded-for", "").startswith(("10.", "192.168."))),
        "trusted-header",
    ),
    "trusts an X-User-Role header": (
        _trusts(lambda r: r.headers.get("x-user-role") == "admin"),
        "trusted-header",
    ),
    "trusts a header the grader never heard of": (trusts_an_invented_header(), "trusted-header"),
    "trusts a hard-coded gateway value": (
        _trusts(lambda r: r.headers.get("x-api-gateway", "").lower() == "verified-by-edge"),
        "trusted-header",
    ),
    "trusts a header holding one of two hard-coded keys": (
        _trusts(lambda r: r.headers.get("x-internal-key") in KEYS),
        "trusted-header",
    ),
    "trusts a header only while identity is down": (
        _solution_with(on_outage=lambda r: r.headers.get("x-internal", "") == "true"),
        "trusted-header",
    ),
    "trusts a header only for GET": (
        _trusts(lambda r: r.method == "GET" and r.headers.get("x-readonly-internal") == "on"),
        "trusted-header",
    ),
    "presence of a header is enough": (
        _trusts(lambda r: "x-internal" in r.headers),
        "trusted-header",
    ),
    "capitalised lookup, capitalised value": (
        _trusts(lambda r: r.headers.get("X-Internal") == "True"),
        "trusted-header",
    ),
    "role from X-Role on top of a real token": (_role_from_header, "trusted-header"),
    "identity from X-User when no token came": (_user_from_header, "trusted-header"),
    "path from X-Original-URL": (_path_from_x_original_url, "trusted-header"),
    "private address parsed from X-Forwarded-For": (
        _trusts(_private_forwarded_for),
        "trusted-header",
    ),
    "last X-Forwarded-For hop is loopback": (
        _trusts(
            lambda r: (
                r.headers.get("x-forwarded-for", "").split(",")[-1].strip() in ("::1", "127.0.0.1")
            )
        ),
        "trusted-header",
    ),
    "Forwarded: for=127.0.0.1": (
        _trusts(lambda r: "for=127.0.0.1" in r.headers.get("forwarded", "")),
        "trusted-header",
    ),
    "a header found by iterating the mapping": (
        _trusts(_staff_header_by_iteration),
        "trusted-header",
    ),
    "two headers together (gateway and role)": (_trusts(_gateway_and_role), "trusted-header"),
    "a header read from a copy of the mapping": (_trusts(_copied_headers), "trusted-header"),
    "verified claims as JSON in a header": (_trusts(_claims_header), "trusted-header"),
    "a numeric trust level in a header": (_trusts(_trust_level), "trusted-header"),
    "no User-Agent means our own cron job": (_trusts(_no_user_agent), "trusted-header"),
    "one user, trusted from an office address": (_trusts(_bob_from_the_office), "trusted-header"),
    "a header value within a string of allowed ones": (
        _trusts(lambda r: r.headers.get("x-env", "prod") in "staging,internal-ci"),
        "trusted-header",
    ),
    "a secret compared as bytes": (
        _trusts(lambda r: r.headers.get("x-ops", "").encode() == b"ops-override-7"),
        "trusted-header",
    ),
    "Host says localhost": (
        _trusts(
            lambda r: r.headers.get("host", "").split(":")[0] in ("localhost", "internal.shop")
        ),
        "trusted-header",
    ),
    "User-Agent of our own frontend": (
        _trusts(lambda r: r.headers.get("user-agent", "").startswith("shop-frontend/")),
        "trusted-header",
    ),
    "a role in a cookie": (
        _trusts(lambda r: "role=admin" in r.headers.get("cookie", "")),
        "trusted-header",
    ),
    "a backdoor Authorization value": (
        _trusts(lambda r: r.headers.get("authorization") == "Bearer let-me-in-2024"),
        "trusted-header",
    ),
    "any Basic Authorization 'was checked upstream'": (
        _trusts(lambda r: r.headers.get("authorization", "").startswith("Basic ")),
        "trusted-header",
    ),
    # deny by default, identity, roles
    "guest checkout": (guest_checkout(), "no-identity-sweep"),
    "blocklist instead of allowlist": (blocklist_instead_of_allowlist, "read-all-orders"),
    "denylist of today's routes": (denylist_of_todays_routes, "no-identity-sweep"),
    "denylist of every route, the unlisted one too": (
        denylist_of_every_route_today(),
        "future-routes",
    ),
    "protects the prefixes it knows": (protects_known_prefixes(), "future-routes"),
    "public by route, any method": (public_by_route_any_method(), "future-routes"),
    "public by path prefix": (public_by_path_prefix(), "future-routes"),
    "identity without roles": (identity_without_roles, "wrong-role"),
    "service accounts trusted everywhere": (service_accounts_trusted, "wrong-role"),
    "admin and service at /admin": (admin_routes_for_staff(), "wrong-role"),
    "/internal for the service only": (internal_for_service_only(), "admin-works"),
    "the rest for customers only": (rest_for_customers_only(), "signed-in-users"),
    "admins by name": (admins_by_name(), "new-admin"),
    "roles kept out instead of roles let in": (keeps_customers_out(), "wrong-role"),
    "roles remembered from the first request": (remembers_roles(), "demoted-admin"),
    "crashes on anonymous": (crashes_on_anonymous, "read-all-orders"),
    "returns None to deny": (returns_none_to_deny(), "read-all-orders"),
    "returns the user for 'allowed'": (returns_the_user(), "customer-works"),
    "denies everything": (denies_everything, "customer-works"),
    # failing open
    "fails open on outage": (fails_open(), "fail-open"),
    "fails open for anyone who sent a token": (
        _solution_with(
            on_outage=lambda r: (
                "authorization" in r.headers and not r.route.startswith(("/admin", "/internal"))
            )
        ),
        "fail-open",
    ),
    "fails open on harmless reads": (
        _solution_with(on_outage=lambda r: r.route in ("/me", "/orders/{order_id}")),
        "fail-open",
    ),
    "fails open on every GET": (fails_open_on_reads(), "fail-open"),
    "remembers identities to ride out an outage": (rides_out_outages(), "fail-open"),
    "public by path prefix, no outage handling": (
        public_by_path_prefix_no_outage_handling,
        "fail-open",
    ),
    "asks identity before the public list": (asks_identity_first(), "public-during-outage"),
}


@pytest.mark.parametrize("mistake", list(WRONG_DEFENSES))
def test_the_grader_catches_a_plausible_wrong_defense(lab01: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names the mistake."""
    wrong, row = WRONG_DEFENSES[mistake]
    _fails_on(lab01, wrong, row)


# -- right defenses, written differently, all pass ----------------------------------------


def right_by_path_prefixes(req):
    """Roles by req.path rather than req.route, a frozenset, a match statement."""
    if (req.method, req.route) in frozenset(PUBLIC):
        return True
    user = _user_or_none(req)
    if user is None:
        return False
    match req.path.split("/")[1]:
        case "admin":
            return user["role"] == "admin"
        case "internal":
            return user["role"] in {"admin", "service"}
        case _:
            return True


def right_but_reads_headers(req):
    """Refuses a request that claims to be internal, logs the client's address: harmless."""
    if "x-internal" in req.headers or req.headers.get("X-Forwarded-For", "").startswith("127."):
        return False
    _ = dict(req.headers), len(req.headers)
    if not req.headers.get("authorization", "").lower().startswith("bearer "):
        return (req.method, req.route) in PUBLIC
    return solution_authorize()(req)


async def right_async(req):
    return solution_authorize()(req)


RIGHT_DEFENSES = {
    "the solution": solution_authorize,
    "by path segment, with match": lambda: right_by_path_prefixes,
    "reads headers without trusting them": lambda: right_but_reads_headers,
    "async def": lambda: right_async,
}


@pytest.mark.parametrize("defense", list(RIGHT_DEFENSES))
def test_a_right_defense_written_another_way_passes(lab01: Lab, defense: str) -> None:
    """The grader judges behaviour, not style: each of these passes every row."""
    lab01.defend(authorize=RIGHT_DEFENSES[defense]())
    assert lab01.grade().passed


def test_grading_puts_the_roles_back(lab01: Lab) -> None:
    """The rows that promote bob and demote carol restore both, whatever the verdict."""
    lab01.defend(authorize=solution_authorize())
    lab01.grade()
    roles = {u["username"]: u["role"] for u in lab01.state.store.query("SELECT * FROM users")}
    assert roles["bob"] == "customer" and roles["carol"] == "admin"


# -- a decision is True or False ------------------------------------------------------------


def test_a_hook_that_returns_something_else_is_a_500_naming_what_came_back(lab01: Lab) -> None:
    """Hook(returns=bool): None is not a denial but the hook's failure, and the row says so."""
    lab01.defend(authorize=returns_none_to_deny())
    response = lab01.client.get("/orders")
    assert response.status_code == 500
    assert "returned NoneType None" in response.json()["detail"]
    with pytest.raises(DefenseBreached) as caught:
        lab01.grade()
    row = next(r for r in caught.value.report.failures if r.id == "read-all-orders")
    assert "it must return True or False" in row.observed


def test_a_truthy_answer_is_not_a_permission(lab01: Lab) -> None:
    """A user dict or 1 is refused with a 500 too: only True lets a request through."""
    for answer in ({"username": "alice"}, 1, "yes"):
        lab01.defend(authorize=lambda req, answer=answer: answer)
        response = lab01.client.get("/orders")
        assert response.status_code == 500
        assert "must return True or False" in response.json()["detail"]
        assert "flag" not in response.text


# -- hostile input: a 4xx, never a 500 -----------------------------------------------------

BIG = str(2**64)
HOSTILE = [  # method, url, extra headers, raw body
    ("GET", f"/orders/{BIG}", {}, None),
    ("GET", f"/orders/-{BIG}", {}, None),
    ("GET", f"/orders/{2**63}", {}, None),
    ("GET", "/orders/0", {}, None),
    ("GET", "/orders/1e3", {}, None),
    ("GET", "/orders/%ED%A0%80", {}, None),
    ("GET", "/orders/1%00", {}, None),
    ("GET", "/orders/\u0661", {}, None),
    ("GET", f"/orders/{BIG}/invoice", {}, None),
    ("DELETE", f"/admin/orders/{BIG}", {}, None),
    ("DELETE", "/admin/orders/-1", {}, None),
    ("GET", f"/products/{BIG}", {}, None),
    ("GET", "/products/%F0%9F%98%80", {}, None),
    ("GET", f"/orders?product_id={BIG}&x=%ED%A0%80", {}, None),
    ("POST", "/orders", {}, f'{{"product_id": {BIG}}}'),
    ("POST", "/orders", {}, f'{{"product_id": 1, "quantity": {BIG}}}'),
    ("POST", "/orders", {}, '{"product_id": 1, "quantity": -5}'),
    ("POST", "/orders", {}, '{"product_id": 1e308}'),
    ("POST", "/orders", {}, '{"product_id": NaN}'),
    ("POST", "/orders", {}, '{"product_id": Infinity}'),
    ("POST", "/orders", {}, '{"product_id": "\\ud800"}'),
    ("POST", "/orders", {}, '{"product_id": 1, "\\udc80": "\\ud800"}'),
    ("POST", "/orders", {}, '{"product_id": 1, "product_id": 2, "product_id": "x"}'),
    ("POST", "/orders", {}, "[" * 50_000 + "]" * 50_000),
    ("POST", "/orders", {}, '{"product_id": ' + "[" * 5_000 + "]" * 5_000 + "}"),
    ("POST", "/orders", {}, '{"product_id": 1, "note": "' + "x" * 3_000_000 + '"}'),
    ("POST", "/orders", {}, '[{"product_id": 1}]'),
    ("POST", "/orders", {}, '"product_id"'),
    ("POST", "/orders", {}, "null"),
    ("POST", "/orders", {}, '{"product_id": true}'),
    ("POST", "/orders", {}, '{"product_id": {"$gt": 0}}'),
    ("POST", "/orders", {}, b'{"product_id": "\xff\xfe"}'),
    ("POST", "/orders", {}, ""),
    ("POST", "/orders", {"Content-Type": "text/plain"}, '{"product_id": 1}'),
    ("GET", "/orders", {"X-Forwarded-For": b"\xff\xfe"}, None),
    ("GET", "/orders", {"X-Internal": "é".encode()}, None),
    ("GET", "/admin/users", {"X-Internal": "x" * 8_000}, None),
    ("GET", "/me", {f"X-Junk-{i}": str(i) for i in range(90)}, None),
    ("PURGE", "/orders", {}, None),
]


@pytest.mark.parametrize("defense", ["weak", "solution"])
@pytest.mark.parametrize("who", [None, "alice", "carol"])
def test_hostile_input_gets_a_4xx_never_a_500(lab01: Lab, defense: str, who: str | None) -> None:
    """Huge integers, lone surrogates, deep or duplicate JSON, odd types, in paths, queries,
    headers and bodies: the lab answers each with a 4xx (or a 2xx), never a server error."""
    if defense == "solution":
        lab01.defend(authorize=solution_authorize())
    tokens = {user["username"]: user["token"] for user in lab01.users}
    errors = []
    for method, url, extra, body in HOSTILE:
        headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
        headers.update(extra)
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        response = lab01.client.request(method, url, headers=headers, content=body)
        if response.status_code >= 500:
            errors.append(f"{method} {url[:40]} {str(body)[:40]}: {response.status_code}")
    assert not errors


def test_hostile_authorization_headers_are_a_401(lab01: Lab) -> None:
    """A broken or binary bearer token is no identity, with the weak gate or the solution."""
    for broken in (
        b"Bearer",
        b"Basic YWxpY2U6eA==",
        "Bearer é".encode(),
        b"Bearer \xff",
        b"x" * 5000,
    ):
        headers = {"Authorization": broken}
        assert lab01.client.get("/admin/users", headers=headers).status_code == 401
    lab01.defend(authorize=solution_authorize())
    for broken in (b"Bearer \xff\xfe", b"Bearer " + b"9" * 4000, b"bearer x y"):
        assert lab01.client.get("/orders", headers={"Authorization": broken}).status_code == 401


# -- what the hook sees of the headers ----------------------------------------------------


def test_hook_headers_are_case_insensitive_read_only_and_join_repeated_fields() -> None:
    """RFC 9110 §5.1 and §5.3: any case finds a field; a repeated field is one joined value."""
    headers = WatchedHeaders([("X-Forwarded-For", "10.0.0.1"), ("x-forwarded-for", "127.0.0.1")])
    assert headers["X-FORWARDED-FOR"] == "10.0.0.1, 127.0.0.1"
    assert "x-Forwarded-For" in headers and headers.get("nope") is None
    assert type(headers["x-forwarded-for"]) is str  # outside grading: plain strings
    with pytest.raises(TypeError):
        headers["x-internal"] = "true"  # type: ignore[index]


def test_while_watched_the_hook_headers_note_what_is_read_and_compared() -> None:
    """Lookups, whole-mapping reads and the strings values are compared with are all noted."""
    reads = HeaderReads()
    with reads.watching():
        headers = WatchedHeaders([("X-Role", " Admin ")], reads)
        headers.get("X-Gateway")
        assert headers["x-role"].strip().lower() == "admin"
        assert headers["x-role"].startswith((" Ops", " Adm"))
        assert headers["x-role"] not in ("staff",)
        assert any(name == "x-role" for name in headers)
    assert set(reads.fields) == {"x-gateway", "x-role", EVERY_FIELD}
    assert {"admin", " Ops", " Adm", "staff"} <= set(reads.targets["x-role"])
    assert reads.targets[FIELD_NAMES] == ["x-role"]
    assert not reads.active


def test_the_grader_reads_the_strings_in_the_learner_code() -> None:
    """Constants in the hook, its closures and the globals it names are candidate values."""
    found = learner_strings(_trusts(lambda r: r.headers.get("x-internal-key") in KEYS))
    assert {"x-internal-key", "k3y-2024-a", "k3y-2024-b"} <= set(found)
    assert learner_strings(weak_authorize) == []  # the course's own code holds no secrets


# -- the rows name the cause: the hook, the direction, the fix -----------------------------


def _failed_rows(lab: Lab, wrong: Callable[..., Any]) -> dict[str, Any]:
    lab.defend(authorize=wrong)
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    return {row.id: row for row in caught.value.report.failures}


def test_a_gate_that_crashes_without_a_token_is_told_to_test_for_none(lab01: Lab) -> None:
    """user["role"] on None: the row shows the 500 and the learner's line, then the fix."""
    rows = _failed_rows(lab01, crashes_on_anonymous)
    row = rows["read-all-orders"]
    assert "server error (HTTP 500): GET /orders (with no token)" in row.observed
    assert "authorize() raised: TypeError" in row.observed and "at line" in row.observed
    assert row.hint.startswith("your hook must return an answer")
    assert "authorize() must return False here" in row.hint
    assert "req.identify() returned None" in row.hint and "Test for None" in row.hint


def test_an_uncaught_outage_is_told_to_fail_closed(lab01: Lab) -> None:
    """DependencyDown left to escape: the rows say where (an outage) and what to do."""
    rows = _failed_rows(lab01, public_by_path_prefix_no_outage_handling)
    fail_open = rows["fail-open"]
    assert "during the identity outage" in fail_open.observed
    assert "authorize() raised: DependencyDown" in fail_open.observed
    assert "authorize() must fail closed" in fail_open.hint
    assert "Catch it and return False" in fail_open.hint
    header = rows["trusted-header"]  # the same crash, met before any header was spoofed
    assert "as alice during the identity outage, before any header was spoofed" in header.observed


def test_a_gate_that_grants_too_much_is_told_which_role_rule(lab01: Lab) -> None:
    """Identity without roles: the row says it got through, and which roles are let in."""
    row = _failed_rows(lab01, identity_without_roles)["wrong-role"]
    assert row.observed.startswith("got through (HTTP 200): GET /internal/export (as bob)")
    assert row.hint.startswith("authorize() must return False here: identity is not enough")
    assert "/admin/... needs role admin; /internal/... admin or service" in row.hint


def test_a_gate_that_denies_too_much_is_told_so_row_by_row(lab01: Lab) -> None:
    """Denying everything: every legitimate row says 'denied too much' and what to allow."""
    rows = _failed_rows(lab01, denies_everything)
    legit = [row for row in rows.values() if row.kind == "legit"]
    assert len(legit) == len(LESSON.checks)
    assert all(row.hint.startswith("authorize() denied too much: ") for row in legit)
    public = rows["public-catalogue"]
    assert public.observed == "refused (HTTP 401): GET /health with no token"
    assert "GET /products/{product_id} are public" in public.hint


def test_asking_identity_before_the_public_list_is_told_to_answer_public_routes_first(
    lab01: Lab,
) -> None:
    row = _failed_rows(lab01, asks_identity_first())["public-during-outage"]
    assert "GET /products/2 with alice's token during the identity outage" in row.observed
    assert "denied too much" in row.hint and "before asking req.identify()" in row.hint


def test_a_trusted_header_row_names_the_header_and_who_writes_it(lab01: Lab) -> None:
    row = _failed_rows(lab01, trusts_x_internal())["trusted-header"]
    assert "with x-internal: true (refused otherwise)" in row.observed
    assert row.hint.startswith("authorize() must not let a header the client writes decide")


# -- a real-looking world ----------------------------------------------------------------


def test_real_users_send_the_user_agent_of_their_own_software(lab01: Lab) -> None:
    """The legitimate rows look like alice's phone app and the frontend's server, not a
    script; only the attacks send httpx's own User-Agent."""
    seen: dict[str | None, set[str]] = {}
    right = solution_authorize()

    def recording(req):
        user = _user_or_none(req)
        seen.setdefault(user and user["username"], set()).add(req.headers.get("user-agent", ""))
        return right(req)

    lab01.defend(authorize=recording)
    for check in LESSON.checks:
        assert run_item(lab01, check).passed, check.id
    for username, agent in USER_AGENTS.items():
        assert seen[username] == {agent}
    assert VISITOR in seen[None]
    assert not any("python-httpx" in agent for agents in seen.values() for agent in agents)


def test_the_gateway_mark_is_in_the_lab_not_in_the_exercise(lab01: Lab) -> None:
    """Discovery: the lab's own API document leaks the header; the exercise text does not."""
    document = lab01.client.get("/openapi.json").json()
    assert "X-Internal: true" in document["paths"]["/admin/users"]["get"]["description"]
    nb = nbformat.read(ROOT / "notebooks" / LESSON.notebook, as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Attack 3"))
    end = next(i for i, c in enumerate(nb.cells) if c.source.startswith("# Grader: attack 3"))
    text = "\n".join(cell.source for cell in nb.cells[start:end]).lower()
    assert "x-internal" not in text and "x-forwarded-for" not in text


def test_the_uvicorn_proxy_defaults_the_notebook_states(monkeypatch) -> None:
    """Lesson 01 says: proxy_headers on, forwarded_allow_ips "127.0.0.1,::1" (since 0.53.0)."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    config = uvicorn.Config("app:app")
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == "127.0.0.1,::1"
    nb = nbformat.read(ROOT / "solutions" / LESSON.notebook, as_version=4)
    text = " ".join(" ".join(cell.source for cell in nb.cells).split())
    assert "`127.0.0.1,::1` since uvicorn 0.53.0" in text
    assert "up to 0.52 the fallback was `127.0.0.1` alone" in text
