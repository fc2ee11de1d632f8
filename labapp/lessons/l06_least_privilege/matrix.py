"""Lesson 06's legitimate checks: the permission matrix, and the fields, writes and scopes.

The matrix is every role x endpoint x own/other object, as the grader sees it.
Each cell is one real request with a seeded user's session token; its answer is classed as
``allow`` (2xx; for the invoice list, ``allow:own`` or ``allow:all`` by the ids it returns),
``deny`` (403 or 404: the lab answers 404 for someone else's invoice, so that a denial does
not confirm the invoice exists, and 403 for a function the role may not use at all) or
``HTTP nnn``. The expected class comes from the course's policy table (policy.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx

from labapp.engine.grading import Observed
from labapp.lessons.common import auth, session_token
from labapp.lessons.l06_least_privilege.policy import (
    ACCESS_TOKEN_TYPE,
    INVOICES,
    PASSWORD_HASHES,
    ROLE_OF,
    SEES_ALL_INVOICES,
    SPARE_HASH,
    TOKEN_EXCHANGE,
    USERS,
    reference_allows,
)

MEMO = {row[0]: row[4] for row in INVOICES}
NAME = {username: display for _, username, display, _, _ in USERS}


def reset(lab: Any) -> None:
    """Seeded users and invoices as they were; throwaway accounts and invoices gone.

    A row an exploit moved (a bound ``id``) is deleted first, or it would keep its name.
    """
    store = lab.state.store
    store.execute("DELETE FROM users WHERE id NOT BETWEEN 1 AND ?", (len(USERS),))
    store.execute("DELETE FROM invoices WHERE id NOT BETWEEN 1 AND ?", (len(INVOICES),))
    seeded = tuple(ROLE_OF)
    marks = ", ".join("?" * len(seeded))
    store.execute(f"DELETE FROM sessions WHERE username NOT IN ({marks})", seeded)
    for user_id, username, display, role, email in USERS:
        digest = PASSWORD_HASHES[username]
        store.execute(
            "INSERT OR IGNORE INTO users (id, username, display_name, role, email, password_hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, username, display, role, email, digest),
        )
        store.execute(
            "UPDATE users SET username = ?, display_name = ?, role = ?, email = ?, "
            "password_hash = ? WHERE id = ?",
            (username, display, role, email, digest, user_id),
        )
    store.executemany("INSERT OR REPLACE INTO invoices VALUES (?, ?, ?, ?, ?, ?)", INVOICES)


def throwaway(lab: Any) -> int:
    """A fresh account for a DELETE to aim at, so no seeded user is harmed."""
    name = f"trial-{secrets.token_hex(4)}"  # unique even after a wrong defense deleted rows
    return lab.state.store.execute(
        "INSERT INTO users (username, display_name, role, email, password_hash) "
        "VALUES (?, 'Trial account', 'viewer', ?, ?)",
        (name, f"{name}@fernhill.example", SPARE_HASH),
    )


def as_user(lab: Any, username: str) -> dict[str, str]:
    return auth(session_token(lab.state, username))


def other_invoice(username: str) -> int:
    return 3 if username == "vera" else 1  # eddie's invoice for vera; vera's for the rest


def owned(lab: Any, username: str) -> set[int]:
    """The ids of the invoices ``username`` owns now (a row may change hands mid-run)."""
    rows = lab.state.store.query("SELECT id FROM invoices WHERE owner = ?", (username,))
    return {row["id"] for row in rows}


def all_ids(lab: Any) -> set[int]:
    return {row["id"] for row in lab.state.store.query("SELECT id FROM invoices")}


# -- the permission matrix -----------------------------------------------------------------

# (method, route, action, object): object is "own", "other" or "" (no object)
ENDPOINTS = (
    ("GET", "/invoices", "invoice:list", ""),
    ("GET", "/invoices/{id}", "invoice:read", "own"),
    ("GET", "/invoices/{id}", "invoice:read", "other"),
    ("PATCH", "/invoices/{id}", "invoice:update", "own"),
    ("PATCH", "/invoices/{id}", "invoice:update", "other"),
    ("GET", "/me", "user:read-self", ""),
    ("PATCH", "/me", "user:update-self", ""),
    ("GET", "/admin/users", "user:list", ""),
    ("DELETE", "/admin/users/{id}", "user:delete", "other"),
)


def cells(lab: Any | None = None) -> Iterator[tuple[str, str, str, str, str, str]]:
    """(username, role, method, route, object, expected) for every cell that exists."""
    for _, username, _, role, _ in USERS:
        owns_any = bool(owned(lab, username)) if lab is not None else username != "svc-billing"
        yield from cells_of(username, role, owns_any=owns_any)


def cells_of(
    username: str, role: str, *, owns_any: bool = True
) -> Iterator[tuple[str, str, str, str, str, str]]:
    """One user's row of the matrix, as the table says for ``role`` (their role now)."""
    for method, route, action, obj in ENDPOINTS:
        if obj == "own" and not owns_any:
            continue  # the service account owns no invoice
        owns = obj != "other" and action not in ("user:list",)
        allowed = reference_allows(role, action, owns)
        if allowed and action == "invoice:list":
            expected = "allow:all" if role in SEES_ALL_INVOICES else "allow:own"
        else:
            expected = "allow" if allowed else "deny"
        yield username, role, method, route, obj, expected


def probe(lab: Any, http: httpx.Client, username: str, method: str, route: str, obj: str) -> str:
    """Send one cell's request and classify the answer: allow, deny or HTTP nnn."""
    headers = as_user(lab, username)
    body: dict[str, Any] | None = None
    url = route
    if "/invoices/{id}" in route:
        invoice_id = min(owned(lab, username)) if obj == "own" else other_invoice(username)
        url = f"/invoices/{invoice_id}"
        body = {"memo": MEMO.get(invoice_id, "memo")} if method == "PATCH" else None
    elif route == "/admin/users/{id}":
        url = f"/admin/users/{throwaway(lab)}"
    elif (method, route) == ("PATCH", "/me"):
        body = {"display_name": NAME.get(username, "A new name")}
    response = http.request(method, url, headers=headers, json=body)
    status = response.status_code
    if status in (403, 404):
        return "deny"
    if status == 422:  # the policy said yes; the input model refused the body (writes-work's row)
        return "allow"
    if not 200 <= status < 300:
        return f"HTTP {status}"
    if route == "/invoices":
        return listed(lab, username, response.json().get("invoices", []))
    return "allow"


def listed(lab: Any, username: str, rows: list[dict[str, Any]]) -> str:
    """Whose invoices a list holds: 'allow:own', 'allow:all' or the ids (counted when the
    output model hides ``id``: that is the fields-kept row's failure, not this one's)."""
    mine, every = owned(lab, username), all_ids(lab)
    if all("id" in row for row in rows):
        ids = {row["id"] for row in rows}
        if ids == mine:
            return "allow:own"
        return "allow:all" if ids == every else f"allow:{sorted(ids, key=str)}"
    if len(rows) == len(mine):
        return "allow:own"
    return "allow:all" if len(rows) == len(every) else f"allow:{len(rows)} invoices"


def matrix(lab: Any, http: httpx.Client) -> list[tuple[str, str, str, str, str]]:
    """Every cell as (role, endpoint, object, expected, observed)."""
    reset(lab)
    rows = []
    for username, role, method, route, obj, expected in cells(lab):
        observed = probe(lab, http, username, method, route, obj)
        rows.append((role, f"{method} {route}", obj or "—", expected, observed))
    reset(lab)
    return rows


def render(rows: list[tuple[str, str, str, str, str]]) -> str:
    """The matrix as a compact text table, mismatches marked."""
    table = [("", "role", "endpoint", "object", "expected", "observed")]
    table += [("✗" if e != o else "", r, p, b, e, o) for r, p, b, e, o in rows]
    widths = [max(len(line[i]) for line in table) for i in range(6)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    )


def check_matrix(lab: Any, http: httpx.Client) -> Observed:
    rows = matrix(lab, http)
    wrong = [row for row in rows if row[3] != row[4]]
    if not wrong:
        return Observed(True, 200, f"all {len(rows)} cells match")
    shown = "; ".join(f"{r} {p} {b}: expected {e}, got {o}" for r, p, b, e, o in wrong[:6])
    more = f"; and {len(wrong) - 6} more" if len(wrong) > 6 else ""
    return Observed(False, None, f"{len(wrong)} of {len(rows)} cells differ: {shown}{more}")


def token_for(lab: Any, http: httpx.Client, username: str, scope: str) -> httpx.Response:
    """Exchange ``username``'s session for a token asking ``scope`` ("" asks for none)."""
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": session_token(lab.state, username),
        "subject_token_type": ACCESS_TOKEN_TYPE,
    }
    return http.post("/oauth/token", data={**form, "scope": scope} if scope else form)


# -- what real users need ------------------------------------------------------------------


def check_fields(lab: Any, http: httpx.Client) -> Observed:
    """Least privilege on output is not 'show nothing': each role still sees its fields."""
    reset(lab)
    wanted = [
        ("vera", "/invoices/1", {"id", "owner", "amount_cents", "status", "memo"}),
        ("vera", "/me", {"id", "username", "display_name", "role", "email"}),
        ("sam", "/invoices/3", {"memo", "internal_note"}),
        ("ada", "/invoices/1", {"memo", "internal_note"}),
    ]
    for username, url, fields in wanted:
        response = http.get(url, headers=as_user(lab, username))
        if not response.is_success:
            return Observed(
                False,
                response.status_code,
                f"GET {url} as {username} was refused before any field was chosen: "
                "permitted() or invoice_filter denied too much (see permission-matrix)",
            )
        missing = fields - set(response.json())
        if missing:
            return Observed(
                False, response.status_code, f"GET {url} as {username} lacks {sorted(missing)}"
            )
    response = http.get("/admin/users", headers=as_user(lab, "ada"))
    rows = response.json().get("users", []) if response.is_success else []
    ok = bool(rows) and all({"username", "role", "email"} <= set(row) for row in rows)
    return Observed(ok, response.status_code, "GET /admin/users as ada shows username, role, email")


def check_writes(lab: Any, http: httpx.Client) -> Observed:
    reset(lab)
    calls = [
        ("vera", "/me", {"display_name": "Vera V.", "email": "v@example.test"}),
        ("eddie", "/invoices/3", {"memo": "Consulting, Q1 (revised)", "status": "paid"}),
        ("ada", "/invoices/1", {"status": "paid"}),
    ]
    seen = Observed(False)
    for username, url, body in calls:
        response = http.patch(url, headers=as_user(lab, username), json=body)
        seen = Observed(response.is_success, response.status_code, f"PATCH {url} as {username}")
        if not seen.succeeded:
            break
    reset(lab)
    return seen


def check_scopes(lab: Any, http: httpx.Client) -> Observed:
    """Each role gets what it asked for, within what it may have; and it binds.

    Only "at least what was asked" here: a grant of *more* is the over-grant attack's row,
    whose failure says so ("granted too much"), not "denying too much".
    """
    reset(lab)
    for username, scope in [
        ("vera", "invoices:read"),
        ("eddie", "invoices:read invoices:write"),
        ("ada", "invoices:read invoices:write profile users:admin users:read"),
    ]:
        response = token_for(lab, http, username, scope)
        granted = response.json().get("scope", "") if response.is_success else None
        if granted is None or not set(scope.split()) <= set(str(granted).split()):
            return Observed(
                False, response.status_code, f"{username} asked {scope!r}, got {granted!r}"
            )
    answer = token_for(lab, http, "eddie", "invoices:read").json()
    narrow = answer["access_token"]
    read = http.get("/invoices", headers=auth(narrow))
    if "invoices:write" in str(answer.get("scope", "")).split():  # over-grant's row says so
        return Observed(read.is_success, read.status_code, "a read-only token reads")
    write = http.patch("/invoices/3", headers=auth(narrow), json={"memo": MEMO[3]})
    ok = read.is_success and write.status_code == 403
    ok = ok and "insufficient_scope" in write.headers.get("www-authenticate", "")
    return Observed(
        ok, read.status_code, "a read-only token reads; its PATCH gets 403 insufficient_scope"
    )
