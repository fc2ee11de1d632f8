"""The lab's authorization server (OAuth 2.0 + OpenID Connect), a FastAPI app on Authlib.

Endpoints: discovery, ``/jwks``, ``/authorize`` (a login form, then a consent form),
``/token`` (authorization_code with PKCE S256, refresh_token with rotation,
client_credentials), ``/revoke`` (RFC 7009), ``/introspect`` (RFC 7662), ``/userinfo``.
Access tokens are RFC 9068 JWTs for the photos API; ID tokens carry ``iss`` and the client
as ``aud``. The decisions the lesson's attacks target are the lab's hooks (``app.py``).

The issuer is this server's own URL, known once its socket is bound: set
:attr:`AuthServer.issuer` after the server has started, before the first request.

Security decisions go through :meth:`AuthServer.decide`: in a lab, ``call`` (the guarded
``state.call`` of the lab's hooks), awaited on the server's loop from the worker thread where
Authlib runs; outside a lab, ``decisions`` (name -> function; the tests pass the sound ones,
which are the lesson's answer and so never ship in the package).
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oidc.core import UserInfo
from fastapi import FastAPI, Request
from joserfc.jwk import KeySet, RSAKey
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from labapp.lessons.l08_oauth import grants
from labapp.lessons.l08_oauth.adapter import (
    StarletteAuthorizationServer,
    bridge,
    read_form,
    snapshot,
)
from labapp.lessons.l08_oauth.records import ACCESS_TOKEN_SECONDS, Client, Records, Token, User

API_AUDIENCE = "photos-api"
SCOPES = ["openid", "profile", "email", "photos:read", "photos:write"]
SESSION_COOKIE = "as_session"
# RFC 6749 Appendix A.3 (response_type: names of letters, digits and "_") and A.6
# (redirect_uri: a URI, RFC 3986's characters only). Authlib 1.9 writes these two request
# parameters into error descriptions, and raises ValueError (a 500) on a description with a
# character RFC 6749 §4.1.2.1 does not allow there: a quote, a backslash, any non-ASCII.
SYNTAX = {
    "response_type": re.compile(r"[A-Za-z0-9_]+(?: [A-Za-z0-9_]+)*"),
    "redirect_uri": re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"),
}


class LabAuthorizationServer(StarletteAuthorizationServer):
    def __init__(self, lab: AuthServer) -> None:
        super().__init__(scopes_supported=SCOPES)
        self.lab = lab

    def query_client(self, client_id: str) -> Client | None:
        return self.lab.records.clients.get(client_id)

    def get_authorization_grant(self, request: Any) -> Any:
        # Refused before Authlib quotes them in an error it cannot build (see SYNTAX).
        for name, syntax in SYNTAX.items():
            value = request.payload.data.get(name)
            if value and not syntax.fullmatch(value):
                raise InvalidRequestError(f"{name} is malformed (RFC 6749 Appendix A)")
        return super().get_authorization_grant(request)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        self.lab.save_token(token, request)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.lab.signals.append(name)  # the lab's audit log will listen here


class AuthServer:
    """One authorization server: its key, records, sessions and Authlib server."""

    def __init__(
        self,
        users: list[User],
        clients: list[Client],
        *,
        audience: str = API_AUDIENCE,
        call: Callable[..., Coroutine[Any, Any, Any]] | None = None,
        decisions: dict[str, Callable[..., Any]] | None = None,
        audit: Callable[[str, str, str, str, str], None] | None = None,
    ):
        if (call is None) == (decisions is None):
            raise TypeError("AuthServer needs either call= (a lab's hooks) or decisions=")
        self.call = call  # async (hook name, *args) -> decision, on the serving loop
        self.decisions = decisions or {}
        # (actor, action, resource, decision, reason): the lab's audit log; never a secret
        self.audit = audit or (lambda *row: None)
        self.loop: asyncio.AbstractEventLoop | None = None  # the serving loop, once it runs
        self.records = Records(users, clients, self.decide)
        self.audience = audience
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(4), "use": "sig", "alg": "RS256"}
        )
        self.sessions: dict[str, dict[str, Any]] = {}  # cookie -> {"user", "csrf", "auth_time"}
        self.signals: list[str] = []
        self._issuer = "http://127.0.0.1"
        self.tokens = grants.AccessTokens(self, ACCESS_TOKEN_SECONDS)
        self.server = LabAuthorizationServer(self)
        self.server.register_token_generator("default", self.tokens)
        self.server.register_grant(
            grants.CodeGrant, [grants.Challenge(required=False), grants.OIDCCode(self)]
        )
        self.server.register_grant(grants.Implicit)  # reachable if check_response_type allows
        self.server.register_grant(grants.Password)  # reachable if check_grant_type allows
        self.server.register_grant(grants.RefreshGrant)
        self.server.register_grant(grants.ClientCredentials)
        self.server.register_endpoint(grants.Revocation)
        self.server.register_endpoint(grants.Introspection)
        self.server.register_extension(grants.Issuer(self))

    def decide(self, name: str, *args: Any) -> Any:
        """The decision ``name`` (the lab's hook of that name, or the given decision).

        Authlib calls this synchronously from a worker thread; a lab's hook is a coroutine of
        the server's loop, so the call is handed to that loop and awaited from here. Never on
        the loop's own thread: it would wait for itself.
        """
        if self.call is None:
            return self.decisions[name](*args)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(f"{name}: decide() runs Authlib-side, in a worker thread only")
        if self.loop is None:
            raise RuntimeError(f"{name}: no request has reached the server yet")
        return bridge(self.loop, self.call, name, *args)

    @property
    def issuer(self) -> str:
        return self._issuer

    @issuer.setter
    def issuer(self, url: str) -> None:
        self._issuer = url.rstrip("/")
        self.tokens.issuer = self._issuer

    def jwks(self) -> dict[str, Any]:
        return KeySet([self.key]).as_dict(private=False)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        code, parent = request.authorization_code, request.refresh_token
        family = parent.family if parent else grants.new_family()
        record = Token(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            client_id=request.client.get_client_id(),
            user_id=request.user.id if request.user else None,
            scope=token.get("scope", ""),
            issued_at=int(time.time()),
            expires_in=token["expires_in"],
            from_code=code.code if code else (parent.from_code if parent else None),
            family=family,
        )
        with self.records.lock:
            self.records.tokens.append(record)

    def user_info(self, user: User, scope: str) -> UserInfo:
        granted = scope_to_list(scope) or []
        info = UserInfo(sub=user.id)
        if "profile" in granted:
            info["name"] = user.name
        if "email" in granted:
            info["email"] = user.email
        return info

    def session_user(self, request: Request) -> tuple[User | None, dict[str, Any] | None]:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        if session is None:
            return None, None
        return self.records.users.get(session["user"]), session

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "revocation_endpoint": f"{base}/revoke",
            "introspection_endpoint": f"{base}/introspect",
            "scopes_supported": SCOPES,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": grants.ALL_AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }


def _with_iss(response: Response, issuer: str) -> Response:
    """Add RFC 9207's iss to an error redirect (Authlib adds it to success redirects only)."""
    location = response.headers.get("location")
    if location and response.status_code in (302, 303):
        parts = urlsplit(location)
        query = dict(parse_qsl(parts.query))
        if "iss" not in query:
            query["iss"] = issuer
            response.headers["location"] = urlunsplit(parts._replace(query=urlencode(query)))
    return response


def outcome(response: Response) -> tuple[str, str]:
    """allow or deny, and why, read from what the AS answered: an error code or what was
    issued, never the code or token itself."""
    location = response.headers.get("location", "")
    if location:
        parts = urlsplit(location)
        params = dict(parse_qsl(parts.query)) | dict(parse_qsl(parts.fragment))
        if "error" in params:
            return "deny", params["error"]
        if "access_token" in params:
            return "allow", "token issued in the URL (implicit)"
        return "allow", "code issued" if "code" in params else "redirect"
    if response.status_code >= 400:
        try:
            error = str(json.loads(bytes(response.body)).get("error", ""))
        except (ValueError, AttributeError):
            error = ""
        return "deny", error or f"HTTP {response.status_code}"
    return "allow", "ok"


def claimed_client(req: Any) -> str:
    """Who a refused token request said it was (its form's client_id, or HTTP Basic's user):
    a claim only, so the log says so."""
    claimed = str(req.form.get("client_id", ""))
    if not claimed:
        try:
            claimed = extract_basic_authorization(req.headers)[0] or ""
        except UnicodeDecodeError:  # Authlib's helper decodes without a fallback
            claimed = ""
    return f"{claimed[:64]} (claimed)" if claimed else "unauthenticated client"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}",
        status_code=status,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},  # no clickjacked consent
    )


def login_page(next_url: str, error: str = "") -> HTMLResponse:
    note = f"<p role=alert>{html.escape(error)}</p>" if error else ""
    return _page(
        "Sign in",
        f'{note}<form method=post action="/login">'
        f'<input type=hidden name=next value="{html.escape(next_url)}">'
        "<label>Username <input name=username></label> "
        "<label>Password <input name=password type=password></label> "
        "<button>Sign in</button></form>",
        401 if error else 200,
    )


def consent_page(action: str, client_id: str, scope: str, csrf: str) -> HTMLResponse:
    boxes = "".join(
        f'<label><input type=checkbox name=consented_scope value="{html.escape(s)}" checked> '
        f"{html.escape(s)}</label><br>"
        for s in scope_to_list(scope) or []
    )
    return _page(
        f"Allow {client_id}?",
        f'<form method=post action="{html.escape(action)}">'
        f'<input type=hidden name=csrf value="{csrf}">{boxes}'
        "<button name=decision value=allow>Allow</button> "
        "<button name=decision value=deny>Deny</button></form>",
    )


def create_app(auth: AuthServer) -> FastAPI:
    """The authorization server's routes, over ``auth``."""
    app = FastAPI(title="Lab authorization server")
    server = auth.server

    @app.middleware("http")
    async def remember_loop(request: Request, call_next: Any) -> Response:
        auth.loop = asyncio.get_running_loop()  # where decide() sends the lab's hooks
        return await call_next(request)

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> JSONResponse:
        return JSONResponse(auth.discovery())

    @app.get("/jwks")
    async def jwks() -> JSONResponse:
        return JSONResponse(auth.jwks())

    @app.get("/authorize")
    async def authorize(request: Request) -> Response:
        req = await snapshot(request)
        user, session = auth.session_user(request)
        client_id = str(request.query_params.get("client_id", ""))[:64] or "no client"

        def work() -> Response:
            # Validate the client and redirect_uri *before* any page: a bad redirect_uri
            # gets a 400 here, never a redirect (RFC 6749 §4.1.2.1).
            try:
                grant = server.get_consent_grant(request=req, end_user=user)
            except OAuth2Error as error:
                refused = _with_iss(server.handle_error_response(req, error), auth.issuer)
                who = user.id if user else "anonymous"
                auth.audit(who, "GET /authorize", client_id, "deny", outcome(refused)[1])
                return refused
            here = f"{request.url.path}?{request.url.query}"
            if user is None or session is None:
                return login_page(here)
            client = grant.client
            scope = client.get_allowed_scope(req.payload.scope)
            return consent_page(here, client.client_id, scope, session["csrf"])

        return await run_in_threadpool(work)

    @app.post("/authorize")
    async def approve(request: Request) -> Response:
        req = await snapshot(request)
        user, session = auth.session_user(request)
        form = req.form
        if user is None or session is None:
            return _page("Sign in first", "<p>Your session has ended.</p>", 401)
        if not secrets.compare_digest(str(form.get("csrf", "")).encode(), session["csrf"].encode()):
            return _page("Forbidden", "<p>This consent form was not ours.</p>", 403)
        allowed = form.get("decision") == "allow"
        req.consented_scope = " ".join(str(s) for s in form.getlist("consented_scope"))
        req.auth_time = session["auth_time"]

        def work() -> Response:
            try:
                grant = server.get_consent_grant(request=req, end_user=user)
            except OAuth2Error as error:
                refused = _with_iss(server.handle_error_response(req, error), auth.issuer)
                auth.audit(user.id, "POST /authorize", "consent", "deny", outcome(refused)[1])
                return refused
            response = _with_iss(
                server.create_authorization_response(
                    request=req, grant_user=user if allowed else None, grant=grant
                ),
                auth.issuer,
            )
            auth.audit(user.id, "POST /authorize", grant.client.client_id, *outcome(response))
            return response

        return await run_in_threadpool(work)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request) or FormData()
        next_url = str(form.get("next", ""))
        if not next_url.startswith("/authorize?"):  # no open redirect from our own login
            next_url = "/authorize?"
        name = str(form.get("username", ""))
        user = auth.records.login(name, str(form.get("password", "")))
        if user is None:
            # The name only if it is a user's: a password typed into the wrong box must not
            # land in the log (OWASP Logging Cheat Sheet, data to exclude).
            who = name if name in auth.records.users else "unknown user"
            auth.audit(who, "POST /login", "session", "deny", "wrong username or password")
            return login_page(next_url, "Wrong username or password.")
        auth.audit(user.id, "POST /login", "session", "allow", "signed in")
        sid = secrets.token_urlsafe(32)
        auth.sessions[sid] = {
            "user": user.id,
            "csrf": secrets.token_urlsafe(16),
            "auth_time": int(time.time()),
        }
        response = RedirectResponse(next_url, status_code=303)
        # No Secure flag: the lab speaks plain HTTP on loopback, a deviation a real AS must
        # not make (TLS everywhere, lesson 07). HttpOnly and SameSite=Lax keep scripts and
        # cross-site posts out.
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="lax", path="/")
        return response

    async def endpoint(request: Request, name: str | None) -> Response:
        req = await snapshot(request)
        if name is None:
            response = await run_in_threadpool(server.create_token_response, req)
        else:
            response = await run_in_threadpool(server.create_endpoint_response, name, req)
        client = getattr(req, "client", None)
        actor = client.client_id if client is not None else claimed_client(req)
        decision, why = outcome(response)
        if name is None:
            grant_type = str(req.form.get("grant_type", ""))[:40]
            why = f"{grant_type}: {'tokens issued' if decision == 'allow' else why}"
        auth.audit(actor, f"POST {request.url.path}", name or "token", decision, why)
        return response

    @app.post("/token")
    async def token(request: Request) -> Response:
        return await endpoint(request, None)

    @app.post("/revoke")
    async def revoke(request: Request) -> Response:
        return await endpoint(request, "revocation")

    @app.post("/introspect")
    async def introspect(request: Request) -> Response:
        return await endpoint(request, "introspection")

    @app.get("/userinfo")
    async def userinfo(request: Request) -> Response:
        # By hand: Authlib's UserInfoEndpoint is Flask-shaped. The AS knows its own tokens,
        # so it looks the token up instead of trusting a signature alone: revoked is revoked.
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        record = auth.records.find_token(value.strip()) if scheme.lower() == "bearer" else None
        if (
            record is None
            or record.access_token != value.strip()
            or record.is_revoked()
            or record.is_expired()
            or record.user_id is None
            or "openid" not in (scope_to_list(record.scope) or [])
        ):
            auth.audit("anonymous", "GET /userinfo", "userinfo", "deny", "invalid_token")
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        user = auth.records.users[record.user_id]
        auth.audit(user.id, "GET /userinfo", record.client_id, "allow", "token active")
        return JSONResponse(dict(auth.user_info(user, record.scope)))

    return app
