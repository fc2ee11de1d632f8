"""Lesson 06: least privilege. An invoices API whose every authorization decision is weak.

Five hooks decide: the role x action x ownership policy, the ownership filter of the data
query, the fields a response shows, the fields a request may write, and the scopes a token
gets. Their weak defaults invite OWASP API Security Top 10 2023 API1 (BOLA), API3 (broken
object property level authorization: mass assignment, excessive data exposure) and API5
(BFLA), scope escalation (RFC 6749 §3.3) and failing open (OWASP ASVS 5 16.5.3).
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Path, Request

from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import LabState
from labapp.lessons.common import bearer_token, challenge
from labapp.lessons.l06_least_privilege.hooks import Who
from labapp.lessons.l06_least_privilege.inputs import INT64, accept, field_names, update_row
from labapp.lessons.l06_least_privilege.policy import (
    ALL_SCOPES,
    PERMISSIONS,
    ROLE_SCOPES,
    SCOPE_OF,
    SEES_INTERNAL_NOTES,
    WRITABLE,
    reference_allows,
)

REALM = "invoices"

# An id in a path is a 64-bit integer, as SQLite stores it: a larger one is a 422, not a 500.
RowId = Annotated[int, Path(ge=INT64[0], le=INT64[1])]


@dataclass
class Ctx:
    """One authorized request: the caller (as the token says) and any flags it earned."""

    user: dict[str, Any]
    flags: dict[str, str] = field(default_factory=dict)


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
            "ON u.username = a.username WHERE a.token = ?",
            (token,),
        )
        return {**row, "scopes": set(row["scopes"].split()), "session": False} if row else None

    def live_role(username: str) -> str:
        state.require_up(PERMISSIONS)
        row = store.one("SELECT role FROM users WHERE username = ?", (username,))
        return row["role"] if row else ""

    async def gate(
        request: Request, action: str, owns: bool, resource: str, hide: bool = False
    ) -> Ctx:
        """Scope first (RFC 6750 §3.1), then the learner's policy; deny unless it says True."""
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
        why = f"permitted({user['role']}, {action}, owns={owns})" + (" during outage" * outage)
        store.audit(user["username"], what, resource, "allow" if allowed else "deny", why)
        if not allowed:
            # Someone else's invoice: 404, as if it did not exist (no existence oracle).
            raise HTTPException(404 if hide and not owns else 403, "not allowed")
        ctx = Ctx(user)
        if outage and not reference_allows(user["role"], action, owns):
            ctx.flags["fail-open"] = state.flag("fail-open")
        return ctx

    async def shown(ctx: Ctx, kind: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keep = field_names(
            state, "public_fields", await state.call("public_fields", kind, ctx.user["role"])
        )
        out = [{k: v for k, v in row.items() if k in keep} for row in rows]
        leaked = any("password_hash" in row for row in out) or (
            ctx.user["role"] not in SEES_INTERNAL_NOTES and any("internal_note" in r for r in out)
        )
        if leaked:
            ctx.flags["data-exposure"] = state.flag("data-exposure")
        return out

    async def writable(ctx: Ctx, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        accepted = field_names(state, "accepted_fields", await state.call("accepted_fields", kind))
        changes = accept(kind, body, accepted)
        if set(changes) - WRITABLE[kind]:  # a field no client may set was bound
            ctx.flags["mass-assignment"] = state.flag("mass-assignment")
        return changes

    def respond(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "flags": ctx.flags} if ctx.flags else body

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
        try:
            rows = store.query(sql + " ORDER BY id", tuple(params))
        except sqlite3.Error as exc:
            raise state.guard.bad_result("invoice_filter", f"SQL error: {exc}") from None
        role = ctx.user["role"]
        if any(
            not reference_allows(role, "invoice:read", r["owner"] == ctx.user["username"])
            for r in rows
        ):
            ctx.flags["bola"] = state.flag("bola")
        return rows

    def owner_of(invoice_id: int) -> str | None:
        row = store.one("SELECT owner FROM invoices WHERE id = ?", (invoice_id,))
        return row["owner"] if row else None

    app = FastAPI(title="Lesson 06 invoices API")

    @app.get("/health", summary="Is the service up?")
    def health() -> dict[str, str]:
        return {"status": "ok", "permissions": "down" if PERMISSIONS in state.outages else "up"}

    @app.post("/oauth/token", summary="Trade your session for a token with fewer scopes")
    async def token(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        user = caller(request)
        if user is None or not user["session"]:
            raise HTTPException(401, "sign in first", headers=challenge(REALM))
        scope = body.get("scope", "")
        if not isinstance(scope, str):  # RFC 6749 §3.3: a space-delimited string
            raise HTTPException(422, "scope must be a string of space-separated scopes")
        requested = set(scope.split())
        allowed = set(ROLE_SCOPES.get(user["role"], ()))
        granted = field_names(
            state, "grant_scopes", await state.call("grant_scopes", requested, allowed)
        )
        granted &= ALL_SCOPES  # a scope nobody defined means nothing
        access = secrets.token_urlsafe(24)
        store.add_secret(access)
        store.execute(
            "INSERT INTO access_tokens VALUES (?, ?, ?)",
            (access, user["username"], " ".join(sorted(granted))),
        )
        store.audit(
            user["username"],
            "POST /oauth/token",
            " ".join(sorted(requested))[:80],
            "allow",
            f"granted {' '.join(sorted(granted))}",
        )
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "scope": " ".join(sorted(granted)),
        }
        if granted - set(ROLE_SCOPES.get(user["role"], ())):
            answer["flags"] = {"scope-escalation": state.flag("scope-escalation")}
        return answer

    @app.get("/invoices", summary="The invoices you may see")
    async def invoices(request: Request) -> dict[str, Any]:
        ctx = await gate(request, "invoice:list", True, "invoices")
        rows = await visible(ctx, None)
        return respond(ctx, {"invoices": await shown(ctx, "invoice", rows)})

    @app.get("/invoices/{invoice_id}", summary="One invoice")
    async def invoice(invoice_id: RowId, request: Request) -> dict[str, Any]:
        user = caller(request) or {}
        owns = owner_of(invoice_id) == user.get("username")
        ctx = await gate(request, "invoice:read", owns, f"invoice {invoice_id}", hide=True)
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
        if not await visible(ctx, invoice_id):
            raise HTTPException(404, "no such invoice")
        changes = await writable(ctx, "invoice", body)
        if not reference_allows(ctx.user["role"], "invoice:update", owns):
            ctx.flags["bola"] = state.flag("bola")
        invoice_id = update_row(store, "invoices", invoice_id, changes)
        rows = store.query("SELECT * FROM invoices WHERE id = ?", (invoice_id,))
        if not rows:  # a bound id SQLite stored differently: gone from here, not a crash
            raise HTTPException(409, "the invoice moved")
        return respond(ctx, (await shown(ctx, "invoice", rows))[0])

    @app.get("/me", summary="Your profile")
    async def me(request: Request) -> dict[str, Any]:
        ctx = await gate(request, "user:read-self", True, "me")
        rows = store.query("SELECT * FROM users WHERE id = ?", (ctx.user["id"],))
        return respond(ctx, (await shown(ctx, "user", rows))[0])

    @app.patch("/me", summary="Edit your profile")
    async def edit_me(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        ctx = await gate(request, "user:update-self", True, "me")
        changes = await writable(ctx, "user", body)
        user_id = update_row(store, "users", ctx.user["id"], changes)
        rows = store.query("SELECT * FROM users WHERE id = ?", (user_id,))
        if not rows:
            raise HTTPException(409, "your account moved")
        return respond(ctx, (await shown(ctx, "user", rows))[0])

    @app.get("/admin/users", summary="Admin: every account")
    async def admin_users(request: Request) -> dict[str, Any]:
        ctx = await gate(request, "user:list", False, "users")
        rows = store.query("SELECT * FROM users ORDER BY id")
        return respond(ctx, {"users": await shown(ctx, "user", rows)})

    @app.delete("/admin/users/{user_id}", summary="Admin: delete an account")
    async def delete_user(user_id: RowId, request: Request) -> dict[str, Any]:
        user = caller(request) or {}
        ctx = await gate(request, "user:delete", user_id == user.get("id"), f"user {user_id}")
        if store.one("SELECT id FROM users WHERE id = ?", (user_id,)) is None:
            raise HTTPException(404, "no such user")
        store.execute("DELETE FROM users WHERE id = ?", (user_id,))
        if ctx.user["role"] != "admin":
            ctx.flags["bfla"] = state.flag("bfla")
        return respond(ctx, {"deleted": user_id})

    return app
