"""Lesson 06: every attack breaches the weak API; the solution stops all; wrong policies fail."""

from __future__ import annotations

import re

import pytest

from labapp import DefenseBreached, DependencyDown, Lab
from labapp.engine.grading import grader_client, run_item
from labapp.lessons.common import session_token
from labapp.lessons.l06_least_privilege import LESSON
from labapp.lessons.l06_least_privilege.hooks import Who
from labapp.lessons.l06_least_privilege.matrix import matrix, render
from tests.conftest import solution_namespace

FLAG = re.compile(r"FLAG\{06-least-privilege:[\w-]+:[0-9a-f]{32}\}")
HOOKS = ("permitted", "invoice_filter", "public_fields", "accepted_fields", "grant_scopes")


def solution() -> dict:
    """The five hooks the solution notebook defines."""
    namespace = solution_namespace(
        "06-least-privilege.ipynb", "permitted", DependencyDown=DependencyDown
    )
    return {name: namespace[name] for name in HOOKS}


def _as(lab: Lab, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(lab.state, username)}"}


@pytest.mark.parametrize("attack", [a.id for a in LESSON.attacks])
def test_each_attack_breaches_the_weak_api(lab06: Lab, attack: str) -> None:
    """Against the shipped hooks, every attack of the lesson gets through."""
    item = next(a for a in LESSON.attacks if a.id == attack)
    assert not run_item(lab06, item).passed


def test_reading_another_users_invoice_reveals_the_bola_flag(lab06: Lab) -> None:
    """Vera changes the id in the URL and reads eddie's invoice."""
    body = lab06.client.get("/invoices/3", headers=_as(lab06, "vera")).json()
    assert body["owner"] == "eddie"
    lab06.check_flag("bola", body["flags"]["bola"])


def test_a_viewer_deleting_an_account_reveals_the_bfla_flag(lab06: Lab) -> None:
    """The admin route the UI hides answers a viewer, and the account is really gone."""
    body = lab06.client.delete("/admin/users/5", headers=_as(lab06, "vera")).json()
    assert lab06.store.one("SELECT id FROM users WHERE id = 5") is None
    lab06.check_flag("bfla", body["flags"]["bfla"])


def test_patching_your_own_role_reveals_the_mass_assignment_flag(lab06: Lab) -> None:
    """PATCH /me binds role, and the stored role really changes."""
    body = lab06.client.patch("/me", headers=_as(lab06, "eddie"), json={"role": "admin"}).json()
    assert lab06.store.one("SELECT role FROM users WHERE username = 'eddie'")["role"] == "admin"
    lab06.check_flag("mass-assignment", body["flags"]["mass-assignment"])


def test_a_password_hash_in_a_response_reveals_the_data_exposure_flag(lab06: Lab) -> None:
    """GET /me sends the password hash the client was trusted to hide."""
    body = lab06.client.get("/me", headers=_as(lab06, "vera")).json()
    assert body["password_hash"].startswith("$argon2id$")
    lab06.check_flag("data-exposure", body["flags"]["data-exposure"])


def test_asking_for_an_admin_scope_reveals_the_scope_escalation_flag(lab06: Lab) -> None:
    """The token endpoint grants a viewer users:admin because she asked."""
    response = lab06.client.post(
        "/oauth/token", headers=_as(lab06, "vera"), json={"scope": "users:admin"}
    )
    assert response.json()["scope"] == "users:admin"
    lab06.check_flag("scope-escalation", response.json()["flags"]["scope-escalation"])


def test_a_permissions_outage_reveals_the_fail_open_flag(lab06: Lab) -> None:
    """While who.role() raises, the weak policy allows vera into eddie's invoice."""
    with lab06.outage("permissions"):
        body = lab06.client.get("/invoices/3", headers=_as(lab06, "vera")).json()
    lab06.check_flag("fail-open", body["flags"]["fail-open"])


def test_legitimate_use_earns_no_flag(lab06: Lab) -> None:
    """Roles doing their own work see no flag, even with the weak policy, and during an outage."""
    hooks = solution()
    lab06.defend(public_fields=hooks["public_fields"], invoice_filter=hooks["invoice_filter"])
    calls = [
        ("vera", "GET", "/invoices", None),
        ("vera", "GET", "/invoices/1", None),
        ("eddie", "PATCH", "/invoices/3", {"memo": "ok"}),
        ("sam", "GET", "/invoices/3", None),
        ("sam", "GET", "/admin/users", None),
        ("svc-billing", "GET", "/invoices", None),
        ("ada", "DELETE", "/admin/users/5", None),
        ("ada", "POST", "/oauth/token", {"scope": "users:admin invoices:write"}),
    ]
    for username, method, url, body in calls:
        response = lab06.client.request(method, url, headers=_as(lab06, username), json=body)
        assert response.is_success and "flags" not in response.json(), (username, url)
    with lab06.outage("permissions"):
        response = lab06.client.get("/invoices/1", headers=_as(lab06, "vera"))
    assert response.is_success and "flags" not in response.json()


def test_the_solution_stops_every_attack_and_passes_the_matrix_twice(lab06: Lab) -> None:
    """The solution notebook's hooks pass every row, and a second grade agrees."""
    lab06.defend(**solution())
    for _ in range(2):
        report = lab06.grade()
        assert report.passed
        assert len(report.rows) == len(LESSON.attacks) + len(LESSON.checks)


def test_the_defended_api_hides_others_invoices_and_refuses_functions(lab06: Lab) -> None:
    """404 for someone else's invoice, 403 for an admin function, insufficient_scope."""
    lab06.defend(**solution())
    vera = _as(lab06, "vera")
    assert lab06.client.get("/invoices/3", headers=vera).status_code == 404
    assert lab06.client.get("/invoices/999", headers=vera).status_code == 404
    assert lab06.client.delete("/admin/users/5", headers=vera).status_code == 403
    assert lab06.client.patch("/me", headers=vera, json={"role": "admin"}).status_code == 422
    token = lab06.client.post("/oauth/token", headers=vera, json={"scope": "invoices:read"})
    narrow = {"Authorization": f"Bearer {token.json()['access_token']}"}
    refused = lab06.client.get("/me", headers=narrow)
    assert refused.status_code == 403
    assert 'error="insufficient_scope", scope="profile"' in refused.headers["www-authenticate"]
    assert lab06.client.get("/invoices").status_code == 401


def test_the_matrix_renders_every_cell_and_marks_mismatches(lab06: Lab) -> None:
    """Against the weak API the table marks the viewer's delete; defended, it marks nothing."""
    with grader_client(lab06.url) as http:
        weak = render(matrix(lab06, http))
        lab06.defend(**solution())
        strong = render(matrix(lab06, http))
    assert re.search(r"✗\s+viewer\s+DELETE /admin/users/\{id\}\s+other\s+deny\s+allow", weak)
    assert "✗" not in strong and strong.count("\n") == weak.count("\n")


def test_every_decision_is_audited_without_the_token(lab06: Lab) -> None:
    """The audit log names actor and decision, and never holds a token or a flag."""
    lab06.defend(**solution())
    vera = _as(lab06, "vera")
    lab06.client.get("/invoices/1", headers=vera)
    lab06.client.get("/invoices/3", headers=vera)
    events = lab06.audit()
    assert [(e["actor"], e["decision"]) for e in events[-2:]] == [
        ("vera", "allow"),
        ("vera", "deny"),
    ]
    assert vera["Authorization"].split()[1] not in str(events)
    assert not FLAG.search(str(events))


def test_a_hook_returning_the_wrong_type_is_a_named_500(lab06: Lab) -> None:
    """A public_fields that returns a string is a server error the report names."""
    lab06.defend(public_fields=lambda kind, role: "id")
    assert lab06.client.get("/me", headers=_as(lab06, "vera")).status_code == 500
    with pytest.raises(DefenseBreached, match="public_fields"):
        lab06.grade()


# -- plausible wrong defenses: each must be caught by the grader --------------------------


def _with(**changes) -> dict:
    return {**solution(), **changes}


def _policy_with(extra: dict[str, dict[str, str]] | None = None, *, fail_open=False):
    """The solution's permitted() over a changed table, or failing open."""
    hooks = solution()
    right = hooks["permitted"]
    table = {role: dict(actions) for role, actions in right.__globals__["POLICY"].items()}
    for role, actions in (extra or {}).items():
        table[role] = {**table.get(role, {}), **actions}

    def permitted(who, action, owns):
        try:
            role = who.role()
        except DependencyDown:
            return fail_open
        reach = table.get(role, {}).get(action)
        return reach == "any" or (reach == "own" and owns)

    return permitted


def _roles_cached_per_user():
    """The solution's policy, but each user's role is looked up once and remembered."""
    right = solution()["permitted"]
    roles: dict[str, str] = {}

    def permitted(who, action, owns):
        role = roles.setdefault(who.username, who.role())  # "spare the permissions service"
        return right(Who(who.username, lambda: role), action, owns)

    return permitted


def fields_filtered_for_users_only(kind, role):
    """Hides the password hash, forgets invoices' internal note."""
    if kind == "user":
        return {"id", "username", "display_name", "role", "email"}
    return {"id", "owner", "amount_cents", "status", "memo", "internal_note"}


def admins_see_everything(kind, role):
    if role == "admin":
        return {"id", "username", "display_name", "role", "email", "password_hash", "owner"} | {
            "amount_cents",
            "status",
            "memo",
            "internal_note",
        }
    return solution()["public_fields"](kind, role)


def _string_built_filter(user):
    """Ownership in the query, but the name is pasted into the SQL."""
    if user["role"] in ("support", "admin", "service"):
        return "1 = 1", ()
    return f"owner = '{user['username']}'", ()


WRONG_DEFENSES = {
    "ownership filter built by string formatting": (
        _with(invoice_filter=_string_built_filter),
        "bola",
    ),
    "ownership checked after the fetch only": (
        _with(invoice_filter=lambda user: ("1 = 1", ())),
        "bola",
    ),
    "support may delete accounts": (
        _with(permitted=_policy_with({"support": {"user:delete": "any"}})),
        "bfla",
    ),
    "service account may list accounts": (
        _with(permitted=_policy_with({"service": {"user:list": "any"}})),
        "bfla",
    ),
    "allowlist of input fields still has role": (
        _with(
            accepted_fields=lambda kind: (
                {"display_name", "email", "role"} if kind == "user" else {"memo", "status"}
            )
        ),
        "mass-assignment",
    ),
    "input fields: owner left writable": (
        _with(
            accepted_fields=lambda kind: (
                {"display_name", "email"} if kind == "user" else {"memo", "status", "owner"}
            )
        ),
        "mass-assignment",
    ),
    "output filtered for users only": (
        _with(public_fields=fields_filtered_for_users_only),
        "data-exposure",
    ),
    "admins see the password hash": (_with(public_fields=admins_see_everything), "data-exposure"),
    "scopes granted as the union": (
        _with(grant_scopes=lambda requested, allowed: set(requested) | set(allowed)),
        "scope-escalation",
    ),
    "scopes granted as all allowed": (
        _with(grant_scopes=lambda requested, allowed: set(allowed)),
        "least-scopes",
    ),
    "fails open on outage": (_with(permitted=_policy_with(fail_open=True)), "fail-open"),
    "viewer may edit own invoices": (
        _with(permitted=_policy_with({"viewer": {"invoice:update": "own"}})),
        "permission-matrix",
    ),
    "support limited to own invoices": (
        _with(permitted=_policy_with({"support": {"invoice:list": "own", "invoice:read": "own"}})),
        "permission-matrix",
    ),
    "roles cached per user": (_with(permitted=_roles_cached_per_user()), "stale-role"),
    "denies everything": (_with(permitted=lambda who, action, owns: False), "permission-matrix"),
    "shows no fields at all": (_with(public_fields=lambda kind, role: set()), "fields-kept"),
}


@pytest.mark.parametrize("mistake", list(WRONG_DEFENSES))
def test_the_grader_catches_a_plausible_wrong_defense(lab06: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names the mistake."""
    hooks, row = WRONG_DEFENSES[mistake]
    lab06.defend(**hooks)
    with pytest.raises(DefenseBreached) as caught:
        lab06.grade()
    failed = {failure.id for failure in caught.value.report.failures}
    assert row in failed
    assert row in str(caught.value)


def test_the_matrix_row_names_each_wrong_cell(lab06: Lab) -> None:
    """The failure says which role, endpoint and object differ, and what came back."""
    lab06.defend(**_with(permitted=_policy_with({"support": {"user:delete": "any"}})))
    with pytest.raises(DefenseBreached) as caught:
        lab06.grade()
    assert "support DELETE /admin/users/{id} other: expected deny, got allow" in str(caught.value)
