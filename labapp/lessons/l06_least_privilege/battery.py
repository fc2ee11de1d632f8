"""Lesson 06's battery: six attacks, the permission matrix, and what real users need.

Every item first puts the seeded users and invoices back (an earlier exploit may have made
eddie an admin), so the grader judges the defense and not the lab's history.
"""

from __future__ import annotations

from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed
from labapp.lessons.l06_least_privilege.matrix import (
    MEMO,
    NAME,
    as_user,
    cells,
    check_fields,
    check_matrix,
    check_scopes,
    check_writes,
    probe,
    reset,
    throwaway,
    token_for,
)
from labapp.lessons.l06_least_privilege.policy import (
    ALL_SCOPES,
    INVOICES,
    OWNED,
    PERMISSIONS,
    ROLE_OF,
    ROLE_SCOPES,
    SEES_INTERNAL_NOTES,
    USERS,
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
        if ids - OWNED["vera"]:
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
    if _filter_obeys_a_hostile_name(lab):
        return Observed(
            True,
            last,
            "invoice_filter builds SQL from the username: a user "
            "named x' OR '1'='1 would see every invoice (bind it as a parameter)",
        )
    return Observed(False, last, "no one else's invoice came back, listed or by id")


HOSTILE_NAME = "x' OR '1'='1"


def _filter_obeys_a_hostile_name(lab: Any) -> bool:
    """Run the learner's ownership filter for a user whose name is SQL: any row is a leak.

    No seeded name carries a quote, so this asks the hook directly, as a future sign-up would.
    """
    try:
        where, params = lab.state.hooks["invoice_filter"](
            {"username": HOSTILE_NAME, "role": "viewer"}
        )
        rows = lab.state.store.query(f"SELECT id FROM invoices WHERE ({where})", tuple(params))
    except Exception:  # a filter that breaks on such a name leaks nothing here
        return False
    return bool(rows)


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


def attack_mass_assignment(lab: Any, http: httpx.Client) -> Observed:
    reset(lab)
    store, last = lab.state.store, None
    attempts = [
        ("vera", "/me", {"role": "admin"}),
        ("vera", "/me", {"display_name": "Vera", "role": "admin"}),
        ("vera", "/me", {"username": "vera2"}),  # the name owns invoices and sessions
        ("eddie", "/me", {"password_hash": "$argon2id$attacker-chosen"}),
        ("eddie", "/invoices/3", {"memo": MEMO[3], "owner": "vera"}),
        ("eddie", "/invoices/3", {"internal_note": "all good, pay no attention"}),
        ("eddie", "/invoices/3", {"id": 99, "amount_cents": 1}),
    ]
    for username, url, body in attempts:
        response = http.patch(url, headers=as_user(lab, username), json=body)
        last = response.status_code
        users = store.query("SELECT id, username, role, password_hash FROM users ORDER BY id")
        invoices = store.query("SELECT * FROM invoices ORDER BY id")
        changed = any(u["role"] != ROLE_OF.get(u["username"], u["role"]) for u in users)
        changed |= any("attacker" in (u["password_hash"] or "") for u in users)
        changed |= [tuple(i.values()) for i in invoices] != list(INVOICES)
        reset(lab)
        if changed or response.is_success:
            return Observed(True, last, f"PATCH {url} {sorted(body)} as {username} was bound")
    return Observed(False, last, "every body naming role, owner, id or a hash was refused")


def _leaks(value: Any, role: str) -> str | None:
    if isinstance(value, dict):
        if "password_hash" in value:
            return "password_hash"
        if "internal_note" in value and role not in SEES_INTERNAL_NOTES:
            return "internal_note"
        value = list(value.values())
    if isinstance(value, list):
        return next((found for item in value if (found := _leaks(item, role))), None)
    return None


def attack_data_exposure(lab: Any, http: httpx.Client) -> Observed:
    reset(lab)
    last = None
    for _, username, _, role, _ in USERS:
        own = min(OWNED[username], default=1)
        calls = [
            ("GET", "/me", None),
            ("GET", "/invoices", None),
            ("GET", f"/invoices/{own}", None),
        ]
        calls += [("PATCH", f"/invoices/{own}", {"memo": MEMO[own]}), ("GET", "/admin/users", None)]
        calls += [("PATCH", "/me", {"display_name": NAME[username]})]
        for method, url, body in calls:
            response = http.request(method, url, headers=as_user(lab, username), json=body)
            last = response.status_code
            if response.is_success and (field := _leaks(response.json(), role)):
                return Observed(True, last, f"{method} {url} as {username} ({role}) shows {field}")
    return Observed(False, None, "no response carried password_hash or a note it must not")


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


def attack_fail_open(lab: Any, http: httpx.Client) -> Observed:
    """During the permissions outage, every cell the policy denies must still be denied."""
    reset(lab)
    last = None
    with lab.outage(PERMISSIONS):
        for username, role, method, route, obj, expected in cells():
            if expected != "deny":
                continue
            observed = probe(lab, http, username, method, route, obj)
            last = observed
            if observed.startswith("allow"):
                reset(lab)
                return Observed(True, 200, f"{method} {route} {obj} as {username} ({role})")
    reset(lab)
    return Observed(False, None, f"every denied cell stayed denied (last: {last})")


def attack_stale_role(lab: Any, http: httpx.Client) -> Observed:
    """A demotion takes effect at once: eddie edits, is demoted to viewer, and edits again.

    The first edit is allowed (he is an editor); a policy that cached his role from then on
    would allow the second too.
    """
    reset(lab)
    before = probe(lab, http, "eddie", "PATCH", "/invoices/{id}", "own")
    try:
        lab.state.store.execute("UPDATE users SET role = 'viewer' WHERE username = 'eddie'")
        after = probe(lab, http, "eddie", "PATCH", "/invoices/{id}", "own")
    finally:
        reset(lab)  # eddie is an editor again for the checks that follow
    detail = f"eddie edits his invoice ({before}), is demoted to viewer, edits again: {after}"
    return Observed(after.startswith("allow"), None, detail)


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
        "for viewers and editors; permitted() checks `owns` too.",
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
        "mass-assignment",
        "PATCH bodies that set role, owner, password_hash or internal_note (API3)",
        (
            "GET /me shows your role. What if your PATCH /me body names it too?",
            "PATCH /me with {'role': 'admin'}.",
        ),
        attack_mass_assignment,
        fix="accepted_fields: user -> {display_name, email}; invoice -> {memo, status}.",
    ),
    Attack(
        "data-exposure",
        "responses carry password_hash, or internal_note to roles that must not see it (API3)",
        (
            "Read the whole JSON of GET /me, not just what a UI would show.",
            "Which field should never leave the server? Which is staff-only?",
        ),
        attack_data_exposure,
        fix="public_fields: never password_hash; internal_note only for support and admin.",
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
        "stale-role",
        "a user demoted to viewer keeps editing: the policy remembered his old role",
        ("who.role() asks the permissions service: ask it on every decision.",),
        attack_stale_role,
        fix="Call who.role() in permitted() for every request; never cache roles per user.",
        flag=False,
    ),
    Attack(
        "fail-open",
        "during the permissions outage, requests the policy denies get through",
        (
            "with lab.outage('permissions'): ... makes who.role() raise DependencyDown.",
            "Inside it, as vera, GET /invoices/3.",
        ),
        attack_fail_open,
        fix="Catch DependencyDown around who.role() and return False: fail closed.",
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
    Check("fields-kept", "each role still sees the fields its work needs", check_fields),
    Check("writes-work", "vera edits her profile; eddie and ada edit invoices", check_writes),
    Check("least-scopes", "tokens get exactly the scopes asked for and allowed", check_scopes),
)
