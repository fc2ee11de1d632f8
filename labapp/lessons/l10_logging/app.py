"""Lesson 10: log meaningful events, detect attacks in them, adapt to risk.

A login + API service: passwords (argon2id), TOTP as a second factor (RFC 6238), short-lived
JWT access tokens, rotating refresh tokens whose reuse revokes the family, orders with an
owner, and two support routes. Every security decision is written to the service's log
through one hook, ``audit_event(kind, fields)``, whose return value is the log line; every
login with the right password is judged by a second, ``assess_risk(context)``.

The client address is taken from ``X-Forwarded-For``: the lab plays the load balancer that
sets it when it replays a day of traffic. Trust that header only from your own proxy
(lesson 01 shows what happens otherwise).
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from labapp.engine.spec import LabState
from labapp.lessons.common import bearer_token
from labapp.lessons.l10_logging.desk import Desk
from labapp.lessons.l10_logging.network import Tools
from labapp.lessons.l10_logging.people import country
from labapp.lessons.l10_logging.service import Account, Service, iso

Text = Annotated[str, Field(max_length=256)]
STAFF = ("support", "admin")

__all__ = ["Tools", "create_app"]


class Login(BaseModel):
    username: Text
    password: Text
    totp: Annotated[str, Field(max_length=16)] | None = None


class RefreshBody(BaseModel):
    refresh_token: Text


class LogoutBody(BaseModel):
    refresh_token: Text | None = None


def client_address(request: Request) -> str:
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(forwarded))
    except ValueError:
        return request.client.host if request.client else "127.0.0.1"


class Call:
    """One request as the service sees it: what every event of it carries."""

    def __init__(self, state: LabState, service: Service, request: Request, body: Any) -> None:
        self.state, self.service = state, service
        self.request_id = request.state.request_id
        client = client_address(request)
        service.stamps[self.request_id] = stamp = iso(service.clock.now())
        self.base = {
            "time": stamp,
            "request_id": self.request_id,
            "client": client,
            "country": country(client),
            "user_agent": request.headers.get("user-agent", ""),
            "method": request.method,
            "path": request.url.path,
            "url": str(request.url),  # with its query string
            "headers": dict(request.headers),  # Authorization and Cookie included
            "body": body,  # the parsed JSON body: passwords, TOTP codes, refresh tokens
        }

    @property
    def client(self) -> str:
        return self.base["client"]

    async def event(self, kind: str, username: str | None, outcome: str, reason: str, **more):
        fields = {**self.base, "username": username, "outcome": outcome, "reason": reason}
        fields.update(more)
        self.service.ask(self.request_id)
        line = await self.state.call("audit_event", kind, fields)
        if line is not None:
            self.service.write(line, self.request_id)


def _refused(detail: str, status: int = 401, **more: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **more}, status_code=status)


def create_app(state: LabState) -> FastAPI:
    desk: Desk = state.desk  # type: ignore[attr-defined]  (seed() puts it there)
    app = FastAPI(title="Lesson 10: log, detect, adapt", version="1.0")
    app.state.desk = desk

    @app.middleware("http")
    async def request_id(request: Request, call_next: Any) -> Response:
        # The service's own id, never one the client sent: a log must not take a client's word.
        request.state.request_id = uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    async def bearer(call: Call, request: Request) -> Account | None:
        token = bearer_token(request)
        if token is None:
            await call.event("token.refused", None, "failure", "missing")
            return None
        account, why = call.service.check_access(token)
        if account is None:
            await call.event("token.refused", None, "failure", why)
        return account

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/login")
    async def login(body: Login, request: Request) -> Response:
        service = desk.service
        call = Call(state, service, request, body.model_dump())
        name = body.username
        account = service.check_password(name, body.password)
        if account is None:
            service.failed(name, call.client)
            why = "bad_password" if name in service.accounts else "unknown_user"
            await call.event("login.failure", name, "failure", why)
            return _refused("wrong username or password")
        device = request.cookies.get("device")
        if account.mfa_required:
            decision = "step_up"
        else:
            context = service.context(account, call.client, device, call.base["user_agent"])
            decision = await desk.assess(state, context)
        if decision == "deny":
            service.failed(name, call.client)
            await call.event("login.failure", name, "failure", "risk_denied")
            return _refused("login refused", status=403)
        if decision == "step_up":
            if not body.totp:
                await call.event("mfa.challenge", name, "challenge", "step_up")
                return _refused("a second factor is required: send your TOTP code", step_up="totp")
            if not service.check_totp(account, body.totp):
                service.failed(name, call.client)
                await call.event("mfa.failure", name, "failure", "bad_totp")
                return _refused("wrong TOTP code")
            await call.event("mfa.success", name, "success", "totp")
        await call.event("login.success", name, "success", "password")
        issued = service.issue(account)
        await call.event("token.issued", name, "success", "login", **issued)
        device = device if device in account.known_devices else uuid.uuid4().hex[:12]
        service.remember(account, call.client, device)
        response = JSONResponse({**issued, "token_type": "Bearer"})
        response.set_cookie("device", device, httponly=True, samesite="strict")
        return response

    @app.post("/refresh")
    async def refresh(body: RefreshBody, request: Request) -> Response:
        service = desk.service
        call = Call(state, service, request, body.model_dump())
        record, why = service.use_refresh(body.refresh_token)
        if record is None:
            await call.event("token.refused", None, "failure", why)
            return _refused("unknown refresh token")
        if why == "reused":
            await call.event("refresh.reuse", record.username, "failure", why, family=record.family)
            return _refused("refresh token already used: this session is revoked")
        if why != "ok":
            await call.event("token.refused", record.username, "failure", why, family=record.family)
            return _refused("this session was revoked")
        issued = service.issue(service.accounts[record.username], record.family)
        await call.event("token.issued", record.username, "success", "refresh", **issued)
        return JSONResponse({**issued, "token_type": "Bearer"})

    @app.post("/logout", status_code=204)
    async def logout(request: Request, body: LogoutBody | None = None) -> Response:
        service = desk.service
        call = Call(state, service, request, body.model_dump() if body else None)
        account = await bearer(call, request)
        if account is None:
            return _refused("a valid bearer token is required")
        record = service.revoke(body.refresh_token) if body and body.refresh_token else None
        family = record.family if record and record.username == account.username else None
        await call.event("logout", account.username, "success", "user", family=family)
        return Response(status_code=204)

    @app.get("/me")
    async def me(request: Request) -> Response:
        call = Call(state, desk.service, request, None)
        account = await bearer(call, request)
        if account is None:
            return _refused("a valid bearer token is required")
        return JSONResponse({"username": account.username, "role": account.role})

    @app.get("/orders/{order_id}")
    async def order(order_id: int, request: Request) -> Response:
        service = desk.service
        call = Call(state, service, request, None)
        account = await bearer(call, request)
        if account is None:
            return _refused("a valid bearer token is required")
        owner = service.orders.get(order_id)
        if owner is None:
            return _refused("no such order", status=404)
        if owner != account.username and account.role not in STAFF:
            await call.event("authz.denied", account.username, "failure", "not_owner")
            return _refused("not your order", status=403)
        return JSONResponse({"id": order_id, "owner": owner, "total": 20 + order_id % 7})

    @app.get("/admin/logs")
    async def logs(request: Request) -> Response:
        """The service's last 50 log lines, for support staff."""
        service = desk.service
        call = Call(state, service, request, None)
        account = await bearer(call, request)
        if account is None:
            return _refused("a valid bearer token is required")
        if account.role not in STAFF:
            await call.event("authz.denied", account.username, "failure", "role")
            return _refused("support staff only", status=403)
        return JSONResponse({"lines": service.lines[-50:]})

    @app.get("/admin/report")
    async def report(request: Request) -> Response:
        """Today's sales: for the admin only."""
        service = desk.service
        call = Call(state, service, request, None)
        account = await bearer(call, request)
        if account is None:
            return _refused("a valid bearer token is required")
        if account.role != "admin":
            await call.event("authz.denied", account.username, "failure", "role")
            return _refused("admin only", status=403)
        found: dict[str, Any] = {"orders": len(service.orders), "revenue": 1234}
        if state.is_weak("audit_event"):  # the flag goes only to the leak it rewards
            found["flag"] = state.flag("log-leak")
        return JSONResponse(found)

    return app
