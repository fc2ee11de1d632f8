"""Lesson 01: every attack breaches the weak gate; the solution stops all; wrong gates fail."""

from __future__ import annotations

import re

import pytest

from labapp import DefenseBreached, DependencyDown, Lab
from labapp.lessons.l01_unprotected import LESSON
from tests.conftest import solution_namespace

FLAG = re.compile(r"FLAG\{01-unprotected:[\w-]+:[0-9a-f]{32}\}")


def solution_authorize():
    """The `authorize` the solution notebook shows."""
    return solution_namespace(
        "01-unprotected-endpoints.ipynb", "authorize", DependencyDown=DependencyDown
    )["authorize"]


def _row(lab: Lab, attack_id: str):
    attack = next(a for a in LESSON.attacks if a.id == attack_id)
    from labapp.engine.grading import run_item

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


# -- plausible wrong defenses: each must be caught by the grader --------------------------

PUBLIC = {("GET", "/health"), ("GET", "/products"), ("GET", "/products/{product_id}")}


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


def blocklist_instead_of_allowlist(req):
    """Protects the routes it remembers; everything else stays open."""
    if req.route.startswith(("/admin/", "/internal/")):
        try:
            user = req.identify()
        except DependencyDown:
            return False
        return user is not None and user["role"] in ("admin", "service")
    return True


def identity_without_roles(req):
    if (req.method, req.route) in PUBLIC:
        return True
    try:
        return req.identify() is not None
    except DependencyDown:
        return False


def crashes_on_anonymous(req):
    if (req.method, req.route) in PUBLIC:
        return True
    user = req.identify()
    return user["role"] in ("admin", "service", "customer")  # None["role"]: TypeError


def denies_everything(req):
    return False


def public_by_path_prefix(req):
    """Allowlists by raw path prefix, and forgets the outage."""
    if req.path.startswith(("/products", "/health")):
        return True
    user = req.identify()
    return user is not None and (not req.route.startswith("/admin/") or user["role"] == "admin")


def denylist_of_todays_routes(req):
    """Lists every route it knows as protected; a route it never heard of is open."""
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
    try:
        user = req.identify()
    except DependencyDown:
        return False
    if user is not None and user["role"] == "service":
        return True  # "it is our own frontend"
    return solution_authorize()(req)


WRONG_DEFENSES = {
    "still trusts X-Internal": (
        _solution_with(before=lambda r: r.headers.get("x-internal") == "true"),
        "trusted-header",
    ),
    "trusts X-Internal only on /internal": (
        _solution_with(
            before=lambda r: (
                r.route.startswith("/internal/") and r.headers.get("x-internal") == "true"
            )
        ),
        "trusted-header",
    ),
    "trusts loopback X-Forwarded-For outside /admin": (
        _solution_with(
            before=lambda r: (
                r.headers.get("x-forwarded-for", "").startswith("127.")
                and not r.route.startswith("/admin")
            )
        ),
        "trusted-header",
    ),
    "trusts private-network X-Forwarded-For": (
        _solution_with(
            before=lambda r: r.headers.get("x-forwarded-for", "").startswith(("10.", "192.168."))
        ),
        "trusted-header",
    ),
    "trusts an X-User-Role header": (
        _solution_with(before=lambda r: r.headers.get("x-user-role") == "admin"),
        "trusted-header",
    ),
    "guest checkout": (
        _solution_with(before=lambda r: (r.method, r.route) == ("POST", "/orders")),
        "no-identity-sweep",
    ),
    "fails open on outage": (_solution_with(on_outage=lambda r: True), "fail-open"),
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
    "blocklist instead of allowlist": (blocklist_instead_of_allowlist, "read-all-orders"),
    "denylist of today's routes": (denylist_of_todays_routes, "no-identity-sweep"),
    "identity without roles": (identity_without_roles, "wrong-role"),
    "service accounts trusted everywhere": (service_accounts_trusted, "wrong-role"),
    "crashes on anonymous": (crashes_on_anonymous, "read-all-orders"),
    "denies everything": (denies_everything, "customer-works"),
    "public by path prefix, no outage handling": (public_by_path_prefix, "fail-open"),
}


@pytest.mark.parametrize("mistake", list(WRONG_DEFENSES))
def test_the_grader_catches_a_plausible_wrong_defense(lab01: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names the mistake."""
    wrong, row = WRONG_DEFENSES[mistake]
    lab01.defend(authorize=wrong)
    with pytest.raises(DefenseBreached) as caught:
        lab01.grade()
    failed = {failure.id for failure in caught.value.report.failures}
    assert row in failed
    assert row in str(caught.value)
