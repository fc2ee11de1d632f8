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
from labapp.lessons.l06_least_privilege.hints import LADDERS
from labapp.lessons.l06_least_privilege.matrix import (
    MEMO,
    as_user,
    check_fields,
    check_matrix,
    check_scopes,
    check_writes,
    listed,
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
    answer = http.get("/invoices", headers=as_user(lab, "vera"))
    if answer.is_success:
        seen = listed(lab, "vera", answer.json().get("invoices", []))
        if seen != "allow:own":
            return Observed(
                True,
                answer.status_code,
                f"GET /invoices as vera (viewer) gives {seen.partition(':')[2]}, not only her "
                "own: invoice_filter granted too much",
            )
    last = answer.status_code
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
        what = f"{method} {url} as {username}, not the owner, answered {response.status_code}"
        if seen := _through(response, what + ": invoice_filter and permitted() both let it by"):
            return seen
    for name in HOSTILE_NAMES:
        if seen := filter_rows(lab, {"id": 0, "username": name, "role": "viewer"}):
            return Observed(
                True,
                None,
                f"invoice_filter for a viewer named {name!r} matches invoices {sorted(seen)}, "
                "none of them hers: granted too much; compare owner with = and pass the name "
                "as a parameter",
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
            role = ROLE_OF[username]
            what = f"{method} {url} as {username} ({role}): permitted() granted too much"
            if seen := _through(response, what):
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
            return Observed(
                True,
                last,
                f"{username} ({ROLE_OF[username]}) asked {scope!r} and was granted "
                f"{sorted(extra)}, which the role may not have: grant_scopes granted too much",
            )
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
        ("vera", "users:admin"),  # nothing she may have: refused, not "her usual scopes"
    ]:
        response = token_for(lab, http, username, scope)
        last = response.status_code
        granted = (
            set(str(response.json().get("scope", "")).split()) if response.is_success else set()
        )
        if extra := granted - set(scope.split()):
            return Observed(
                True,
                last,
                f"{username} asked for {scope!r} and was also granted {sorted(extra)}: "
                "grant_scopes granted too much",
            )
    return Observed(False, None, "every token held only scopes its client asked for")


ATTACKS = (
    Attack(
        "bola",
        "a viewer and an editor read and edit invoices that are not theirs (API1)",
        LADDERS["bola"],
        attack_bola,
        fix="invoice_filter granted too much: put ownership in the query, return "
        "('owner = ?', (user['username'],)) unless the role's rule reads any invoice "
        "(support, admin, service); the name is a parameter, compared with =.",
    ),
    Attack(
        "owns-ignored",
        "asked directly, the policy lets a viewer or an editor act on someone else's invoice",
        ("An 'own' rule allows only when owns is True.",),
        attack_owns_ignored,
        fix="permitted() granted too much: an 'own' rule allows only when owns is True "
        "(reach == 'any' or (reach == 'own' and owns)). The filter hid the invoice this time; "
        "each lock must hold on its own.",
        flag=False,
    ),
    Attack(
        "bfla",
        "non-admins call the admin functions the UI hides (API5)",
        LADDERS["bfla"],
        attack_bfla,
        fix="permitted() granted too much: user:delete for admin only, user:list for admin and "
        "support; every other role gets False for both.",
    ),
    Attack(
        "deny-by-default",
        "an account whose role has no rule (a new 'contractor') gets in somewhere",
        ("A role missing from your table must be denied everything.",),
        attack_deny_by_default,
        fix="Granted too much: deny by default. permitted(): a role or action with no entry in "
        "your table gets False "
        "(POLICY.get(role, {}).get(action) is None there); invoice_filter: only roles whose "
        "rule reads any invoice see them all, every other role (a new one too) only its own.",
        flag=False,
    ),
    Attack(
        "mass-assignment",
        "PATCH bodies that set role, username, id, owner, password_hash or internal_note (API3)",
        LADDERS["mass-assignment"],
        attack_mass_assignment,
        fix="accepted_fields accepted too much: list only what a client may set, user -> "
        "{display_name, email}, invoice -> {memo, status}; never an identity, owner or role "
        "field (the server then refuses any other field with 422).",
    ),
    Attack(
        "data-exposure",
        "responses carry password_hash, or internal_note to roles that must not see it (API3)",
        LADDERS["data-exposure"],
        attack_data_exposure,
        fix="public_fields showed too much: never password_hash; internal_note only for support "
        "and admin (name those two roles: every other role, a new one too, goes without).",
    ),
    Attack(
        "scope-escalation",
        "a token request asks for scopes the role may not have (RFC 6749 §3.3)",
        LADDERS["scope-escalation"],
        attack_scope_escalation,
        fix="grant_scopes granted too much: return requested & allowed (the intersection), "
        "never a scope the role lacks, never the union.",
    ),
    Attack(
        "over-grant",
        "a token carries scopes its client did not ask for: granted too much",
        ("Ask for one scope. Does the token hold only that one?",),
        attack_over_grant,
        fix="Granted too much: grant_scopes returns requested & allowed, never a scope the "
        "client did not ask for (least privilege, RFC 9700 §2.3); when nothing asked for is "
        "allowed, nothing (the server then answers invalid_scope).",
        flag=False,
    ),
    Attack(
        "stale-role",
        "users demoted to viewer (and an invoice that changed hands) meet an old answer",
        ("who.role() asks the permissions service: ask it on every decision.",),
        attack_stale_role,
        fix="Granted too much after a change: remember nothing between calls. Call who.role() "
        "in permitted() on every request "
        "(no cache per user, not even as an outage fallback), build the filter from the "
        "user's current role, grant scopes from the current `allowed`.",
        flag=False,
    ),
    Attack(
        "fail-open",
        "during the permissions outage, requests get through",
        LADDERS["fail-open"],
        attack_fail_open,
        fix="permitted() must fail closed: catch DependencyDown around who.role() and return "
        "False for every request while the service is down, even for what the role could do.",
    ),
)

CHECKS = (
    Check(
        "permission-matrix",
        "every role × endpoint × own/other object answers as the policy table says",
        check_matrix,
        hint="each cell names role, endpoint and object: 'expected deny, got allow' means "
        "permitted() grants too much there; 'expected allow, got deny', it denies too much; "
        "'allow:all' where 'allow:own' is expected (the invoice list), invoice_filter is too "
        "open, and the reverse, too strict.",
    ),
    Check(
        "fields-kept",
        "each role still sees the fields its work needs",
        check_fields,
        hint="a role lacks fields its work needs: public_fields must answer for the role it "
        "is given, every time (support and admin see internal_note; everyone sees an "
        "invoice's id, owner, amount_cents, status and memo, a profile's all but the hash)",
    ),
    Check(
        "writes-work",
        "vera edits her profile; eddie and ada edit invoices",
        check_writes,
        hint="a legitimate write was refused: denied too much. accepted_fields must still "
        "accept a profile's display_name and email and an invoice's memo and status (a 422 "
        "names the field it refused); a 403/404 means permitted() or invoice_filter said no",
    ),
    Check(
        "least-scopes",
        "tokens get the scopes asked for and allowed, and a narrow one is refused a write",
        check_scopes,
        hint="a token must carry every scope its client asked for that the role has: is "
        "grant_scopes granting too little?",
    ),
)
