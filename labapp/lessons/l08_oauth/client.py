"""PrintShop, the lab's client web app: it logs users in with the authorization server and
prints their photos from the photos API on their behalf.

Routes (on ``lab.net.client_url``):

- ``GET /login?next=``: starts the authorization-code flow (state, nonce, PKCE S256, made by
  Authlib's ``OAuth2Client``) and sends the browser to the AS's ``/authorize``;
- ``GET /shop/callback``: the registered redirect URI; redeems the code, checks the ID
  token, and sets the shop's session cookie;
- ``GET /link``: "link your photo account": the same flow, but the tokens it ends with are
  linked to the shop account already signed in;
- ``GET /prints``: the photos the shop would print, fetched with the user's access token
  (the linked account's, if one is linked);
- ``POST /logout``: signs out, revoking the session's tokens at the AS (RFC 7009);
- ``GET /next?url=``: where to go after a step ("continue shopping"), with the rest of
  its query carried along;
- ``GET /spa/callback`` and ``POST /spa/session``: the shop's old single-page app
  (the public client), which still speaks the implicit flow: its page script posts the
  URL fragment's token, with the user it claims, to ``/spa/session``.

The shop's security decisions are hooks (see ``app.HOOKS``), weak by default: ``check_state``
(the callback's state against the one this browser's session started), ``allow_next``
(the open redirect), ``implicit_user`` (trusting the user the page posts). Flows are kept
by their state value, server-side, as many real clients do: that is what lets a callback
link made in another browser finish in this one while ``check_state`` waves it through.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import jwt
from authlib.integrations.httpx_client import OAuth2Client
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from labapp.engine.http import default_tls
from labapp.engine.spec import Hook
from labapp.lessons.l08_oauth import people, verifier
from labapp.lessons.l08_oauth.adapter import read_form
from labapp.lessons.l08_oauth.verifier import Verifier

if TYPE_CHECKING:
    from labapp.engine.spec import LabState

SESSION_COOKIE = "shop_session"
CALLBACK_PATH = "/shop/callback"
SPA_CALLBACK_PATH = "/spa/callback"
LOGIN_SCOPE = "openid profile photos:read"
BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1: what an access token looks like


# -- the shop's weak defaults (its hooks; the lesson's HOOKS include them) ---------------------


def weak_check_state(expected: str | None, received: str | None) -> bool:
    """WEAK on purpose: any state, or none: "the AS would not send us a bad callback"."""
    return True


def weak_allow_next(url: str) -> bool:
    """WEAK on purpose: "continue shopping" goes wherever ``url`` says, off-site too."""
    return True


def weak_validate_id_token(claims: dict[str, Any], nonce: str | None, client_id: str) -> bool:
    """WEAK on purpose: "the signature holds, so our authorization server made it for us"."""
    return True


def weak_implicit_user(claimed: str | None, userinfo: dict[str, Any] | None) -> str | None:
    """WEAK on purpose: the user the page posts is the user, if it names one."""
    if claimed:
        return claimed
    return str(userinfo["sub"]) if userinfo and userinfo.get("sub") else None


CLIENT_HOOKS = (
    Hook(
        "check_state",
        ("expected", "received"),
        "check_state(expected, received) -> bool: PrintShop's callback; expected is the "
        "state of the flow this browser's session started (None if it started none)",
        weak_check_state,
        returns=bool,
    ),
    Hook(
        "allow_next",
        ("url",),
        "allow_next(url) -> bool: may PrintShop's /next?url= send the browser there?",
        weak_allow_next,
        returns=bool,
    ),
    Hook(
        "implicit_user",
        ("claimed", "userinfo"),
        "implicit_user(claimed, userinfo) -> str | None: who PrintShop's old app signs in; "
        "claimed is the sub the page posted (or None), userinfo what the AS's /userinfo "
        "said about the posted token (None if it refused it)",
        weak_implicit_user,
        returns=(str, type(None)),
    ),
    Hook(
        "validate_id_token",
        ("claims", "nonce", "client_id"),
        "validate_id_token(claims, nonce, client_id) -> bool: PrintShop accepts this ID "
        "token? claims passed the signature (the AS's JWKS) and exp checks only; nonce is "
        "the one this browser's flow sent (None if it started none); client_id the "
        "PrintShop client the sign-in was for (the issuer: lab.net.issuer)",
        weak_validate_id_token,
        returns=bool,
    ),
)


@dataclass
class Wiring:
    """What the shop learns once the lab's parties are up (set by ``lab.net``)."""

    issuer: str
    api_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    known: Verifier  # the issuer and its keys (verifier.CURRENT while a hook decides)

    def signing_key(self, token: str) -> Any:
        """The issuer's public key that signed ``token``."""
        return self.known.signing_key(token)


@dataclass
class Flow:
    state: str
    verifier: str
    nonce: str
    purpose: str  # "login" or "link"
    next_url: str
    sid: str = ""  # the shop session that started it


@dataclass
class Session:
    user: str | None = None
    tokens: dict[str, Any] = field(default_factory=dict)
    linked: dict[str, Any] | None = None  # {"sub", "tokens"} of a linked photo account
    pending: str | None = None  # the state of the flow this browser started last
    nonce: str | None = None  # the nonce /spa/nonce gave the old app for its sign-in
    earned: list[str] = field(default_factory=list)  # exploits this session fell to


class PrintShop:
    def __init__(self, state: LabState) -> None:
        self.lab_state = state
        self.wiring: Wiring | None = None
        self.flows: dict[str, Flow] = {}
        self.sessions: dict[str, Session] = {}
        self.shares: dict[str, str] = {}  # share-link slug -> where it leads
        self.http = httpx.Client(timeout=10, verify=default_tls())

    def close(self) -> None:
        self.http.close()

    def _oauth(self) -> OAuth2Client:
        w = self._wired()
        return OAuth2Client(
            w.client_id,
            w.client_secret,
            scope=LOGIN_SCOPE,
            redirect_uri=w.redirect_uri,
            code_challenge_method="S256",
            timeout=10,
            verify=default_tls(),  # one shared context: a new one per client costs ~17 ms
        )

    def _wired(self) -> Wiring:
        if self.wiring is None:
            raise RuntimeError("PrintShop is not wired to the authorization server yet")
        return self.wiring

    def session(self, request: Request) -> tuple[str, Session]:
        sid = request.cookies.get(SESSION_COOKIE, "")
        if sid not in self.sessions:
            sid = secrets.token_urlsafe(24)
            self.sessions[sid] = Session()
        return sid, self.sessions[sid]

    def start(self, sid: str, session: Session, purpose: str, next_url: str) -> str:
        """A new flow: its authorize URL; the verifier and nonce stay here, server-side."""
        code_verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        with self._oauth() as oauth:
            url, state = oauth.create_authorization_url(
                self._wired().issuer + "/authorize", code_verifier=code_verifier, nonce=nonce
            )
        self.flows[state] = Flow(state, code_verifier, nonce, purpose, next_url, sid)
        session.pending = state
        return url

    def redeem(self, flow: Flow, callback_url: str) -> dict[str, Any]:
        w = self._wired()
        with self._oauth() as oauth:
            token = oauth.fetch_token(
                w.issuer + "/token",
                authorization_response=callback_url,
                code_verifier=flow.verifier,
                state=flow.state,
            )
        return dict(token)

    def id_claims(self, id_token: str) -> dict[str, Any]:
        """OIDC Core §3.1.3.7 steps 6 and 9: the signature by the issuer's key (RS256 only)
        and the expiry. ``iss``, ``aud``, ``azp`` and ``nonce`` are the ``validate_id_token``
        hook's to check."""
        w = self._wired()
        return jwt.decode(
            id_token,
            w.signing_key(id_token),
            algorithms=["RS256"],
            options={"require": ["exp", "iat", "sub", "iss", "aud"], "verify_aud": False},
        )

    def issued_to(self, access_token: str) -> str | None:
        """The client an access token of this AS was issued to (its RFC 9068 ``client_id``),
        or None when it is not one."""
        try:
            claims = jwt.decode(
                access_token,
                self._wired().signing_key(access_token),
                algorithms=["RS256"],
                options={"verify_aud": False},
            )
        except (jwt.PyJWTError, KeyError):
            return None
        return str(claims.get("client_id")) if claims.get("client_id") else None

    def revoke(self, tokens: dict[str, Any]) -> None:
        """RFC 7009: hand the session's tokens back, refresh token first (revoking it may
        end its access tokens too, §2.1), as a client does when its user signs out."""
        w = self._wired()
        for kind in ("refresh_token", "access_token"):
            if tokens.get(kind):
                self.http.post(
                    w.issuer + "/revoke",
                    data={"token": tokens[kind], "token_type_hint": kind},
                    auth=(w.client_id, w.client_secret),
                )

    def photos(self, access_token: str) -> httpx.Response:
        return self.http.get(
            self._wired().api_url + "/photos",
            headers={"Authorization": f"Bearer {access_token}"},
        )

    def userinfo(self, access_token: str) -> dict[str, Any] | None:
        answer = self.http.get(
            self._wired().issuer + "/userinfo",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        return answer.json() if answer.status_code == 200 else None


def _refused(state: LabState, action: str, reason: str) -> None:
    """PrintShop's refusals go to the lab's audit log beside its sign-ins."""
    state.store.audit("anonymous", action, "printshop", "deny", reason)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}",
        status_code=status,
    )


def _with_cookie(response: Response, sid: str) -> Response:
    response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="lax", path="/")
    return response


def _local(url: str) -> str:
    return url if url.startswith("/") and not url.startswith("//") else "/prints"


def create_app(state: LabState) -> FastAPI:
    """The shop's routes; ``app.state.shop.wiring`` is set by ``lab.net`` once the AS is up."""
    shop = PrintShop(state)
    app = FastAPI(title="PrintShop (the lab's client app)")
    app.state.shop = shop

    @app.get("/")
    async def home(request: Request) -> Response:
        sid, session = shop.session(request)
        who = html.escape(session.user) if session.user else "nobody"
        return _with_cookie(
            _page(
                "PrintShop",
                f"<p>Signed in: {who}.</p><p><a href=/login>Sign in with your photo account</a>"
                " · <a href=/link>Link your photo account</a> · <a href=/prints>Prints</a></p>",
            ),
            sid,
        )

    @app.get("/login")
    async def login(request: Request, next: str = "/prints") -> Response:
        sid, session = shop.session(request)
        url = await run_in_threadpool(shop.start, sid, session, "login", _local(next))
        return _with_cookie(RedirectResponse(url, status_code=302), sid)

    @app.get("/link")
    async def link(request: Request) -> Response:
        sid, session = shop.session(request)
        if session.user is None:
            return _with_cookie(RedirectResponse("/login?next=/link", status_code=303), sid)
        url = await run_in_threadpool(shop.start, sid, session, "link", "/prints")
        return _with_cookie(RedirectResponse(url, status_code=302), sid)

    @app.get(CALLBACK_PATH)
    async def callback(request: Request) -> Response:
        sid, session = shop.session(request)
        params = request.query_params
        if "error" in params:
            return _page("Sign-in cancelled", f"<p>{html.escape(params['error'])}</p>", 400)
        received = params.get("state")
        if not await state.call("check_state", session.pending, received):
            _refused(state, f"GET {CALLBACK_PATH}", "state not this browser's")
            return _with_cookie(
                _page("Refused", "<p>This sign-in was not started here.</p>", 403), sid
            )
        flow = shop.flows.pop(received or "", None)
        if flow is None or "code" not in params:
            return _with_cookie(_page("Unknown sign-in", "<p>Start again.</p>", 400), sid)
        session.pending = None
        try:
            tokens = await run_in_threadpool(shop.redeem, flow, str(request.url))
            claims = shop.id_claims(str(tokens.get("id_token", "")))
        except Exception as error:  # the AS's refusal, or an ID token that does not hold
            reason = html.escape(type(error).__name__)
            _refused(state, f"GET {CALLBACK_PATH}", f"sign-in failed: {type(error).__name__}")
            return _with_cookie(_page("Sign-in failed", f"<p>{reason}</p>", 400), sid)
        verifier.CURRENT.set(shop._wired().known)  # the issuer, for the hook's iss check
        if not await state.call("validate_id_token", claims, flow.nonce, people.WEB_APP):
            _refused(state, f"GET {CALLBACK_PATH}", "ID token refused")
            return _with_cookie(_page("Sign-in failed", "<p>ID token refused</p>", 400), sid)
        if flow.sid != sid and flow.purpose == "link" and session.user is not None:
            session.earned.append("login-csrf")  # another browser's link flow, finished here
        sub = str(claims["sub"])
        state.store.audit(sub, f"GET {CALLBACK_PATH}", "printshop", "allow", flow.purpose)
        if flow.purpose == "link" and session.user is not None:
            session.linked = {"sub": sub, "tokens": tokens}
        else:
            session.user, session.tokens, session.linked = sub, tokens, None
        return _with_cookie(RedirectResponse(flow.next_url, status_code=303), sid)

    @app.get("/prints")
    async def prints(request: Request) -> Response:
        sid, session = shop.session(request)
        if session.user is None:
            return _with_cookie(RedirectResponse("/login?next=/prints", status_code=303), sid)
        account = session.linked or {"sub": session.user, "tokens": session.tokens}
        body: dict[str, Any] = {"shop_user": session.user, "photo_account": account["sub"]}
        if session.earned:  # the flag of the exploit that made this session
            body["flag"] = state.flag(session.earned[0])
        access_token = account["tokens"].get("access_token")
        if not access_token:  # signed in by ID token alone: nothing to print yet
            return _with_cookie(JSONResponse({**body, "prints": []}), sid)
        answer = await run_in_threadpool(shop.photos, str(access_token))
        if answer.status_code != 200:  # expired, revoked, or without photos:read: sign in again
            body["detail"] = "the photos API refused this session's access token"
            return _with_cookie(JSONResponse({**body, "prints": []}, status_code=401), sid)
        body["prints"] = answer.json().get("photos", [])
        return _with_cookie(JSONResponse(body), sid)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        # Signing out ends the shop's session and revokes what it held: a token copied
        # from this session (a log, a backup) is worth nothing afterwards.
        sid, session = shop.session(request)
        for held in (session.tokens, (session.linked or {}).get("tokens") or {}):
            await run_in_threadpool(shop.revoke, held)
        shop.sessions.pop(sid, None)
        return RedirectResponse("/", status_code=303)

    @app.get("/next")
    async def next_step(request: Request, url: str = "/") -> Response:
        if not await state.call("allow_next", url):
            _refused(state, "GET /next", "not a page of ours")
            return _page("Refused", "<p>That page is not ours.</p>", 400)
        here = urlsplit(str(request.url))
        there = urlsplit(urljoin(str(request.url), url))
        if (there.netloc, there.path) == (here.netloc, here.path):  # "", "#x", "?a=b": a loop
            return _page("Refused", "<p>That is this page.</p>", 400)
        # "Campaign parameters survive the hop": the rest of the query goes along.
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "url"]
        if rest:
            url += ("&" if "?" in url else "?") + urlencode(rest)
        return RedirectResponse(url, status_code=302)

    @app.post("/share")
    async def share(request: Request) -> Response:
        # "Share your print gallery": anyone gets a short link to the page of their choice.
        # Not a hook: the lesson's point is that a client's origin always has pages like
        # this, so the authorization server must match redirect URIs exactly.
        form = await read_form(request) or FormData()
        if not form.get("url"):
            return JSONResponse({"detail": "send the page to share as a form field: url"}, 400)
        slug = secrets.token_urlsafe(6)
        shop.shares[slug] = str(form["url"])
        return JSONResponse({"link": f"/s/{slug}"}, status_code=201)

    @app.get("/s/{slug}")
    async def shared(request: Request, slug: str) -> Response:
        url = shop.shares.get(slug)
        if url is None:
            return _page("No such link", "", 404)
        if request.url.query:  # campaign parameters survive the hop, as on /next
            url += ("&" if "?" in url else "?") + request.url.query
        return RedirectResponse(url, status_code=302)

    @app.get("/spa/nonce")
    async def spa_nonce(request: Request) -> Response:
        # The old app asks for a nonce, signs in at the AS as photo-spa with it, and posts
        # the ID token to /spa/session ("sign in with your photo account" on the backend).
        sid, session = shop.session(request)
        session.nonce = secrets.token_urlsafe(16)
        return _with_cookie(JSONResponse({"nonce": session.nonce}), sid)

    @app.get(SPA_CALLBACK_PATH)
    async def spa_callback() -> Response:
        # The old single-page app: its script reads the fragment (a browser never sends it)
        # and posts it here. The lab's browser runs exactly this one kind of script.
        return _page(
            "PrintShop app",
            '<script data-post-fragment="/spa/session"></script><p>Signing you in…</p>',
        )

    @app.post("/spa/session")
    async def spa_session(request: Request) -> Response:
        sid, session = shop.session(request)
        form = await read_form(request) or FormData()
        token = str(form.get("access_token", ""))
        if token and not BEARER.fullmatch(token):  # it would go into an Authorization header
            return _with_cookie(_page("Refused", "<p>That is not an access token.</p>", 400), sid)
        tokens: dict[str, Any] = {"access_token": token} if token else {}
        earned = []
        if "id_token" in form:  # signed in with an ID token of photo-spa
            expected, session.nonce = session.nonce, None  # one sign-in per nonce
            try:
                claims = shop.id_claims(str(form["id_token"]))
            except Exception:  # noqa: BLE001 - any flaw: not signed in
                _refused(state, "POST /spa/session", "ID token signature or expiry")
                return _with_cookie(_page("Refused", "<p>Bad ID token.</p>", 401), sid)
            verifier.CURRENT.set(shop._wired().known)
            ok = await state.call("validate_id_token", claims, expected, people.SPA)
            user = str(claims["sub"]) if ok else None
            if user and (expected is None or claims.get("nonce") != expected):
                earned.append("nonce")  # an ID token of another flow, replayed
        else:
            if token and shop.issued_to(token) != people.SPA:
                # Not this app's token (another app's, for the same user: RFC 6749 §10.16):
                # /userinfo would still name its user. Not a hook: the lesson's hook is
                # about whom to believe, and no answer to that may sign in with this token.
                _refused(state, "POST /spa/session", "access token of another app")
                return _with_cookie(_page("Refused", "<p>Not this app's token.</p>", 401), sid)
            claimed = str(form["sub"]) if "sub" in form else None
            info = await run_in_threadpool(shop.userinfo, token) if token else None
            user = await state.call("implicit_user", claimed, info)
            if user and (info is None or str(info.get("sub")) != user):
                earned.append("implicit-flow")  # signed in as someone the token is not
        if not user:
            _refused(state, "POST /spa/session", "no user to sign in")
            return _with_cookie(_page("Refused", "<p>Who are you?</p>", 401), sid)
        state.store.audit(user, "POST /spa/session", "printshop", "allow", "implicit")
        session.user, session.tokens, session.linked = user, tokens, None
        session.earned = earned
        return _with_cookie(RedirectResponse("/prints", status_code=303), sid)

    return app


def wire(
    app: FastAPI, issuer: str, api_url: str, client_url: str, clients: dict, known: Verifier
) -> None:
    """Tell the shop where the AS and the API are, and its own registration."""
    me = clients[people.WEB_APP]
    app.state.shop.wiring = Wiring(
        issuer=issuer,
        api_url=api_url,
        client_id=me["client_id"],
        client_secret=me["client_secret"],
        redirect_uri=client_url.rstrip("/") + CALLBACK_PATH,
        known=known,
    )
