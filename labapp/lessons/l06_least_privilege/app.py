"""Lesson 06: least privilege. An invoices API whose every authorization decision is weak.

Five hooks decide: the role x action x ownership policy, the ownership filter of the data
query, the fields a response shows, the fields a request may write, and the scopes a token
gets. Their weak defaults invite OWASP API Security Top 10 2023 API1 (BOLA), API3 (broken
object property level authorization: mass assignment, excessive data exposure) and API5
(BFLA), scope escalation (RFC 6749 §3.3) and failing open (OWASP ASVS 5 16.5.3).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Path, Request

from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import LabState
from labapp.lessons.common import bearer_token, challenge
from labapp.lessons.l06_least_privilege import oauth
from labapp.lessons.l06_least_privilege.hooks import Who
from labapp.lessons.l06_least_privilege.inputs import INT64, accept, field_names, update_row
from labapp.lessons.l06_least_privilege.policy import (
    ALL_SCOPES,
    PERMISSIONS,
    SCOPE_OF,
    SEES_ALL_INVOICES,
    SEES_INTERNAL_NOTES,
    WRITABLE,
    reference_allows,
)

REALM = "invoices"

# An id in a path is a 64-bit integer, as SQLite stores it: a larger one is a 422, not a 500.
RowId = Annotated[int, Path(ge=INT64[0], le=INT64[1])]

# One answer carries at most one flag: the one its exploit is about. Reading eddie's invoice
# during an outage is the outage's exploit; deleting an account, the hidden function's.
FLAG_ORDER = ("fail-open", "bfla", "mass-assignment", "bola", "data-exposure")


@dataclass
class Ctx:
    """One request the policy let through: the caller, the decision, and what it earned."""

    user: dict[str, Any]
    what: str  # "PATCH /invoices/{invoice_id}"
    resource: str  # "invoice 3"
    why: str  # the policy's decision, for the audit log
    earned: list[str] = field(default_factory=list)

    def earn(self, flag: str) -> None:
        if flag not in self.earned:
            self.earned.append(flag)


def create_app(state: LabState) -> FastAPI:
    store = state.store

    def caller(request: Request) -> dict[str, Any] | None:
        """Who holds the bearer token, and the scopes it carries (a session has its role's)."""
        token = bearer_token(request)
        if token is None:
            return None
        row = store.one(
            "SELECT u.id, u.username, u.role FROM sessions s JOIN users u "
            "ON u.username = s.username WHERE s.token = ?",
            (token,),
        )
        if row is not None:
            # A first-party session acts with the user's full rights: only the policy limits
            # it. Scopes limit what a *delegated* token (from /oauth/token) may do.
            return {**row, "scopes": set(ALL_SCOPES), "session": True}
        row = store.one(
            "SELECT u.id, u.username, u.role, a.scopes FROM access_tokens a JOIN users u "
            "ON u.username = a.username WHERE a.token = ? AND a.expires_at > ?",
            (token, time.time()),
        )
        return {**row, "scopes": set(row["scopes"].split()), "session": False} if row else None

    def live_role(username: str) -> str:
        state.require_up(PERMISSIONS)
        row = store.one("SELECT role FROM users WHERE username = ?", (username,))
        return row["role"] if row else ""

    async def gate(
        request: Request, action: str, owns: bool, resource: str, hide: bool = False
    ) -> Ctx:
        """Scope first (RFC 6750 §3.1), then the learner's policy; deny unless it says True.

        A denial is audited here; an allowed request is audited by :func:`decided` once the
        route has finished, so that a write refused later (its body) is logged as denied.
        """
        user = caller(request)
        what = f"{request.method} {request.scope['route'].path}"
        if user is None:
            store.audit("anonymous", what, resource, "deny", "no valid bearer token")
            checked = bearer_token(request) is not None
            headers = challenge(REALM, invalid_token=checked)
            raise HTTPException(401, "a valid bearer token is required", headers=headers)
        needed = SCOPE_OF[action]
        if needed not in user["scopes"]:
            store.audit(user["username"], what, resource, "deny", f"token lacks scope {needed}")
            value = f'Bearer realm="{REALM}", error="insufficient_scope", scope="{needed}"'
            raise HTTPException(403, "insufficient_scope", headers={"WWW-Authenticate": value})
        who = Who(user["username"], lambda: live_role(user["username"]))
        try:
            allowed = await state.call("permitted", who, action, owns)  # a bool: Hook.returns
        except (HookFailed, HookTimeout) as exc:
            store.audit(user["username"], what, resource, "error", str(exc))
            raise
        outage = PERMISSIONS in state.outages
        why = f"permitted({user['role']}, {action}, owns={owns}) said {allowed}"
        why += " during outage" * outage
        if not allowed:
            store.audit(user["username"], what, resource, "deny", why)
            # Someone else's invoice: 404, as if it did not exist (no existence oracle).
            raise HTTPException(404 if hide and not owns else 403, "not allowed")
        ctx = Ctx(user, what, resource, why)
        if outage and not reference_allows(user["role"], action, owns):
            ctx.earn("fail-open")
        return ctx

    @contextlib.asynccontextmanager
    async def decided(ctx: Ctx) -> AsyncIterator[None]:
        """Audit the request's outcome: allow only if the route answered 2xx.

        A body the input model refuses (422), an invoice the filter hides (404) or a
        conflict (409) is a denial, logged as one with its reason (ASVS 5.0 16.3.2).
        """
        actor = ctx.user["username"]
        try:
            yield
        except HTTPException as exc:
            reason = f"{ctx.why}, then refused: {exc.status_code} {exc.detail}"
            store.audit(actor, ctx.what, ctx.resource, "deny", reason)
            raise
        except Exception as exc:
            store.audit(actor, ctx.what, ctx.resource, "error", f"{type(exc).__name__}: {exc}")
            raise
        store.audit(actor, ctx.what, ctx.resource, "allow", ctx.why)

    async def shown(ctx: Ctx, kind: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows as the output model lets them out: only ``public_fields(kind, role)``."""
        keep = field_names(
            state, "public_fields", await state.call("public_fields", kind, ctx.user["role"])
        )
        out = [{k: v for k, v in row.items() if k in keep} for row in rows]
        me = ctx.user["id"]
        # The exploit: someone else's password hash, or a staff note read by a non-staff role.
        # (The caller's own hash in /me is a leak too, the grader's concern, but earns nothing:
        # every profile read would carry a flag.)
        pairs = zip(out, rows, strict=True)
        others_hash = any("password_hash" in r and row["id"] != me for r, row in pairs)
        staff_note = any("internal_note" in r for r in out)
        if others_hash or (staff_note and ctx.user["role"] not in SEES_INTERNAL_NOTES):
            ctx.earn("data-exposure")
        return out

    async def writable(ctx: Ctx, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """The body's changes if the input model accepts them all; else a 422 (not a drop)."""
        accepted = field_names(state, "accepted_fields", await state.call("accepted_fields", kind))
        changes = accept(kind, body, accepted)
        if set(changes) - WRITABLE[kind]:  # a field no client may set was bound
            ctx.earn("mass-assignment")
        return changes

    def respond(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
        """The answer, with a flag only if this request was an exploit (the first it earned)."""
        if not ctx.earned:
            return body
        return {**body, "flag": state.flag(min(ctx.earned, key=FLAG_ORDER.index))}

    async def visible(ctx: Ctx, invoice_id: int | None) -> list[dict[str, Any]]:
        """Ownership in the query itself: the learner's WHERE clause, AND-ed in."""
        result = await state.call("invoice_filter", dict(ctx.user))
        if not (
            isinstance(result, tuple)
            and len(result) == 2
            and isinstance(result[0], str)
            and isinstance(result[1], (tuple, list))
        ):
            raise state.guard.bad_result("invoice_filter", "must return (sql_where, params)")
        where, params = result
        sql = f"SELECT * FROM invoices WHERE ({where})"
        if invoice_id is not None:
            sql, params = sql + " AND id = ?", (*params, invoice_id)
        elif state.is_weak("invoice_filter") and ctx.user["role"] not in SEES_ALL_INVOICES:
            # The shipped list page asks for the caller's own invoices (staff see them all):
            # what vera's app shows her is right. Only the route by id trusts the URL, so the
            # bola flag is earned there alone. The learner's filter decides for both routes.
            sql, params = sql + " AND owner = ?", (*params, ctx.user["username"])
        try:
            rows = store.query(sql + " ORDER BY id", tuple(params))
        except sqlite3.Error as exc:
            raise state.guard.bad_result("invoice_filter", f"SQL error: {exc}") from None
        role = ctx.user["role"]
        if any(
            not reference_allows(role, "invoice:read", r["owner"] == ctx.user["username"])
            for r in rows
        ):
            ctx.earn("bola")
        return rows

    def owner_of(invoice_id: int) -> str | None:
        row = store.one("SELECT owner FROM invoices WHERE id = ?", (invoice_id,))
        return row["owner"] if row else None

    app = FastAPI(title="Fernhill invoices API")

    @app.get("/health", summary="Is the service up?")
    def health() -> dict[str, str]:
        return {"status": "ok", "permissions": "down" if PERMISSIONS in state.outages else "up"}

    oauth.install(app, state)

    @app.get("/invoices", summary="The invoices you may see")
    async def invoices(request: Request) -> dict[str, Any]:
        ctx = await gate(request, "invoice:list", True, "invoices")
        async with decided(ctx):
            rows = await visible(ctx, None)
            return respond(ctx, {"invoices": await shown(ctx, "invoice", rows)})

    @app.get("/invoices/{invoice_id}", summary="One invoice")
    async def invoice(invoice_id: RowId, request: Request) -> dict[str, Any]:
        user = caller(request) or {}
        owns = owner_of(invoice_id) == user.get("username")
        ctx = await gate(request, "invoice:read", owns, f"invoice {invoice_id}", hide=True)
        async with decided(ctx):
            rows = await visible(ctx, invoice_id)
            if not rows:
                raise HTTPException(404, "no such invoice")
            return respond(ctx, (await shown(ctx, "invoice", rows))[0])

    @app.patch("/invoices/{invoice_id}", summary="Edit an invoice")
    async def edit_invoice(
        invoice_id: RowId, request: Request, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        user = caller(request) or {}
        owns = owner_of(invoice_id) == user.get("username")
        ctx = await gate(request, "invoice:update", owns, f"invoice {invoice_id}", hide=True)
        async with decided(ctx):
            if not await visible(ctx, invoice_id):
                raise HTTPException(404, "no such invoice")
            changes = await writable(ctx, "invoice", body)
            if not reference_allows(ctx.user["role"], "invoice:update", owns):
                ctx.earn("bola")
            invoice_id = update_row(store, "invoices", invoice_id, changes)
            rows = store.query("SELECT * FROM invoices WHERE id = ?", (invoice_id,))
            if not rows:  # a bound id SQLite stored differently: gone from here, not a crash
                raise HTTPException(409, "the invoice moved")
            return respond(ctx, (await shown(ctx, "invoice", rows))[0])

    @app.get("/me", summary="Your profile")
    async def me(request: Request) -> dict[str, Any]:
        ctx = await gate(request, "user:read-self", True, "me")
        async with decided(ctx):
            rows = store.query("SELECT * FROM users WHERE id = ?", (ctx.user["id"],))
            return respond(ctx, (await shown(ctx, "user", rows))[0])

    @app.patch("/me", summary="Edit your profile")
    async def edit_me(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        ctx = await gate(request, "user:update-self", True, "me")
        async with decided(ctx):
            changes = await writable(ctx, "user", body)
            user_id = update_row(store, "users", ctx.user["id"], changes)
            rows = store.query("SELECT * FROM users WHERE id = ?", (user_id,))
            if not rows:
                raise HTTPException(409, "your account moved")
            return respond(ctx, (await shown(ctx, "user", rows))[0])

    @app.get("/admin/users", summary="Admin: every account")
    async def admin_users(request: Request) -> dict[str, Any]:
        ctx = await gate(request, "user:list", False, "users")
        async with decided(ctx):
            if not reference_allows(ctx.user["role"], "user:list", False):
                ctx.earn("bfla")
            rows = store.query("SELECT * FROM users ORDER BY id")
            return respond(ctx, {"users": await shown(ctx, "user", rows)})

    @app.delete("/admin/users/{user_id}", summary="Admin: delete an account")
    async def delete_user(user_id: RowId, request: Request) -> dict[str, Any]:
        user = caller(request) or {}
        owns = user_id == user.get("id")
        ctx = await gate(request, "user:delete", owns, f"user {user_id}")
        async with decided(ctx):
            if store.one("SELECT id FROM users WHERE id = ?", (user_id,)) is None:
                raise HTTPException(404, "no such user")
            store.execute("DELETE FROM users WHERE id = ?", (user_id,))
            if not reference_allows(ctx.user["role"], "user:delete", owns):
                ctx.earn("bfla")
            return respond(ctx, {"deleted": user_id})

    return app
