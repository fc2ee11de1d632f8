"""The lab's browsers: a learner's (``lab.net.browser(user)``) and the victim's
(``lab.net.victim``), and a catcher server that records what reaches an attacker.

A :class:`Browser` is an httpx client with a cookie jar that follows redirects itself, one
hop at a time, and records each hop (method, URL, status) in ``browser.hops``, so a
notebook can print a flow. It does what a user's browser does that httpx does not:

- it carries a URL fragment across a redirect whose ``Location`` has none (RFC 9110
  §10.2.2), which is how a token in the implicit flow's fragment follows an open redirect;
- it signs in at the authorization server when shown the login form, and clicks "Allow"
  on a consent page, with every scope ticked;
- it runs the one kind of page script the lab's pages use,
  ``<script data-post-fragment="/path">``: it posts the page URL's fragment (its
  parameters, form-encoded) to ``/path`` on the page's origin, as a single-page app's
  script reading ``location.hash`` would.
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from labapp.engine.http import default_tls
from labapp.lessons.l08_oauth.adapter import read_form

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_HOPS = 20
_NEXT = re.compile(r'name=next value="([^"]*)"')
_CSRF = re.compile(r'name=csrf value="([^"]*)"')
_ACTION = re.compile(r'<form method=post action="([^"]*)"')
_SCOPE = re.compile(r'name=consented_scope value="([^"]*)"')
_SCRIPT = re.compile(r'<script data-post-fragment="([^"]*)">')


@dataclass(frozen=True)
class Hop:
    method: str
    url: str  # with the fragment the browser holds, which it never sends
    status: int
    note: str = ""  # "login", "consent", "script": what the browser did there

    def __str__(self) -> str:
        note = f"  ({self.note})" if self.note else ""
        return f"{self.method:4} {self.url} -> {self.status}{note}"


def _fragment(url: str) -> str:
    return urlsplit(url).fragment


def _without_fragment(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(fragment=""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Browser:
    """One user's browser. ``get(url)`` navigates and returns the last response.

    ``user`` and ``password`` are what it types at the authorization server's login form
    (``issuer`` tells it which site that is); ``consent`` whether it clicks Allow.
    """

    def __init__(
        self,
        issuer: str,
        user: str | None = None,
        password: str | None = None,
        *,
        consent: bool = True,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.user, self.password, self.consent = user, password, consent
        self.http = httpx.Client(timeout=10, follow_redirects=False, verify=default_tls())
        self.hops: list[Hop] = []  # the last navigation's hops
        self.url: str | None = None  # where the browser is now (with its fragment)
        self._stop_before: str | None = None

    # -- navigation --------------------------------------------------------------------

    def get(self, url: str, *, stop_before: str | None = None) -> httpx.Response:
        """Navigate to ``url``; with ``stop_before``, halt at the first hop whose URL starts
        with it, unrequested (an attacker keeping their own callback link): it is
        ``browser.url``, and the response returned is the one that led there."""
        return self.navigate("GET", url, stop_before=stop_before)

    def post(self, url: str, data: dict[str, Any]) -> httpx.Response:
        return self.navigate("POST", url, data)

    def navigate(
        self,
        method: str,
        url: str,
        data: dict[str, Any] | None = None,
        *,
        stop_before: str | None = None,
    ) -> httpx.Response:
        """Go to ``url`` and follow redirects, sign-in and consent; record every hop."""
        self.hops = []
        self._stop_before = stop_before
        response = self._follow(method, url, data)
        tried = set()  # sign in and consent once per navigation: a refusal ends it
        for _ in range(MAX_HOPS):
            page = response.text if "html" in response.headers.get("content-type", "") else ""
            assert self.url is not None
            if self._is_login(page) and self.user and self.password and "login" not in tried:
                tried.add("login")
                response = self._login(page)
            elif self._is_consent(page) and self.consent and "consent" not in tried:
                tried.add("consent")
                response = self._allow(page)
            elif (script := _SCRIPT.search(page)) and _fragment(self.url) and "script" not in tried:
                target = urljoin(self.url, html.unescape(script[1]))
                form = dict(parse_qsl(_fragment(self.url)))
                tried.add("script")
                response = self._follow("POST", target, form, note="script")
            else:
                return response
        raise RuntimeError(f"more than {MAX_HOPS} steps: {self.hops[-1]}")

    def _follow(
        self, method: str, url: str, data: dict[str, Any] | None = None, note: str = ""
    ) -> httpx.Response:
        response: httpx.Response | None = None
        for _ in range(MAX_HOPS):
            stop = self._stop_before
            if stop and url.startswith(stop) and response is not None:
                self.url = url
                return response
            response = self.http.request(method, _without_fragment(url), data=data)
            self.hops.append(Hop(method, url, response.status_code, note))
            location = response.headers.get("location")
            if response.status_code not in (301, 302, 303, 307, 308) or location is None:
                self.url = url
                return response
            target = urljoin(url, location)
            if not _fragment(target) and _fragment(url):  # RFC 9110 §10.2.2
                target = f"{target}#{_fragment(url)}"
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method == "POST"
            ):
                method, data = "GET", None
            url, note = target, ""
        raise RuntimeError(f"more than {MAX_HOPS} redirects: {self.hops[-1]}")

    # -- the authorization server's pages ------------------------------------------------

    def _at_issuer(self) -> bool:
        return self.url is not None and _origin(self.url) == _origin(self.issuer)

    def _is_login(self, page: str) -> bool:
        return self._at_issuer() and 'action="/login"' in page and bool(_NEXT.search(page))

    def _is_consent(self, page: str) -> bool:
        return self._at_issuer() and bool(_CSRF.search(page) and _ACTION.search(page))

    def _login(self, page: str) -> httpx.Response:
        next_url = html.unescape(_NEXT.search(page)[1])  # type: ignore[index]
        form = {"username": self.user, "password": self.password, "next": next_url}
        return self._follow("POST", self.issuer + "/login", form, note="login")

    def _allow(self, page: str) -> httpx.Response:
        action = html.unescape(_ACTION.search(page)[1])  # type: ignore[index]
        form = {
            "csrf": _CSRF.search(page)[1],  # type: ignore[index]
            "decision": "allow",
            "consented_scope": [html.unescape(s) for s in _SCOPE.findall(page)],
        }
        return self._follow("POST", urljoin(self.issuer + "/", action), form, note="consent")

    def sign_in(self) -> httpx.Response:
        """Sign in at the authorization server now (a session cookie, no flow yet)."""
        self.hops = []
        form = {"username": self.user, "password": self.password, "next": "/authorize?"}
        response = self.http.post(self.issuer + "/login", data=form)
        self.hops.append(Hop("POST", self.issuer + "/login", response.status_code, "login"))
        return response

    # -- showing a flow ------------------------------------------------------------------

    def flow(self) -> str:
        """The last navigation, a hop per line."""
        return "\n".join(f"{i:2}. {hop}" for i, hop in enumerate(self.hops, 1))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Browser of {self.user or 'nobody'} at {self.url or 'a blank page'}>"


class Victim(Browser):
    """The victim's browser: signed in at the authorization server (and, once asked to,
    at the client), it follows any link the learner "sends" with its own cookies, and
    clicks Allow on any consent page, as users do."""

    def __init__(self, issuer: str, user: str, password: str, shop_url: str) -> None:
        super().__init__(issuer, user, password)
        self.shop_url = shop_url.rstrip("/")
        self._lock = threading.Lock()
        self._signed_in = False

    def visit(self, url: str) -> httpx.Response:
        """Open ``url`` in the victim's browser; the last response (its hops in ``hops``)."""
        with self._lock:
            if not self._signed_in:
                self.sign_in()
                self._signed_in = True
            return self.get(url)

    def sign_in_at_shop(self) -> httpx.Response:
        """The victim signs in at PrintShop too (for attacks on the shop's session)."""
        return self.visit(self.shop_url + "/login")


@dataclass(frozen=True)
class Caught:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]

    def __str__(self) -> str:
        return f"{self.method} {self.path} query={self.query} form={self.form}"


def catcher_app(record: Callable[[Caught], None]) -> Starlette:
    """An attacker's server: answers every request with a page whose script posts the URL
    fragment back to ``/fragment``, and records every request it gets."""

    async def catch(request: Request) -> Response:
        form: dict[str, str] = {}
        if request.method == "POST":
            form = {k: str(v) for k, v in ((await read_form(request)) or {}).items()}
        query = dict(request.query_params)
        record(Caught(request.method, request.url.path, query, form))
        return HTMLResponse(
            "<!doctype html><title>Free prints!</title><h1>Free prints!</h1>"
            '<script data-post-fragment="/fragment"></script>'
        )

    return Starlette(routes=[Route("/{path:path}", catch, methods=["GET", "POST"])])


class Catcher:
    """What reached the attacker's server (``lab.net.catcher()``): ``url``, ``requests``."""

    def __init__(self) -> None:
        self.requests: list[Caught] = []
        self._lock = threading.Lock()
        self.url = ""  # set once its server has started

    def record(self, caught: Caught) -> None:
        with self._lock:
            self.requests.append(caught)

    def values(self, name: str) -> list[str]:
        """Every value of ``name`` (a query or posted parameter) that arrived, in order."""
        with self._lock:
            return [
                seen[name]
                for caught in self.requests
                for seen in (caught.query, caught.form)
                if name in seen
            ]

    def __repr__(self) -> str:
        return f"<attacker's catcher at {self.url}: {len(self.requests)} requests>"
