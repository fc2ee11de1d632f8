"""Lesson 06's battery: ten attacks, the permission matrix, and what real users need.

Every item first puts the seeded users and invoices back (an earlier exploit may have made
eddie an admin), so the grader judges the defense and not the lab's history. The rows about
the policy's own decisions are in ``decisions.py``, those about fields in ``properties.py``.
"""

from __future__ import annotations

from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.l06_least_privilege.decisions import (
    attack_deny_by_default,
    attack_fail_open,
    attack_owns_ignored,
    attack_stale_role,
    filter_rows,
)
from labapp.lessons.l06_least_privilege.matrix import (
    MEMO,
    as_user,
    check_fields,
    check_matrix,
    check_scopes,
    check_writes,
    owned,
    reset,
    throwaway,
    token_for,
)
from labapp.lessons.l06_least_privilege.policy import ALL_SCOPES, ROLE_OF, ROLE_SCOPES
from labapp.lessons.l06_least_privilege.properties import (
    attack_data_exposure,
    attack_mass_assignment,
)

# -- the attacks ---------------------------------------------------------------------------


def _through(response: httpx.Response, what: str) -> Observed | None:
    if response.is_success:
        return Observed(True, response.status_code, what)
    return None


def attack_bola(lab: Any, http: httpx.Client) -> Observed:
    reset(lab)
    listed = http.get("/invoices", headers=as_user(lab, "vera"))
    if listed.is_success:
        ids = {row.get("id") for row in listed.json().get("invoices", [])}
        if ids - owned(lab, "vera"):
            return Observed(True, listed.status_code, f"GET /invoices as vera lists {sorted(ids)}")
    last = listed.status_code
    for username, method, invoice_id in [
        ("vera", "GET", 3),
        ("eddie", "GET", 1),
        ("eddie", "PATCH", 1),
        ("eddie", "PATCH", 6),
    ]:
        body = {"memo": MEMO[invoice_id]} if method == "PATCH" else None
        url = f"/invoices/{invoice_id}"
        response = http.request(method, url, headers=as_user(lab, username), json=body)
        last = response.status_code
        if seen := _through(response, f"{method} {url} as {username}"):
            return seen
    for name in HOSTILE_NAMES:
        if seen := filter_rows(lab, {"id": 0, "username": name, "role": "viewer"}):
            return Observed(
                True,
                None,
                f"invoice_filter for a viewer named {name!r} matches invoices {sorted(seen)}: "
                "compare the owner with = and pass the name as a parameter",
            )
    return Observed(False, last, "no one else's invoice came back, listed or by id")


# Names a future sign-up could pick: SQL, a LIKE wildcard, vera's name in other case. None
# owns an invoice, so a filter that matches any row for them leaks.
HOSTILE_NAMES = ("x' OR '1'='1", "%", "Vera")


def attack_bfla(lab: Any, http: httpx.Client) -> Observed:
    reset(lab)
    last = None
    for username in ("vera", "eddie", "sam", "svc-billing"):
        target = throwaway(lab)
        own = lab.state.store.one("SELECT id FROM users WHERE username = ?", (username,))["id"]
        for method, url in [
            ("DELETE", f"/admin/users/{target}"),
            ("GET", "/admin/users"),
            ("DELETE", f"/admin/users/{own}"),  # deleting oneself is an admin function too
        ]:
            if ROLE_OF[username] == "support" and method == "GET":
                continue  # support may list accounts
            response = http.request(method, url, headers=as_user(lab, username))
            last = response.status_code
            if seen := _through(response, f"{method} {url} as {username}"):
                reset(lab)
                return seen
    reset(lab)
    return Observed(False, last, "no non-admin deleted or listed accounts")


def attack_scope_escalation(lab: Any, http: httpx.Client) -> Observed:
    reset(lab)
    last = None
    everything = " ".join(sorted(ALL_SCOPES))
    for username, scope in [
        ("vera", "invoices:read invoices:write users:admin"),
        ("eddie", "profile users:read"),
        ("sam", "users:admin"),
        ("svc-billing", "invoices:write"),
        *[(name, everything) for name in ROLE_OF],  # every role asks for everything
    ]:
        response = token_for(lab, http, username, scope)
        last = response.status_code
        granted = set(response.json().get("scope", "").split()) if response.is_success else set()
        extra = granted - ROLE_SCOPES[ROLE_OF[username]]
        if extra:
            return Observed(True, last, f"{username} ({ROLE_OF[username]}) got {sorted(extra)}")
    return Observed(False, None, "every token held only scopes its role may have")


def attack_over_grant(lab: Any, http: httpx.Client) -> Observed:
    """A token holds only scopes its client asked for, even ones the role could have."""
    reset(lab)
    last = None
    for username, scope in [
        ("ada", "profile"),
        ("vera", "invoices:read"),
        ("eddie", "invoices:read users:admin"),
        ("sam", "users:read"),
        ("svc-billing", ""),  # no scope asked, none granted: this lab has no default scope
    ]:
        response = token_for(lab, http, username, scope)
        last = response.status_code
        granted = (
            set(str(response.json().get("scope", "")).split()) if response.is_success else set()
        )
        if extra := granted - set(scope.split()):
            return Observed(
                True, last, f"{username} asked for {scope!r} and was also granted {sorted(extra)}"
            )
    return Observed(False, None, "every token held only scopes its client asked for")


ATTACKS = (
    Attack(
        "bola",
        "a viewer and an editor read and edit invoices that are not theirs (API1)",
        (
            "As vera, GET /invoices. Whose invoices are these?",
            "Ids are small integers. Try GET /invoices/3 as vera.",
        ),
        attack_bola,
        fix="Put ownership in the query: invoice_filter returns ('owner = ?', (username,)) "
        "unless the role reads any invoice; the name is a parameter, compared with =.",
    ),
    Attack(
        "owns-ignored",
        "asked directly, the policy lets a viewer or an editor act on someone else's invoice",
        ("An 'own' rule allows only when owns is True.",),
        attack_owns_ignored,
        fix="permitted() must check owns for an 'own' rule: reach == 'any' or (reach == 'own' "
        "and owns). The filter hid the invoice this time; each lock must hold on its own.",
        flag=False,
    ),
    Attack(
        "bfla",
        "non-admins call the admin functions the UI hides (API5)",
        (
            "The UI shows no delete button to vera. The server has the route anyway: see the card.",
            "DELETE /admin/users/3 as vera.",
        ),
        attack_bfla,
        fix="permitted(): user:delete for admin only; user:list for admin and support.",
    ),
    Attack(
        "deny-by-default",
        "an account whose role has no rule (a new 'contractor') gets in somewhere",
        ("A role missing from your table must be denied everything.",),
        attack_deny_by_default,
        fix="Deny by default: a role or action with no entry in your table gets False "
        "(POLICY.get(role, {}).get(action) is None there); invoice_filter: only roles whose "
        "rule reads any invoice see them all, every other role (a new one too) only its own.",
        flag=False,
    ),
    Attack(
        "mass-assignment",
        "PATCH bodies that set role, username, id, owner, password_hash or internal_note (API3)",
        (
            "GET /me shows your role. What if your PATCH /me body names it too?",
            "PATCH /me with {'role': 'admin'}.",
        ),
        attack_mass_assignment,
        fix="accepted_fields lists only what a client may set: user -> {display_name, email}; "
        "invoice -> {memo, status}; never an identity, owner or role field.",
    ),
    Attack(
        "data-exposure",
        "responses carry password_hash, or internal_note to roles that must not see it (API3)",
        (
            "Read the whole JSON of GET /me, not just what a UI would show.",
            "Which field should never leave the server? Which is staff-only?",
        ),
        attack_data_exposure,
        fix="public_fields: never password_hash; internal_note only for support and admin "
        "(name those two roles: every other role, a new one too, goes without).",
    ),
    Attack(
        "scope-escalation",
        "a token request asks for scopes the role may not have (RFC 6749 §3.3)",
        (
            "POST /oauth/token with {'scope': 'invoices:read'} trades your session for a token.",
            "Ask for 'users:admin' as vera. What does the answer's scope say?",
        ),
        attack_scope_escalation,
        fix="grant_scopes returns requested & allowed: the intersection, never the union.",
    ),
    Attack(
        "over-grant",
        "a token carries scopes its client did not ask for: granted too much",
        ("Ask for one scope. Does the token hold only that one?",),
        attack_over_grant,
        fix="Granted too much: grant_scopes returns requested & allowed, never a scope the "
        "client did not ask for (least privilege, RFC 9700 §2.3), and nothing for no request.",
        flag=False,
    ),
    Attack(
        "stale-role",
        "users demoted to viewer (and an invoice that changed hands) meet an old answer",
        ("who.role() asks the permissions service: ask it on every decision.",),
        attack_stale_role,
        fix="Remember nothing between calls: call who.role() in permitted() on every request "
        "(no cache per user, not even as an outage fallback), build the filter from the "
        "user's current role, grant scopes from the current `allowed`.",
        flag=False,
    ),
    Attack(
        "fail-open",
        "during the permissions outage, requests get through",
        (
            "with lab.outage('permissions'): ... makes who.role() raise DependencyDown.",
            "Inside it, as vera, GET /invoices/3.",
        ),
        attack_fail_open,
        fix="Catch DependencyDown around who.role() and return False for every request: "
        "fail closed, even for what the role could do.",
    ),
)

CHECKS = (
    Check(
        "permission-matrix",
        "every role × endpoint × own/other object answers as the policy table says",
        check_matrix,
        hint="each ✗ cell names role, endpoint and object: 'expected deny, got allow' means "
        "your policy is too open there; 'expected allow, got deny', too strict.",
    ),
    Check(
        "fields-kept",
        "each role still sees the fields its work needs",
        check_fields,
        hint="a role lacks fields its work needs: public_fields must answer for the role it "
        "is given, every time (support and admin see internal_note; everyone sees an "
        "invoice's id, owner, amount_cents, status and memo, a profile's all but the hash)",
    ),
    Check("writes-work", "vera edits her profile; eddie and ada edit invoices", check_writes),
    Check(
        "least-scopes",
        "tokens get the scopes asked for and allowed, and a narrow one is refused a write",
        check_scopes,
        hint="a token must carry every scope its client asked for that the role has: is "
        "grant_scopes granting too little?",
    ),
)
