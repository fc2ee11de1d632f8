"""Lesson 08's network: the parties around the authorization server that ``lab.url`` serves.

- the photos API (``api_url``), the resource server;
- the client app (``client_url``), PrintShop (:mod:`client`), where the registered redirect
  URIs point;
- browsers: ``browser(user)``, the ``victim`` (bob) and ``catcher()``, an attacker's server
  that records what reaches it (:mod:`browser`).

The lab's app is the authorization server; this sets its issuer to the lab's URL and
registers the clients once the client app's port is known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from labapp.engine.handlers import install_handlers
from labapp.engine.server import LabServer
from labapp.lessons.l08_oauth import client as shop
from labapp.lessons.l08_oauth import people
from labapp.lessons.l08_oauth.authserver import AuthServer
from labapp.lessons.l08_oauth.browser import Browser, Catcher, Victim, catcher_app
from labapp.lessons.l08_oauth.verifier import Verifier

if TYPE_CHECKING:
    from fastapi import FastAPI

    from labapp.engine.lab import Lab
    from labapp.engine.spec import LabState


def _client_app() -> Starlette:
    async def callback(request: Request) -> JSONResponse:
        # Names only: a code is a credential and is not echoed back.
        return JSONResponse({"received": sorted(request.query_params.keys())})

    return Starlette(routes=[Route("/shop/callback", callback), Route("/spa/callback", callback)])


class Network:
    """The parties around the authorization server (``lab.net``).

    - ``issuer``: the authorization server's identifier (= ``lab.url``);
    - ``api_url``: the photos API; ``audience``: its identifier in access tokens;
    - ``client_url``: the client app the redirect URIs point at; ``clients``: the registered
      clients (ids, secrets, redirect URIs, scopes);
    - ``jwks()``: the issuer's public keys; ``signing_key(token)``: the one that signed it.
    """

    # Reachable as lab.browser(user), lab.victim, lab.catcher() too (Lab.__getattr__).
    exports = ("browser", "victim", "catcher")

    def __init__(
        self,
        lab: Lab,
        photos_app: Callable[[LabState, Verifier], FastAPI],
        client_app: Callable[[LabState], FastAPI] | None = None,
    ) -> None:
        self.lab = lab
        self.auth: AuthServer = lab.server.app.state.auth
        self.auth.issuer = lab.url
        self._servers: list[LabServer] = []
        self._browsers: list[Browser] = []
        self._victim: Victim | None = None
        self.shop = install_handlers(client_app(lab.state)) if client_app else None
        try:
            self.client = self._serve(LabServer(self.shop or _client_app()))
            clients = people.clients(self.client.url)
            for client in clients:
                if client.client_secret:
                    lab.store.add_secret(client.client_secret)
            self.auth.records.register(clients)
            self.verifier = Verifier(self.auth.issuer, self.auth.audience, self.auth.jwks)
            app = install_handlers(photos_app(lab.state, self.verifier))
            self.photos = self._serve(LabServer(app))
            if self.shop is not None:
                shop.wire(
                    self.shop,
                    self.issuer,
                    self.api_url,
                    self.client_url,
                    self.clients,
                    self.verifier,
                )
        except BaseException:
            self.stop()
            raise

    def _serve(self, server: LabServer) -> LabServer:
        self._servers.append(server)
        server.start()
        return server

    @property
    def issuer(self) -> str:
        return self.auth.issuer

    @property
    def audience(self) -> str:
        return self.auth.audience

    @property
    def api_url(self) -> str:
        return self.photos.url

    @property
    def client_url(self) -> str:
        return self.client.url

    @property
    def clients(self) -> dict[str, dict[str, Any]]:
        return {
            cid: {
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "redirect_uris": list(c.redirect_uris),
                "scope": c.scope,
                "grant_types": list(c.grant_types),
                "response_types": list(c.response_types),
                "public": c.public,
            }
            for cid, c in self.auth.records.clients.items()
        }

    def jwks(self) -> dict[str, Any]:
        return self.auth.jwks()

    def signing_key(self, token: str) -> Any:
        return self.verifier.signing_key(token)

    def password(self, user: str) -> str:
        return next(u["password"] for u in self.lab.users if u["username"] == user)

    def browser(self, user: str | None = None, *, consent: bool = True) -> Browser:
        """A browser that signs in at the AS as ``user`` when asked, and clicks Allow."""
        made = Browser(self.issuer, user, self.password(user) if user else None, consent=consent)
        self._browsers.append(made)
        return made

    @property
    def victim(self) -> Victim:
        """Bob's browser, signed in at the AS: ``victim.visit(url)`` follows a link you send."""
        if self._victim is None:
            self._victim = Victim(self.issuer, "bob", self.password("bob"), self.client_url)
            self._browsers.append(self._victim)
        return self._victim

    def catcher(self) -> Catcher:
        """A server of the attacker's that records every request (and a page's fragment)."""
        caught = Catcher()
        server = self._serve(LabServer(catcher_app(caught.record)))
        caught.url = server.url
        return caught

    def stop(self) -> None:
        for made in self._browsers:
            made.close()
        self._browsers.clear()
        if self.shop is not None:
            self.shop.state.shop.close()
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()

    def __repr__(self) -> str:
        return f"<Lesson 08 network: issuer {self.issuer}, photos API {self.api_url}>"
