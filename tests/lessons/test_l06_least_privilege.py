"""Lesson 06: every attack breaches the weak API; the solution stops all; wrong policies fail."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from labapp import DefenseBreached, DependencyDown, Lab
from labapp.engine.grading import grader_client, run_item
from labapp.lessons.common import session_token
from labapp.lessons.l06_least_privilege import LESSON
from labapp.lessons.l06_least_privilege.hooks import Who
from labapp.lessons.l06_least_privilege.matrix import matrix, render, token_for
from labapp.lessons.l06_least_privilege.policy import (
    ACCESS_TOKEN_TYPE,
    COLUMNS,
    PASSWORD_HASHES,
    TOKEN_EXCHANGE,
    WRITABLE,
)
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
    lab06.check_flag("bola", body["flag"])


def test_the_weak_list_holds_only_the_callers_invoices_and_no_bola_flag(lab06: Lab) -> None:
    """Vera's app lists her own invoices (staff see all): the bola flag needs a fetch by id."""
    for username, ids in [
        ("vera", [1, 2]),
        ("eddie", [3, 4]),
        ("sam", [1, 2, 3, 4, 5, 6]),
        ("svc-billing", [1, 2, 3, 4, 5, 6]),
    ]:
        response = lab06.client.get("/invoices", headers=_as(lab06, username))
        assert [invoice["id"] for invoice in response.json()["invoices"]] == ids, username
        assert ":bola:" not in response.text, username
    with lab06.outage("permissions"):  # fail-open lets the list through, still only hers
        response = lab06.client.get("/invoices", headers=_as(lab06, "vera"))
    assert [invoice["id"] for invoice in response.json()["invoices"]] == [1, 2]


def test_a_learners_filter_decides_the_list_too(lab06: Lab) -> None:
    """Once plugged in, invoice_filter alone decides the list: a too-open one shows it."""
    lab06.defend(invoice_filter=lambda user: ("1 = 1", ()))
    response = lab06.client.get("/invoices", headers=_as(lab06, "vera"))
    assert len(response.json()["invoices"]) == 6
    assert ":bola:" in response.text


def test_a_viewer_deleting_an_account_reveals_the_bfla_flag(lab06: Lab) -> None:
    """The admin route the UI hides answers a viewer, and the account is really gone."""
    body = lab06.client.delete("/admin/users/5", headers=_as(lab06, "vera")).json()
    assert lab06.store.one("SELECT id FROM users WHERE id = 5") is None
    lab06.check_flag("bfla", body["flag"])


def test_patching_your_own_role_reveals_the_mass_assignment_flag(lab06: Lab) -> None:
    """PATCH /me binds role, and the stored role really changes."""
    body = lab06.client.patch("/me", headers=_as(lab06, "eddie"), json={"role": "admin"}).json()
    assert lab06.store.one("SELECT role FROM users WHERE username = 'eddie'")["role"] == "admin"
    lab06.check_flag("mass-assignment", body["flag"])


def test_a_staff_note_shown_to_a_viewer_reveals_the_data_exposure_flag(lab06: Lab) -> None:
    """Vera's own invoice carries the note staff wrote for staff, and the flag with it."""
    body = lab06.client.get("/invoices/1", headers=_as(lab06, "vera")).json()
    assert body["owner"] == "vera" and body["internal_note"]
    lab06.check_flag("data-exposure", body["flag"])


def test_a_users_own_profile_leaks_a_real_hash_but_earns_no_flag(lab06: Lab) -> None:
    """GET /me shows vera her own argon2id PHC string (a leak to fix) without a flag."""
    argon2 = pytest.importorskip("argon2")
    body = lab06.client.get("/me", headers=_as(lab06, "vera")).json()
    params = argon2.extract_parameters(body["password_hash"])  # a real PHC string parses
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19456, 2, 1)
    assert "flag" not in body and not FLAG.search(json.dumps(body))


def test_the_seeded_hashes_are_real_and_differ(lab06: Lab) -> None:
    """Admin data varies: five different argon2id hashes, one with older parameters."""
    argon2 = pytest.importorskip("argon2")
    rows = lab06.store.query("SELECT username, password_hash FROM users ORDER BY id")
    hashes = [row["password_hash"] for row in rows]
    assert hashes == [PASSWORD_HASHES[row["username"]] for row in rows]
    assert len(set(hashes)) == len(hashes)
    costs = {argon2.extract_parameters(h).memory_cost for h in hashes}
    assert costs == {19456, 65536}


def test_asking_for_an_admin_scope_reveals_the_scope_escalation_flag(lab06: Lab) -> None:
    """The token endpoint grants a viewer users:admin because she asked."""
    with grader_client(lab06.url) as http:
        response = token_for(lab06, http, "vera", "users:admin")
    assert "users:admin" in response.json()["scope"].split()
    lab06.check_flag("scope-escalation", response.json()["flag"])


def test_a_permissions_outage_reveals_the_fail_open_flag(lab06: Lab) -> None:
    """While who.role() raises, the weak policy allows vera into eddie's invoice."""
    with lab06.outage("permissions"):
        body = lab06.client.get("/invoices/3", headers=_as(lab06, "vera")).json()
    lab06.check_flag("fail-open", body["flag"])


def test_an_answer_carries_at_most_one_flag_and_only_an_exploit_does(lab06: Lab) -> None:
    """Eddie's invoice during an outage earns fail-open (not bola too); /me earns nothing."""
    vera = _as(lab06, "vera")
    with lab06.outage("permissions"):
        text = lab06.client.get("/invoices/3", headers=vera).text
    assert len(FLAG.findall(text)) == 1 and ":fail-open:" in text
    assert "flags" not in lab06.client.get("/invoices", headers=vera).json()
    assert not FLAG.search(lab06.client.get("/me", headers=vera).text)
    assert not FLAG.search(lab06.client.get("/health").text)


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
    ]
    for username, method, url, body in calls:
        response = lab06.client.request(method, url, headers=_as(lab06, username), json=body)
        assert response.is_success and not FLAG.search(response.text), (username, url)
    with grader_client(lab06.url) as http:
        for username, scope in [("ada", "users:admin invoices:write"), ("vera", "profile")]:
            response = token_for(lab06, http, username, scope)
            assert response.is_success and not FLAG.search(response.text), username
    with lab06.outage("permissions"):
        response = lab06.client.get("/invoices/1", headers=_as(lab06, "vera"))
    assert response.is_success and not FLAG.search(response.text)


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
    with grader_client(lab06.url) as http:
        token = token_for(lab06, http, "vera", "invoices:read")
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


def test_a_refused_write_is_audited_as_deny_with_its_reason(lab06: Lab) -> None:
    """The policy allowed PATCH /me, the input model refused the body: the log says deny."""
    lab06.defend(**solution())
    eddie = _as(lab06, "eddie")
    assert lab06.client.patch("/me", headers=eddie, json={"role": "admin"}).status_code == 422
    last = lab06.audit()[-1]
    assert (last["actor"], last["action"], last["decision"]) == ("eddie", "PATCH /me", "deny")
    assert "422" in last["reason"] and "role" in last["reason"]
    assert lab06.client.patch("/me", headers=eddie, json={"email": "e@x.example"}).is_success
    assert lab06.audit()[-1]["decision"] == "allow"
    lab06.defend(invoice_filter=lambda user: ("owner = ?", (user["username"],)))
    lab06.defend(permitted=lambda who, action, owns: True)  # the filter alone hides invoice 1
    assert lab06.client.get("/invoices/1", headers=eddie).status_code == 404
    assert lab06.audit()[-1]["decision"] == "deny"


def test_a_hook_returning_the_wrong_type_is_a_named_500(lab06: Lab) -> None:
    """A public_fields that returns a string is a server error the report names."""
    lab06.defend(public_fields=lambda kind, role: "id")
    assert lab06.client.get("/me", headers=_as(lab06, "vera")).status_code == 500
    with pytest.raises(DefenseBreached, match="public_fields"):
        lab06.grade()


# -- the defenses the tests plug in ------------------------------------------------------


@functools.cache
def _namespace() -> dict[str, Any]:
    return solution_namespace(
        "06-least-privilege.ipynb", "permitted", DependencyDown=DependencyDown
    )


def _reach(role: str, action: str) -> str | None:
    """The solution notebook's own table: "own", "any" or None (no rule)."""
    return _namespace()["POLICY"].get(role, {}).get(action)


def _with(**changes: Callable[..., Any]) -> dict[str, Callable[..., Any]]:
    return {**solution(), **changes}


def _role_or_deny(who: Who) -> str | None:
    try:
        return who.role()
    except DependencyDown:
        return None


# A class of mistakes: ownership left to the filter ("invoice_filter keeps them out anyway").


def ignores_owns(who, action, owns):
    """Any rule for the action is enough."""
    role = _role_or_deny(who)
    return role is not None and _reach(role, action) is not None


def owns_checked_for_reads_only(who, action, owns):
    role = _role_or_deny(who)
    if role is None:
        return False
    reach = _reach(role, action)
    if action == "invoice:update":
        return reach is not None
    return reach == "any" or (reach == "own" and owns)


def owns_checked_for_updates_only(who, action, owns):
    role = _role_or_deny(who)
    if role is None:
        return False
    reach = _reach(role, action)
    if action in ("invoice:read", "invoice:list"):
        return reach is not None
    return reach == "any" or (reach == "own" and owns)


def owns_checked_for_viewers_only(who, action, owns):
    role = _role_or_deny(who)
    if role is None:
        return False
    reach = _reach(role, action)
    if role != "viewer":
        return reach is not None
    return reach == "any" or (reach == "own" and owns)


# A class: something remembered across a demotion (or a change of owner).


def roles_cached_per_user():
    """The solution's policy, but each user's role is looked up once and remembered."""
    right = solution()["permitted"]
    roles: dict[str, str] = {}

    def permitted(who, action, owns):
        role = roles.setdefault(who.username, who.role())  # "spare the permissions service"
        return right(Who(who.username, lambda: role), action, owns)

    return permitted


def roles_in_an_lru_cache():
    right = solution()["permitted"]
    lookups: dict[str, Callable[[], str]] = {}

    @functools.lru_cache(maxsize=128)
    def role_of(username: str) -> str:
        return lookups[username]()

    def permitted(who, action, owns):
        lookups[who.username] = who.role
        try:
            role = role_of(who.username)
        except DependencyDown:
            return False
        return right(Who(who.username, lambda: role), action, owns)

    return permitted


def decisions_cached():
    """Each (user, action, owns) decided once."""
    right = solution()["permitted"]
    seen: dict[tuple[str, str, bool], bool] = {}

    def permitted(who, action, owns):
        key = (who.username, action, owns)
        if key not in seen:
            seen[key] = right(who, action, owns)
        return seen[key]

    return permitted


def roles_cached_for_a_minute():
    right = solution()["permitted"]
    roles: dict[str, tuple[float, str]] = {}

    def permitted(who, action, owns):
        stamp, role = roles.get(who.username, (0.0, ""))
        if time.monotonic() - stamp > 60:
            try:
                role = who.role()
            except DependencyDown:
                return False
            roles[who.username] = (time.monotonic(), role)
        return right(Who(who.username, lambda: role), action, owns)

    return permitted


def roles_cached_for_reads():
    """Writes ask the service; reads, the hot path, reuse the last answer."""
    right = solution()["permitted"]
    roles: dict[str, str] = {}

    def permitted(who, action, owns):
        if action in ("invoice:update", "user:update-self", "user:delete"):
            return right(who, action, owns)
        if who.username not in roles:
            try:
                roles[who.username] = who.role()
            except DependencyDown:
                return False
        role = roles[who.username]
        return right(Who(who.username, lambda: role), action, owns)

    return permitted


def last_role_kept_for_outages():
    """Asks every time, but during an outage trusts the last answer it had."""
    right = solution()["permitted"]
    last: dict[str, str] = {}

    def permitted(who, action, owns):
        try:
            role = last[who.username] = who.role()
        except DependencyDown:
            if who.username not in last:
                return False
            role = last[who.username]
        return right(Who(who.username, lambda: role), action, owns)

    return permitted


def roles_hard_coded():
    """'The roles never change': a table by username, the service never asked."""
    roles = {"vera": "viewer", "eddie": "editor", "sam": "support", "ada": "admin"}
    roles["svc-billing"] = "service"

    def permitted(who, action, owns):
        reach = _reach(roles.get(who.username, ""), action)
        return reach == "any" or (reach == "own" and owns)

    return permitted


def last_role_of_anyone():
    """One variable for 'the last role we saw', kept for outages."""
    last = {"role": ""}

    def permitted(who, action, owns):
        with contextlib.suppress(DependencyDown):  # keep the last one
            last["role"] = who.role()
        reach = _reach(last["role"], action)
        return reach == "any" or (reach == "own" and owns)

    return permitted


def filter_cached_per_user():
    right = solution()["invoice_filter"]
    filters: dict[str, tuple[str, tuple]] = {}

    def invoice_filter(user):
        return filters.setdefault(user["username"], right(user))

    return invoice_filter


def scopes_cached_per_request():
    right = solution()["grant_scopes"]
    grants: dict[frozenset, set] = {}

    def grant_scopes(requested, allowed):
        return grants.setdefault(frozenset(requested), right(requested, allowed))

    return grant_scopes


def fields_cached_per_kind():
    right = solution()["public_fields"]
    shown: dict[str, set] = {}

    def public_fields(kind, role):
        return shown.setdefault(kind, right(kind, role))

    return public_fields


# Deny by default, and fail closed.


def unknown_roles_act_as_viewers(who, action, owns):
    role = _role_or_deny(who)
    if role is None:
        return False
    reach = _namespace()["POLICY"].get(role, _namespace()["POLICY"]["viewer"]).get(action)
    return reach == "any" or (reach == "own" and owns)


def profile_open_to_anyone(who, action, owns):
    """'Everyone may see their own profile' before asking for the role."""
    if action == "user:read-self":
        return True
    return solution()["permitted"](who, action, owns)


def filter_lists_the_restricted_roles(user):
    if user["role"] in ("viewer", "editor"):
        return "owner = ?", (user["username"],)
    return "1 = 1", ()


def fails_open(who, action, owns):
    try:
        role = who.role()
    except DependencyDown:
        return True
    reach = _reach(role, action)
    return reach == "any" or (reach == "own" and owns)


def own_objects_during_outages(who, action, owns):
    """'Nobody is locked out of their own invoices' while the service is down."""
    try:
        role = who.role()
    except DependencyDown:
        return owns is True
    reach = _reach(role, action)
    return reach == "any" or (reach == "own" and owns)


def any_error_allows_own(who, action, owns):
    try:
        reach = _reach(who.role(), action)
    except Exception:
        return bool(owns) and action.startswith("invoice:")
    return reach == "any" or (reach == "own" and owns)


def returns_a_number(who, action, owns):
    """Right decisions, as 1 and 0."""
    return int(solution()["permitted"](who, action, owns))


def returns_the_reach(who, action, owns):
    """'own' and 'any' are truthy; None is falsy: close enough?"""
    role = _role_or_deny(who)
    reach = _reach(role, action) if role else None
    return reach if reach == "any" or owns else None


def _policy_with(extra: dict[str, dict[str, str]]):
    """The solution's permitted() over a changed table."""
    table = {role: dict(actions) for role, actions in _namespace()["POLICY"].items()}
    for role, actions in extra.items():
        table[role] = {**table.get(role, {}), **actions}

    def permitted(who, action, owns):
        role = _role_or_deny(who)
        reach = table.get(role or "", {}).get(action)
        return reach == "any" or (reach == "own" and owns)

    return permitted


# The ownership filter.


def string_built_filter(user):
    """Ownership in the query, but the name is pasted into the SQL."""
    if user["role"] in ("support", "admin", "service"):
        return "1 = 1", ()
    return f"owner = '{user['username']}'", ()


def like_filter(user):
    if _reach(user["role"], "invoice:read") == "any":
        return "1 = 1", ()
    return "owner LIKE ?", (user["username"],)


# Output and input fields.


def fields_filtered_for_users_only(kind, role):
    """Hides the password hash, forgets invoices' internal note."""
    if kind == "user":
        return {"id", "username", "display_name", "role", "email"}
    return {"id", "owner", "amount_cents", "status", "memo", "internal_note"}


def admins_see_everything(kind, role):
    if role == "admin":
        return set(COLUMNS[kind])
    return solution()["public_fields"](kind, role)


def notes_for_all_but_viewers_and_editors(kind, role):
    fields = solution()["public_fields"](kind, "viewer")
    return (
        fields | {"internal_note"}
        if kind == "invoice" and role not in ("viewer", "editor")
        else fields
    )


def _accepting(user: set[str] = frozenset(), invoice: set[str] = frozenset()):
    def accepted_fields(kind):
        return WRITABLE[kind] | {"user": user, "invoice": invoice}[kind]

    return accepted_fields


def everything_but_the_obvious(kind):
    """A denylist: every column except the ones that 'obviously' matter."""
    return set(COLUMNS[kind]) - {"id", "role", "password_hash"}


def one_list_for_both_kinds(kind):
    return {"display_name", "email", "memo", "status"}


# Scopes.


def everything_allowed(requested, allowed):
    return set(allowed)


def allowed_when_nothing_asked(requested, allowed):
    """'A default scope' for a request that names none."""
    return set(requested) & set(allowed) or set(allowed)


def requested_if_allowed_else_all_allowed(requested, allowed):
    return set(requested) if set(requested) <= set(allowed) else set(allowed)


def requested_minus_admin(requested, allowed):
    return set(requested) - {"users:admin"}


def read_only_scopes(requested, allowed):
    return set(requested) & set(allowed) & {"invoices:read", "profile"}


# -- every rule the defend cells state, and the row that enforces it -------------------------


@dataclass(frozen=True)
class Rule:
    text: str  # the rule as the notebook (or a defend hint) states it
    row: str  # the grader row (attack or check id) that enforces it
    wrong: Callable[[], dict[str, Callable[..., Any]]]  # the solution with this rule broken


RULES = [
    Rule(
        "permitted: return True or False",
        "permission-matrix",
        lambda: _with(permitted=returns_a_number),
    ),
    Rule(
        "an 'own' rule allows only when owns is true; each lock holds on its own",
        "owns-ignored",
        lambda: _with(permitted=ignores_owns),
    ),
    Rule(
        "call who.role() on every decision and remember no role between calls",
        "stale-role",
        lambda: _with(permitted=roles_cached_per_user()),
    ),
    Rule(
        "... not even for an outage",
        "stale-role",
        lambda: _with(permitted=last_role_kept_for_outages()),
    ),
    Rule(
        "deny by default: a role with no rule for an action is denied",
        "deny-by-default",
        lambda: _with(permitted=unknown_roles_act_as_viewers),
    ),
    Rule(
        "(hint) a dict role -> {action: 'own' or 'any'}; a missing entry is a denial",
        "deny-by-default",
        lambda: _with(permitted=profile_open_to_anyone),
    ),
    Rule(
        "... and so is an error: while the service is down, deny every request",
        "fail-open",
        lambda: _with(permitted=own_objects_during_outages),
    ),
    Rule(
        "(hint) wrap who.role() in try/except DependencyDown and return False",
        "fail-open",
        lambda: _with(permitted=fails_open),
    ),
    Rule(
        "the policy table: viewers list and read their own invoices",
        "permission-matrix",
        lambda: _with(permitted=_policy_with({"viewer": {"invoice:update": "own"}})),
    ),
    Rule(
        "the policy table: accounts are listed by support and admin, deleted by admin",
        "bfla",
        lambda: _with(permitted=_policy_with({"support": {"user:delete": "any"}})),
    ),
    Rule(
        "only a role whose rule reads any invoice sees them all",
        "bola",
        lambda: _with(invoice_filter=lambda user: ("1 = 1", ())),
    ),
    Rule(
        "every other role, a new one too, sees only its own",
        "deny-by-default",
        lambda: _with(invoice_filter=filter_lists_the_restricted_roles),
    ),
    Rule(
        "owner equals the username, passed as a parameter (never pasted into the SQL)",
        "bola",
        lambda: _with(invoice_filter=string_built_filter),
    ),
    Rule(
        "(hint) keep nothing between calls: no cache of roles, filters or grants",
        "stale-role",
        lambda: _with(grant_scopes=scopes_cached_per_request()),
    ),
    Rule(
        "user has username and role as they are now",
        "stale-role",
        lambda: _with(invoice_filter=filter_cached_per_user()),
    ),
    Rule(
        "public_fields: never password_hash",
        "data-exposure",
        lambda: _with(public_fields=admins_see_everything),
    ),
    Rule(
        "internal_note only for support and admin",
        "data-exposure",
        lambda: _with(public_fields=notes_for_all_but_viewers_and_editors),
    ),
    Rule(
        "each role still sees the fields its work needs",
        "fields-kept",
        lambda: _with(public_fields=lambda kind, role: set()),
    ),
    Rule(
        "accepted_fields: only display_name, email / memo, status",
        "mass-assignment",
        lambda: _with(accepted_fields=_accepting(user={"role"})),
    ),
    Rule(
        "never an identity, owner or role field, even one the table does not have yet",
        "mass-assignment",
        lambda: _with(accepted_fields=_accepting(invoice={"created_by"})),
    ),
    Rule(
        "... and a PATCH body may still set those fields",
        "writes-work",
        lambda: _with(accepted_fields=lambda kind: {"display_name", "email"}),
    ),
    Rule(
        "grant: no scope the role lacks",
        "scope-escalation",
        lambda: _with(grant_scopes=lambda requested, allowed: set(requested) | set(allowed)),
    ),
    Rule(
        "grant: none the client did not ask for",
        "over-grant",
        lambda: _with(grant_scopes=everything_allowed),
    ),
    Rule(
        "grant: nothing allowed asked for, nothing granted (not the role's usual scopes)",
        "over-grant",
        lambda: _with(grant_scopes=allowed_when_nothing_asked),
    ),
    Rule(
        "grant what was asked and is allowed",
        "least-scopes",
        lambda: _with(grant_scopes=read_only_scopes),
    ),
]


def _assert_caught(lab: Lab, hooks: dict[str, Callable[..., Any]], row: str) -> None:
    lab.defend(**hooks)
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    failed = {failure.id for failure in caught.value.report.failures}
    assert row in failed, (row, failed)
    assert row in str(caught.value)


@pytest.mark.parametrize("rule", RULES, ids=[rule.text for rule in RULES])
def test_each_rule_of_the_defend_cells_fails_its_row_when_broken(lab06: Lab, rule: Rule) -> None:
    """The solution with exactly one stated rule broken fails the row that enforces it."""
    _assert_caught(lab06, rule.wrong(), rule.row)


# -- plausible wrong defenses, by class: each must be caught by the grader --------------------


def _fresh(hook: Callable[..., Any]) -> Callable[[], Callable[..., Any]]:
    """A factory for a hook that keeps no state (the stateful ones are factories already)."""
    return lambda: hook


def _table_with(extra: dict[str, dict[str, str]]) -> Callable[[], Callable[..., Any]]:
    return lambda: _policy_with(extra)


# (the row that must fail, the hook) -> {mistake: a factory of the wrong hook}
WRONG_BY_ROW: dict[tuple[str, str], dict[str, Callable[[], Callable[..., Any]]]] = {
    ("owns-ignored", "permitted"): {  # ownership left to the filter
        "ignores owns, leans on the filter": _fresh(ignores_owns),
        "checks owns for reads only": _fresh(owns_checked_for_reads_only),
        "checks owns for updates only": _fresh(owns_checked_for_updates_only),
        "checks owns for viewers only": _fresh(owns_checked_for_viewers_only),
    },
    ("stale-role", "permitted"): {  # something remembered across a demotion
        "roles cached per user": roles_cached_per_user,
        "roles in an lru_cache": roles_in_an_lru_cache,
        "decisions cached per user and action": decisions_cached,
        "roles cached for a minute": roles_cached_for_a_minute,
        "roles cached for reads only": roles_cached_for_reads,
        "last role kept for outages": last_role_kept_for_outages,
        "roles hard-coded by username": roles_hard_coded,
    },
    ("stale-role", "invoice_filter"): {"filter cached per user": filter_cached_per_user},
    ("stale-role", "grant_scopes"): {"scope grants cached per request": scopes_cached_per_request},
    ("fields-kept", "public_fields"): {
        "output fields cached per kind": fields_cached_per_kind,
        "shows no fields at all": _fresh(lambda kind, role: set()),
    },
    ("mass-assignment", "accepted_fields"): {  # identity fields in the input allowlist
        "input fields: role": lambda: _accepting(user={"role"}),
        "input fields: owner": lambda: _accepting(invoice={"owner"}),
        "input fields: id": lambda: _accepting(user={"id"}, invoice={"id"}),
        "input fields: username": lambda: _accepting(user={"username"}),
        "input fields: user_id": lambda: _accepting(user={"user_id"}),
        "input fields: created_by": lambda: _accepting(invoice={"created_by"}),
        "input fields: amount_cents": lambda: _accepting(invoice={"amount_cents"}),
        "input fields: a denylist": _fresh(everything_but_the_obvious),
        "input fields: one list for both kinds": _fresh(one_list_for_both_kinds),
    },
    ("over-grant", "grant_scopes"): {  # granted too much
        "scopes: all the role allows": _fresh(everything_allowed),
        "scopes: a default when none asked": _fresh(allowed_when_nothing_asked),
        "scopes: requested if allowed, else all": _fresh(requested_if_allowed_else_all_allowed),
        "scopes: everyone gets profile": _fresh(
            lambda requested, allowed: (set(requested) & set(allowed)) | {"profile"}
        ),
    },
    ("scope-escalation", "grant_scopes"): {
        "scopes: the union": _fresh(lambda requested, allowed: set(requested) | set(allowed)),
        "scopes: whatever was requested": _fresh(lambda requested, allowed: set(requested)),
        "scopes: requested, less users:admin": _fresh(requested_minus_admin),
    },
    ("deny-by-default", "permitted"): {
        "unknown roles act as viewers": _fresh(unknown_roles_act_as_viewers),
        "own profile open to anyone": _fresh(profile_open_to_anyone),
    },
    ("deny-by-default", "invoice_filter"): {
        "filter lists the restricted roles": _fresh(filter_lists_the_restricted_roles),
    },
    ("fail-open", "permitted"): {
        "fails open on outage": _fresh(fails_open),
        "own objects during an outage": _fresh(own_objects_during_outages),
        "any error allows own invoices": _fresh(any_error_allows_own),
        "the last role of anyone, kept for outages": last_role_of_anyone,
    },
    ("bfla", "permitted"): {
        "support may delete accounts": _table_with({"support": {"user:delete": "any"}}),
        "service account may list accounts": _table_with({"service": {"user:list": "any"}}),
    },
    ("permission-matrix", "permitted"): {
        "viewer may edit own invoices": _table_with({"viewer": {"invoice:update": "own"}}),
        "support limited to own invoices": _table_with(
            {"support": {"invoice:list": "own", "invoice:read": "own"}}
        ),
        "denies everything": _fresh(lambda who, action, owns: False),
        "returns 1 and 0": _fresh(returns_a_number),
        "returns the rule's reach": _fresh(returns_the_reach),
        "functools.cache on permitted": lambda: functools.cache(solution()["permitted"]),
    },
    ("bola", "invoice_filter"): {
        "ownership checked after the fetch only": _fresh(lambda user: ("1 = 1", ())),
        "ownership filter built by string formatting": _fresh(string_built_filter),
        "ownership filter with LIKE": _fresh(like_filter),
    },
    ("data-exposure", "public_fields"): {
        "output filtered for users only": _fresh(fields_filtered_for_users_only),
        "admins see the password hash": _fresh(admins_see_everything),
        "notes for all but viewers and editors": _fresh(notes_for_all_but_viewers_and_editors),
    },
}
WRONG_DEFENSES = {
    mistake: (row, hook, make)
    for (row, hook), group in WRONG_BY_ROW.items()
    for mistake, make in group.items()
}


@pytest.mark.parametrize("mistake", list(WRONG_DEFENSES))
def test_the_grader_catches_a_plausible_wrong_defense(lab06: Lab, mistake: str) -> None:
    """Each mistake fails the grader, on the row that names the mistake."""
    row, hook, make = WRONG_DEFENSES[mistake]
    _assert_caught(lab06, _with(**{hook: make()}), row)


def test_the_matrix_row_names_each_wrong_cell(lab06: Lab) -> None:
    """The failure says which role, endpoint and object differ, and what came back."""
    lab06.defend(**_with(permitted=_policy_with({"support": {"user:delete": "any"}})))
    with pytest.raises(DefenseBreached) as caught:
        lab06.grade()
    assert "support DELETE /admin/users/{id} other: expected deny, got allow" in str(caught.value)


def test_an_over_grant_says_granted_too_much_not_denying_too_much(lab06: Lab) -> None:
    """Granting every allowed scope fails over-grant, whose advice is about granting less."""
    lab06.defend(**_with(grant_scopes=everything_allowed))
    with pytest.raises(DefenseBreached) as caught:
        lab06.grade()
    assert [row.id for row in caught.value.report.failures] == ["over-grant"]
    assert "granted too much" in str(caught.value).lower()
    assert "denying too much" not in str(caught.value)


def test_a_permitted_that_returns_a_non_bool_is_a_named_500(lab06: Lab) -> None:
    """permitted() is declared returns=bool: 1 is not a decision, and the report says so."""
    lab06.defend(**_with(permitted=returns_a_number))
    response = lab06.client.get("/invoices/1", headers=_as(lab06, "vera"))
    assert response.status_code == 500
    assert "permitted() returned int 1; it must return True or False" in response.text
    with pytest.raises(DefenseBreached) as caught:
        lab06.grade()
    assert "permitted() returned int" in str(caught.value)
    assert "True or False" in str(caught.value)


def test_a_grade_leaves_the_seeded_data_as_it_was(lab06: Lab) -> None:
    """The rows that demote, move invoices and add a contractor put everything back."""
    before_users = lab06.store.query("SELECT id, username, role FROM users ORDER BY id")
    before_invoices = lab06.store.query("SELECT * FROM invoices ORDER BY id")
    lab06.defend(**solution())
    lab06.grade()
    assert lab06.store.query("SELECT id, username, role FROM users ORDER BY id") == before_users
    assert lab06.store.query("SELECT * FROM invoices ORDER BY id") == before_invoices
    assert lab06.store.one("SELECT token FROM sessions WHERE username = 'nora'") is None


# -- input: refused, not dropped; hostile input is a 4xx, never a 5xx ------------------------


def test_a_body_naming_a_field_outside_the_allowlist_is_refused_not_dropped(lab06: Lab) -> None:
    """As the notebook says: 422, and nothing is written, for id as for any other field."""
    lab06.defend(**solution())
    before = lab06.store.query("SELECT * FROM invoices ORDER BY id")
    for username, url, body in [
        ("vera", "/me", {"id": 4, "display_name": "V"}),
        ("eddie", "/invoices/3", {"id": 99, "memo": "m"}),
        ("eddie", "/invoices/3", {"created_by": "vera", "memo": "m"}),
    ]:
        response = lab06.client.patch(url, headers=_as(lab06, username), json=body)
        assert response.status_code == 422, (url, body)
        assert next(name for name in body if name not in ("memo", "display_name")) in response.text
    assert lab06.store.query("SELECT * FROM invoices ORDER BY id") == before
    assert lab06.store.one("SELECT display_name FROM users WHERE id = 1")["display_name"] != "V"


def test_binding_a_protected_field_reveals_the_mass_assignment_flag(lab06: Lab) -> None:
    """An invoice's amount is no client's to set: binding it is the exploit the flag marks."""
    body = lab06.client.patch(
        "/invoices/3", headers=_as(lab06, "eddie"), json={"amount_cents": 1}
    ).json()
    assert lab06.store.one("SELECT amount_cents FROM invoices WHERE id = 3")["amount_cents"] == 1
    lab06.check_flag("mass-assignment", body["flag"])


BIG = str(2**64)
HOSTILE_BODIES = {
    "integer beyond 64 bits": f'{{"memo": {BIG}, "display_name": -{BIG}, "scope": {BIG}}}',
    "5000-digit integer": '{"memo": ' + "9" * 5000 + "}",
    "lone surrogate": '{"memo": "\\ud800", "display_name": "\\udfff", "scope": "\\ud800"}',
    "lone surrogate as a key": '{"\\ud800": "x"}',
    "NaN": '{"memo": NaN, "display_name": NaN}',
    "Infinity": '{"memo": Infinity, "email": -Infinity, "scope": 1e999}',
    "deep nesting": '{"memo": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "nested value": '{"memo": {"a": [1, {"b": null}]}, "scope": {"x": 1}}',
    "duplicate keys": '{"memo": "a", "memo": "b", "display_name": "x", "display_name": "y"}',
    "a list": "[1, 2]",
    "a string": '"memo"',
    "null": "null",
    "a boolean value": '{"memo": true, "display_name": false}',
    "null value": '{"memo": null, "display_name": null}',
    "truncated": '{"memo": ',
    "not JSON": "memo=1",
    "huge body": '{"memo": "' + "a" * 3_000_000 + '"}',
    "many keys": json.dumps({f"k{i}": i for i in range(20_000)}),
    "id of another row": '{"id": 1}',
}
HOSTILE_PATHS = [
    f"/invoices/{BIG}",
    f"/invoices/-{BIG}",
    "/invoices/" + "9" * 5000,
    "/invoices/%ED%A0%80",
    "/invoices/1e3",
    "/invoices/0x10",
    f"/admin/users/{BIG}",
    f"/invoices/1?id={BIG}&owner=%ED%A0%80",
]
HOSTILE_AUTH = [
    "Bearer " + "a" * 20_000,
    "Bearer \u00ff\u00fe",
    "Bearer",
    "Basic eDp5",
    "bearer x y",
]


def _hostile_answers(lab: Lab, headers: dict[str, str]) -> list[tuple[str, str, int, str]]:
    found = []
    json_type = {"content-type": "application/json"}
    for label, body in HOSTILE_BODIES.items():
        raw = body.encode("utf-8", "surrogatepass")
        for method, url in [("PATCH", "/me"), ("PATCH", "/invoices/3"), ("POST", "/oauth/token")]:
            response = lab.client.request(
                method, url, headers={**headers, **json_type}, content=raw
            )
            found.append((label, f"{method} {url}", response.status_code, response.text[:120]))
    for url in HOSTILE_PATHS:
        for method in ("GET", "PATCH", "DELETE"):
            body = b'{"memo": "x"}' if method == "PATCH" else None
            response = lab.client.request(
                method, url, headers={**headers, **json_type}, content=body
            )
            found.append((url[:40], method, response.status_code, response.text[:120]))
    for value in HOSTILE_AUTH:
        response = lab.client.get("/invoices", headers={"Authorization": value.encode("latin-1")})
        found.append((value[:20], "GET /invoices", response.status_code, response.text[:120]))
    return found


@pytest.mark.parametrize("who", ["anonymous", "vera", "ada"])
@pytest.mark.parametrize("defense", ["weak", "solution"])
def test_hostile_input_gets_a_4xx_never_a_5xx(lab06: Lab, defense: str, who: str) -> None:
    """Huge, odd, surrogate and nested input, anywhere: a 4xx or a 2xx, never a 500."""
    if defense == "solution":
        lab06.defend(**solution())
    headers = {} if who == "anonymous" else _as(lab06, who)
    errors = [answer for answer in _hostile_answers(lab06, headers) if answer[2] >= 500]
    assert not errors


def test_hostile_values_are_refused_with_422_not_stored(lab06: Lab) -> None:
    """A number SQLite cannot hold, NaN or a lone surrogate is the client's error, said so."""
    lab06.defend(**solution())
    headers = {**_as(lab06, "eddie"), "content-type": "application/json"}
    for body, reason in [
        (f'{{"memo": {BIG}}}', "64 bits"),
        ('{"memo": NaN}', "finite"),
        ('{"memo": "\\ud800"}', "lone surrogate"),
        ('{"memo": true}', "a string or a number"),
    ]:
        response = lab06.client.patch("/invoices/3", headers=headers, content=body.encode())
        assert response.status_code == 422 and reason in response.text, body
    assert lab06.store.one("SELECT memo FROM invoices WHERE id = 3")["memo"] == "Consulting, Q1"


def test_even_a_wrong_allowlist_gets_a_conflict_not_a_500(lab06: Lab) -> None:
    """A learner who lets `id` through sees 409 for an id in use or of the wrong type."""
    lab06.defend(**_with(accepted_fields=_accepting(user={"id", "username"}, invoice={"id"})))
    eddie = _as(lab06, "eddie")
    for url, body in [
        ("/invoices/3", {"id": 1}),
        ("/invoices/3", {"id": "three"}),
        ("/invoices/3", {"id": 7.5}),
        ("/me", {"id": 1}),
        ("/me", {"username": "vera"}),
    ]:
        assert lab06.client.patch(url, headers=eddie, json=body).status_code == 409, (url, body)
    moved = lab06.client.patch("/invoices/3", headers=eddie, json={"id": 77})
    assert moved.status_code == 200 and moved.json()["id"] == 77


# -- the token endpoint is shaped like OAuth (RFC 8693 §2.1, RFC 6749 §3.2, §5.2) -----------


def _exchange(lab: Lab, **changes: str | None) -> dict[str, str]:
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": session_token(lab.state, "vera"),
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "scope": "invoices:read",
        **changes,
    }
    return {name: value for name, value in form.items() if value is not None}


def test_the_token_endpoint_answers_a_form_exchange_with_an_rfc_8693_response(lab06: Lab) -> None:
    """A form body in, the token response out: issued_token_type, expiry, no caching."""
    lab06.defend(**solution())
    response = lab06.client.post("/oauth/token", data=_exchange(lab06, extra="ignored"))
    body = response.json()
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE and body["token_type"] == "Bearer"
    assert body["scope"] == "invoices:read" and body["expires_in"] == 3600
    token = {"Authorization": f"Bearer {body['access_token']}"}
    assert lab06.client.get("/invoices", headers=token).is_success


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"grant_type": None}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"subject_token": None}, "invalid_request"),
        ({"subject_token": "not-a-session"}, "invalid_request"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}, "invalid_request"),
        ({"scope": None}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),  # a parameter without a value is omitted (§3.2)
        ({"scope": "invoices:delete"}, "invalid_scope"),
        ({"scope": "invoices:read  profile"}, "invalid_scope"),
        ({"scope": "users:admin"}, "invalid_scope"),  # nothing asked for may be granted
    ],
)
def test_a_refused_token_request_is_rfc_6749_error_json_with_400(
    lab06: Lab, changes: dict[str, str | None], error: str
) -> None:
    lab06.defend(**solution())
    response = lab06.client.post("/oauth/token", data=_exchange(lab06, **changes))
    assert response.status_code == 400
    assert response.json()["error"] == error and response.json()["error_description"]
    assert lab06.audit()[-1]["decision"] == "deny"


def test_a_json_body_or_a_repeated_parameter_is_an_invalid_request(lab06: Lab) -> None:
    """OAuth takes a form body; a defined parameter may not repeat (RFC 6749 §3.2)."""
    form = _exchange(lab06)
    as_json = lab06.client.post("/oauth/token", json=form)
    repeated = lab06.client.post(
        "/oauth/token", content=urlencode([*form.items(), ("scope", "profile")])
    )
    repeated_form = lab06.client.post(
        "/oauth/token",
        content=urlencode([*form.items(), ("scope", "profile")]),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert as_json.json()["error"] == repeated_form.json()["error"] == "invalid_request"
    assert repeated.status_code == repeated_form.status_code == 400


# -- rows that name the cause: the hook, the direction, the fix ------------------------------


def _failures(lab: Lab, **hooks: Callable[..., Any]) -> dict[str, str]:
    """{row id: the row's text (observed and hint)} of a grade with these hooks plugged in."""
    lab.defend(**_with(**hooks))
    with pytest.raises(DefenseBreached) as caught:
        lab.grade()
    return {row.id: f"{row.observed} || {row.hint}" for row in caught.value.report.failures}


def permitted_without_try(who, action, owns):
    """The solution's table, but who.role() unguarded: DependencyDown escapes (a 500)."""
    reach = _reach(who.role(), action)
    return reach == "any" or (reach == "own" and owns)


def test_an_unguarded_role_lookup_is_named_with_the_fail_closed_fix(lab06: Lab) -> None:
    """A 500 during the outage says: permitted(), DependencyDown, return False, fail closed."""
    failed = _failures(lab06, permitted=permitted_without_try)
    assert set(failed) == {"fail-open", "stale-role"}
    for text in failed.values():
        assert "HTTP 500, not a denial" in text and "permitted()" in text
        assert "DependencyDown" in text and "return False (fail closed)" in text


def test_an_input_model_that_accepts_nothing_fails_only_writes_work(lab06: Lab) -> None:
    """Denied too much, by accepted_fields: the matrix (a policy view) stays green."""
    failed = _failures(lab06, accepted_fields=lambda kind: set())
    assert set(failed) == {"writes-work"}
    assert "HTTP 422" in failed["writes-work"]
    assert "denied too much" in failed["writes-work"]
    assert "accepted_fields" in failed["writes-work"]


def test_an_output_model_that_shows_nothing_is_blamed_on_fields_not_on_bola(lab06: Lab) -> None:
    """No ids in the list is not a leak: only fields-kept fails, naming public_fields."""
    failed = _failures(lab06, public_fields=lambda kind, role: set())
    assert set(failed) == {"fields-kept"}
    assert "public_fields" in failed["fields-kept"] and "lacks" in failed["fields-kept"]


def test_a_string_built_filter_is_named_as_granting_too_much(lab06: Lab) -> None:
    """The bola row names invoice_filter, the direction, and the parameter fix."""
    failed = _failures(lab06, invoice_filter=string_built_filter)
    assert set(failed) == {"bola"}
    text = failed["bola"]
    assert "invoice_filter" in text and "granted too much" in text and "parameter" in text


def test_a_support_role_that_deletes_is_named_in_bfla_and_the_matrix(lab06: Lab) -> None:
    """Both rows say permitted() granted too much; the matrix names the cell."""
    failed = _failures(lab06, permitted=_policy_with({"support": {"user:delete": "any"}}))
    assert set(failed) == {"bfla", "permission-matrix"}
    assert "sam (support): permitted() granted too much" in failed["bfla"]
    assert "permitted() grants too much there" in failed["permission-matrix"]


def test_a_refused_legitimate_read_is_not_blamed_on_public_fields(lab06: Lab) -> None:
    """Support limited to its own invoices: fields-kept says the read was refused first."""
    failed = _failures(
        lab06,
        permitted=_policy_with({"support": {"invoice:list": "own", "invoice:read": "own"}}),
    )
    assert "refused before any field was chosen" in failed["fields-kept"]
    assert "denied too much" in failed["fields-kept"]


# -- the figure ---------------------------------------------------------------------------


def test_the_permission_matrix_figure_marks_only_the_differing_cells(lab06: Lab) -> None:
    """Drawn from real requests: 18 red cells on the weak server, one after one mistake."""
    plt = pytest.importorskip("matplotlib.pyplot")
    from labapp.lessons.l06_least_privilege.figure import COLOURS, draw_permission_matrix

    def red_cells() -> int:
        red = plt.matplotlib.colors.to_rgba(COLOURS["differs"])
        return sum(patch.get_facecolor() == red for patch in plt.gca().patches)

    try:
        draw_permission_matrix(lab06)
        weak = red_cells()
        lab06.defend(**_with(permitted=_policy_with({"support": {"user:delete": "any"}})))
        draw_permission_matrix(lab06)
        assert "1 of 43 cells differ" in plt.gca().get_title()
        assert (weak, red_cells()) == (16, 1)  # the weak list is right: only the routes leak
    finally:
        plt.close("all")


def test_a_role_is_named_with_its_article() -> None:
    """'eddie is an editor', 'vera is a viewer': the grader's text reads as English."""
    from labapp.lessons.l06_least_privilege.decisions import with_article

    assert [with_article(w) for w in ("editor", "admin", "viewer", "int", "support")] == [
        "an editor",
        "an admin",
        "a viewer",
        "an int",
        "a support",
    ]


def test_the_owns_row_says_an_editor(lab06: Lab) -> None:
    failed = _failures(lab06, permitted=owns_checked_for_viewers_only)
    assert "eddie is an editor, whose rule" in failed["owns-ignored"]


# -- the learner notebook -------------------------------------------------------------------


def _learner_cells() -> list:
    import nbformat

    from tests.conftest import ROOT

    return nbformat.read(ROOT / "notebooks" / LESSON.notebook, as_version=4).cells


def test_the_learner_notebook_links_nothing_the_release_leaves_out() -> None:
    """`labapp release` leaves docs/ out: a learner's notebook must not point there."""
    assert "docs/" not in "\n".join(cell.source for cell in _learner_cells())


def test_the_scope_exercise_gives_a_goal_and_a_clue_not_a_prepared_request() -> None:
    """No code cell holds a token exchange to edit; the goal names no scope to ask for."""
    cells = _learner_cells()
    code = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
    assert "subject_token" not in code and "token-exchange" not in code
    (goal,) = [
        cell.source
        for cell in cells
        if cell.cell_type == "markdown" and 'lab.hint("scope-escalation")' in cell.source
    ]
    assert "RFC 8693" in goal
    assert not re.search(r"`(users|invoices):\w+`", goal), "the goal names the scope to take"


def test_the_explore_list_shows_vera_her_own_ids_only(lab06: Lab) -> None:
    """The explore cell's list agrees with attack 1's clue: vera's app asks for her ids."""
    (cell,) = [c.source for c in _learner_cells() if 'invoice["id"] for invoice' in c.source]
    namespace = {"lab": lab06, "as_vera": _as(lab06, "vera")}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(cell.replace("lab.audit().tail(3)", ""), namespace)  # noqa: S102 - the course's cell
    assert out.getvalue().strip() == "[1, 2]"
