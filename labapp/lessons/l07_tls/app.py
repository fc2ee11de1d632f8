"""Lesson 07: TLS and mutual TLS. A messaging API whose transport is weak in six places.

The API is served over HTTPS (lab.url) and, "for old clients", over plain HTTP too; its
internal service API is on a third port that should require client certificates. Six
hooks decide: what the plain-HTTP port does, the security headers of HTTPS responses, the
two server TLS contexts, who a service caller is, and how the reports job builds its HTTPS
client. References: OWASP ASVS 5 V12 (12.1.1, 12.1.3, 12.2.1, 12.3.2, 12.3.5) and 3.4.1,
RFC 6797 (HSTS), RFC 8996 and RFC 9325 §3.1.1 (TLS versions), RFC 6750 §5.3.
"""

from __future__ import annotations

import datetime
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.responses import JSONResponse, Response

from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import Hook, LabState
from labapp.engine.tls import CertFiles, legacy_context, peer_common_name
from labapp.lessons.common import bearer_token, challenge
from labapp.lessons.l07_tls.network import Network, context_from_hook, new_session

if TYPE_CHECKING:
    from labapp.engine.lab import Lab

REALM = "messages"
MESSAGES = {
    "bob": ["Dinner at 8?", "Your parcel is at the depot", "Board meeting moved to Friday"],
    "alice": ["Welcome to the messages API"],
}
DAILY_REPORT = {"messages_sent": 18234, "active_users": 412}  # yesterday's, whenever it runs
PAYOUTS = [
    {"merchant": "m-104", "amount_cents": 120400},
    {"merchant": "m-221", "amount_cents": 8800},
]
USAGE = {"requests_today": 91234}
SERVICE_OF_ROUTE = {"/internal/payouts": "billing", "/internal/usage": "reports"}


@dataclass
class TransportRequest:
    """What the transport hooks see of a request.

    ``scheme`` is "http" or "https"; ``token`` the bearer token, if any; ``tls`` the ASGI
    TLS extension (None over plain HTTP); ``client_cert_cn`` the common name of the client
    certificate *the handshake verified* (None when there was none).
    """

    method: str
    path: str
    scheme: str
    headers: dict[str, str]
    token: str | None
    tls: dict[str, Any] | None
    client_cert_cn: str | None
    _revoke: Callable[[], None] = field(repr=False)

    def revoke_token(self) -> None:
        """Revoke this request's bearer token: no later request can use it."""
        self._revoke()


def _owner(state: LabState, token: str | None) -> str:
    row = state.store.one("SELECT username FROM sessions WHERE token = ?", (token,))
    return row["username"] if row else "anonymous"


def transport_request(state: LabState, request: Request) -> TransportRequest:
    token = bearer_token(request)

    def revoke() -> None:
        if token:
            owner = _owner(state, token)
            state.store.execute("DELETE FROM sessions WHERE token = ?", (token,))
            path = request.scope["path"]
            state.store.audit(owner, "revoke token", path, "deny", "it was sent over plain HTTP")

    # The scope, not request.url: that one is rebuilt from the Host header, which is the
    # client's to write.
    return TransportRequest(
        method=request.method,
        path=request.scope["path"],
        scheme=request.scope["scheme"],
        headers={k.lower(): v for k, v in request.headers.items()},
        token=token,
        tls=request.scope.get("extensions", {}).get("tls"),
        client_cert_cn=peer_common_name(request.scope),
        _revoke=revoke,
    )


# -- the weak defaults ----------------------------------------------------------------------


def weak_on_plain_http(req: TransportRequest) -> bool:
    """WEAK on purpose: "some old clients still use http://", so serve them."""
    return True


def weak_security_headers(req: TransportRequest) -> dict[str, str]:
    """WEAK on purpose: no Strict-Transport-Security, so a browser may try http:// first."""
    return {}


def weak_server_tls(files: CertFiles) -> ssl.SSLContext:
    """WEAK on purpose: TLS 1.0 and 1.1 allowed too, "for old clients"."""
    context = legacy_context(server=True)
    context.load_cert_chain(files.cert, files.key)
    return context


def weak_service_tls(files: CertFiles) -> ssl.SSLContext:
    """WEAK on purpose: asks for no client certificate ("the proxy in front checks them")."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    return context


def weak_identify_service(req: TransportRequest) -> str | None:
    """WEAK on purpose: believes the header a TLS-terminating proxy is supposed to set."""
    return req.headers.get("x-client-cert-cn") or req.client_cert_cn


def weak_make_client(ca_file: Any) -> httpx.Client:
    """WEAK on purpose: verify=False, "the certificate errors were annoying in staging"."""
    return httpx.Client(verify=False)  # noqa: S501 - the lesson's deliberate mistake


HOOKS = (
    Hook(
        "on_plain_http",
        ("req",),
        "on_plain_http(req) -> bool: serve this plain-HTTP request? (req.revoke_token())",
        weak_on_plain_http,
        returns=bool,
    ),
    Hook(
        "security_headers",
        ("req",),
        "security_headers(req) -> dict: headers added to every HTTPS response",
        weak_security_headers,
    ),
    Hook(
        "server_tls",
        ("files",),
        "server_tls(files) -> ssl.SSLContext: the HTTPS port's TLS settings",
        weak_server_tls,
    ),
    Hook(
        "service_tls",
        ("files",),
        "service_tls(files) -> ssl.SSLContext: the service port's TLS settings (mTLS)",
        weak_service_tls,
    ),
    Hook(
        "identify_service",
        ("req",),
        "identify_service(req) -> str | None: which service is calling the service port?",
        weak_identify_service,
    ),
    Hook(
        "make_client",
        ("ca_file",),
        "make_client(ca_file) -> httpx.Client: the HTTPS client the reports job uses",
        weak_make_client,
    ),
)


def seed(state: LabState) -> None:
    state.store.executescript(
        "INSERT INTO users VALUES (5, 'svc-reports', 'Reports job (service account)', 'service');"
        "CREATE TABLE sessions (token TEXT PRIMARY KEY, username TEXT NOT NULL, "
        "given_to TEXT NOT NULL DEFAULT 'user', seen_in_clear INTEGER NOT NULL DEFAULT 0);"
    )
    for username in ("alice", "bob"):
        row = state.store.one(
            "SELECT role, display_name FROM users WHERE username = ?", (username,)
        )
        token = new_session(state.store, username)
        state.users.append({"username": username, **(row or {}), "token": token})


def _headers(state: LabState, value: Any) -> dict[str, str]:
    if not (
        isinstance(value, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        problem = f"must return a dict of str, not {value!r:.40}"
        raise state.guard.bad_result("security_headers", problem)
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(text):
            problem = f"{name!r}: {text!r:.40} is not a valid HTTP header (RFC 9110 §5)"
            raise state.guard.bad_result("security_headers", problem)
    return value


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")  # printable ASCII: no CR, LF or NUL


def create_app(state: LabState) -> FastAPI:
    store = state.store

    async def transport(req: TransportRequest) -> dict[str, str] | Response:
        """HTTPS: the security headers to add. Plain HTTP: on_plain_http decides, or 403."""
        if req.scheme == "https":
            return _headers(state, await state.call("security_headers", req))
        actor = _owner(state, req.token)
        if req.token and state.is_weak("on_plain_http"):  # it crossed the wire in clear
            store.execute("UPDATE sessions SET seen_in_clear = 1 WHERE token = ?", (req.token,))
        if await state.call("on_plain_http", req):  # a bool: Hook(returns=bool) sees to it
            store.audit(actor, f"{req.method} {req.path}", "http", "allow", "served in clear")
            return {}
        store.audit(actor, f"{req.method} {req.path}", "http", "deny", "plain HTTP refused")
        detail = (
            "this API is served over HTTPS only. Any credential you sent has crossed the "
            "network in clear: treat it as leaked."
        )
        return JSONResponse({"detail": detail}, status_code=403)

    def caller(request: Request) -> dict[str, Any]:
        token = bearer_token(request)
        row = store.one("SELECT * FROM sessions WHERE token = ?", (token,)) if token else None
        if row is None:
            raise HTTPException(
                401, "authentication required", headers=challenge(REALM, invalid_token=bool(token))
            )
        return row

    app = FastAPI(title="Lesson 07 messages API")

    @app.middleware("http")
    async def every_request(request: Request, call_next: Any) -> Response:
        # A middleware, not a route dependency: a 404, a 405 or a redirect to add a slash
        # never reaches a route, and each must still be refused in clear or get HSTS.
        try:
            outcome = await transport(transport_request(state, request))
        except (HookFailed, HookTimeout) as exc:  # the hook's own failure, named
            status = 504 if isinstance(exc, HookTimeout) else 500
            return JSONResponse({"detail": str(exc)}, status_code=status)
        if isinstance(outcome, Response):
            return outcome
        response = await call_next(request)  # errors too: a 401 over HTTPS gets HSTS as well
        response.headers.update(outcome)
        return response

    @app.get("/health", summary="Is the service up?")
    def health(request: Request) -> dict[str, Any]:
        return {"status": "ok", "scheme": request.scope["scheme"]}

    @app.get("/inbox", summary="Your messages")
    def inbox(request: Request) -> dict[str, Any]:
        session = caller(request)
        result: dict[str, Any] = {"messages": MESSAGES.get(session["username"], [])}
        over_tls = request.scope["scheme"] == "https"
        if over_tls and session["given_to"] == "phone-app" and session["seen_in_clear"]:
            result["flag"] = state.flag("sniff-token")  # the app itself only speaks http://
        return result

    @app.get("/reports/daily", summary="The daily report (reports service account)")
    def daily(request: Request) -> dict[str, Any]:
        session = caller(request)
        if session["username"] != "svc-reports":
            raise HTTPException(403, "reports only")
        yesterday = datetime.date.today() - datetime.timedelta(days=1)
        result: dict[str, Any] = {"report": {"date": yesterday.isoformat(), **DAILY_REPORT}}
        if session["given_to"] == "other-ca":
            result["flag"] = state.flag("impostor-server")
        elif session["given_to"] in ("wrong-name", "expired"):
            result["flag"] = state.flag("bad-certificate")
        return result

    return app


def create_service_app(state: LabState) -> FastAPI:
    """The internal service API: who calls is a service, proven (or not) by TLS."""
    store = state.store
    app = FastAPI(title="Lesson 07 internal service API")

    async def service(request: Request) -> str:
        req = transport_request(state, request)
        who = await state.call("identify_service", req)
        if who is not None and not isinstance(who, str):
            raise state.guard.bad_result(
                "identify_service", f"must return str or None, not {who!r:.40}"
            )
        wanted = SERVICE_OF_ROUTE[req.path]
        proof = f"certificate CN={req.client_cert_cn}" if req.client_cert_cn else "no certificate"
        if who != wanted:
            store.audit(
                who or "anonymous",
                f"GET {req.path}",
                "service",
                "deny",
                f"needs {wanted} ({proof})",
            )
            if who is None:
                raise HTTPException(401, "which service are you? present your client certificate")
            raise HTTPException(403, f"only the {wanted} service may call this")
        store.audit(who, f"GET {req.path}", "service", "allow", f"identified ({proof})")
        request.state.spoofed = req.client_cert_cn != who
        return who

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/internal/payouts", summary="Merchant payouts (billing service only)")
    def payouts(request: Request, who: str = Depends(service)) -> dict[str, Any]:
        result: dict[str, Any] = {"payouts": PAYOUTS, "caller": who}
        if request.state.spoofed and state.is_weak("identify_service"):
            result["flag"] = state.flag("spoofed-identity")
        return result

    @app.get("/internal/usage", summary="Usage figures (reports service only)")
    def usage(who: str = Depends(service)) -> dict[str, Any]:
        return {"usage": USAGE, "caller": who}

    return app


def network(lab: Lab) -> Network:
    """The lesson's other servers and tools, as ``lab.net``: plain HTTP, Wi-Fi, services."""
    return Network(lab, create_service_app)


def server_context(lab: Lab) -> ssl.SSLContext:
    """The HTTPS API's TLS context: whatever the ``server_tls`` hook builds."""
    return context_from_hook(lab, "server_tls")
