"""Lesson 07's network: everything around the HTTPS API that lab.url serves.

- the same API on plain HTTP (``http_url``), reached by bob's phone app through a café
  Wi-Fi that an attacker watches (``wifi``, a relay that keeps every byte);
- the internal service API on its own TLS port (``service_url``), for mutual TLS;
- the reports job, an HTTPS client built by the ``make_client`` hook, and impostor servers
  an attacker on the path can send it to;
- client certificates for the services, and a rogue and an expired one.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from labapp.engine.errors import BadHook
from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.handlers import install_handlers
from labapp.engine.http import lab_client
from labapp.engine.server import LabServer
from labapp.engine.store import Store
from labapp.engine.tls import CertFiles, CourseCA, Relay

if TYPE_CHECKING:
    from fastapi import FastAPI

    from labapp.engine.lab import Lab
    from labapp.engine.spec import LabState

SERVICES = ("billing", "reports")
IMPOSTORS = ("other-ca", "wrong-name", "expired")
# The host name the impostors claim to be: a DNS name, as a certificate should hold (the
# OWASP TLS Cheat Sheet, "Use Correct Domain Names": do not include IP addresses).
API_HOST = "localhost"
WRONG_HOST = "intranet.example.com"  # another host the course CA issued a certificate to

# Who the lab's clients pretend to be, as their requests say (each client sends its own).
PHONE_APP_AGENT = "Messages/5.14.2 (Android 15; Pixel 8) okhttp/4.12.0"
REPORTS_JOB_AGENT = "reports-job/3.2.0 (cron; svc-reports)"
SERVICE_AGENTS = {"billing": "billing-service/2.4.1", "reports": "reports-service/1.9.0"}

GATEWAY_CONF = """\
# gateway.conf: the TLS-terminating proxy planned in front of the service API (nginx)
map $ssl_client_s_dn $client_cn {
    default                "";
    ~(^|,)CN=(?<cn>[^,]+)  $cn;
}

server {
    listen 8443 ssl;
    ssl_certificate         tls/gateway.crt;
    ssl_certificate_key     tls/gateway.key;
    ssl_client_certificate  tls/issuing-ca.pem;  # client certificates: our own CA
    ssl_verify_client       on;

    location /internal/ {
        proxy_pass https://service-api;
        # the service API reads the caller's name from this header
        proxy_set_header X-Client-Cert-CN $client_cn;
    }
}
"""


def new_session(store: Store, username: str, given_to: str = "user") -> str:
    """A fresh bearer token for ``username``, as a client gets by signing in.

    ``given_to`` records who holds it (a user, the phone app, the reports job, or the
    impostor that captured it): the flags go only to tokens an attack really obtained.
    """
    token = secrets.token_urlsafe(24)
    store.execute(
        "INSERT INTO sessions (token, username, given_to) VALUES (?, ?, ?)",
        (token, username, given_to),
    )
    store.add_secret(token)
    return token


@dataclass
class Impostor:
    """A server that answers like the real API and keeps the tokens clients send it.

    Its URL names the host it claims to be (``localhost``), as a client that was sent to it
    by a poisoned DNS answer or a rogue access point would ask for that name.
    """

    kind: str
    captured: list[str] = field(default_factory=list)  # Authorization header values
    server: LabServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None and self.server.port is not None
        return f"https://{API_HOST}:{self.server.port}"

    def __repr__(self) -> str:
        return f"<Impostor {self.kind} at {self.url}: {len(self.captured)} token(s) captured>"


class Network:
    """The company network around the HTTPS API (``lab.net``).

    - ``http_url``: the same API on plain HTTP; ``wifi``: a café's Wi-Fi in front of it,
      which keeps every byte (``wifi.text()``); ``tap(port)``: such a relay for any port;
    - ``phone_app_sync()``: bob's phone app syncs, through the Wi-Fi;
    - ``reports_job(via=None)``: the reports job fetches the daily report over HTTPS;
    - ``impostor(kind)``: a server that claims to be the API, as an attacker runs it;
    - ``service_url``, ``service_client(name)``: the internal service API and a client of it
      that presents a service's certificate; ``gateway_conf``: the gateway planned for it.

    (``service_app`` makes the internal service API; the lesson's app module passes its own:
    helpers never import the app they serve.)
    """

    def __init__(self, lab: Lab, service_app: Callable[[LabState], FastAPI]) -> None:
        assert lab.ca is not None  # lesson 07 is always served over HTTPS
        self.lab, self.ca = lab, lab.ca
        self._servers: list[LabServer] = []
        self._relays: list[Relay] = []
        self._impostors: dict[str, Impostor] = {}
        try:
            self.certs = {
                name: self.ca.issue(f"client-{name}", common_name=name) for name in SERVICES
            }
            self.certs["expired"] = self.ca.issue(
                "client-expired", common_name="billing", expired=True
            )
            # Anyone can make a CA and give it a trustworthy-sounding name.
            self.rogue_ca = CourseCA(
                lab.workdir / "rogue",
                name="Secure Web Trust Services CA",
                organization="Secure Web Trust Services",
            )
            self.certs["rogue"] = self.rogue_ca.issue("client-rogue", common_name="billing")
            self.plain = self._serve(LabServer(lab.server.app))
            self.wifi = self._relay(self.plain.port)
            context = context_from_hook(self.lab, "service_tls")
            app = install_handlers(service_app(lab.state))
            self.service = self._serve(LabServer(app, ssl_context=context))
        except BaseException:
            self.stop()
            raise

    # -- what the notebook uses ----------------------------------------------------------

    @property
    def http_url(self) -> str:
        return self.plain.url

    @property
    def service_url(self) -> str:
        return self.service.url

    @property
    def gateway_conf(self) -> str:
        """The configuration of the proxy the team planned in front of the service API."""
        return GATEWAY_CONF

    def tap(self, port: int) -> Relay:
        """A relay in front of any lab port, to see what travels to it."""
        self.lab._alive()
        return self._relay(port)

    def untap(self, relay: Relay) -> None:
        relay.stop()
        if relay in self._relays:
            self._relays.remove(relay)

    def phone_app_sync(self, via: str | None = None) -> dict[str, Any]:
        """Bob's phone app signs in and fetches his inbox from its (plain HTTP) base URL."""
        self.lab._alive()
        token = new_session(self.lab.store, "bob", "phone-app")
        headers = {"Authorization": f"Bearer {token}", "User-Agent": PHONE_APP_AGENT}
        with lab_client(via or self.wifi.url()) as http:
            response = http.get("/inbox", headers=headers)
        return {"status": response.status_code, "base_url": via or self.wifi.url()}

    def impostor(self, kind: str) -> Impostor:
        """Start (once) a server that claims to be the API, and return it.

        ``kind`` says what is wrong with its certificate: ``other-ca`` (the right name, from
        a CA that is not the course CA), ``wrong-name`` (the course CA, another host's name)
        or ``expired`` (the course CA, the right name, past its dates). The impostor answers
        every request and keeps each ``Authorization`` header value it receives, in
        ``.captured``; ``.url`` is its address.
        """
        self.lab._alive()
        if kind not in IMPOSTORS:
            raise ValueError(f"no impostor {kind!r}; choose one of {', '.join(IMPOSTORS)}")
        if kind not in self._impostors:
            if kind == "other-ca":  # the right name, from a CA the job should not trust
                files = self.rogue_ca.issue("impostor-other-ca", API_HOST)
            elif kind == "wrong-name":  # the course CA, for another host
                files = self.ca.issue("impostor-wrong-name", WRONG_HOST)
            else:  # the course CA, the right name, dates long past
                files = self.ca.issue("impostor-expired", API_HOST, expired=True)
            impostor = Impostor(kind)
            app = self._impostor_app(impostor)
            impostor.server = self._serve(LabServer(app, ssl_context=_plain_server(files)))
            self._impostors[kind] = impostor
        return self._impostors[kind]

    def reports_job(self, via: str | None = None) -> dict[str, Any]:
        """The reports job signs in and fetches the daily report over HTTPS.

        It builds its HTTPS client with the ``make_client`` hook, then sends its bearer
        token with the request. ``via`` is where its connection really goes: an attacker on
        the path (a rogue access point, a poisoned DNS answer) decides that, not the job.
        Returns the status it got, or the error that stopped it.
        """
        self.lab._alive()
        token = new_session(self.lab.store, "svc-reports", "reports-job")
        client = self.lab.guard.call_blocking(
            "make_client", self.lab.state.hooks["make_client"], self.lab.ca_file
        )
        if not isinstance(client, httpx.Client):
            raise self.lab.guard.bad_result(
                "make_client", f"must return an httpx.Client, not {type(client).__name__}"
            )
        try:
            with client:
                response = client.get(
                    f"{via or self.lab.url}/reports/daily",
                    headers={"Authorization": f"Bearer {token}", "User-Agent": REPORTS_JOB_AGENT},
                    timeout=5,
                )
        except httpx.TransportError as exc:
            return {"status": None, "error": f"{type(exc).__name__}: {exc}"}
        except RuntimeError as exc:  # e.g. a client made once and already closed
            problem = f"a client that cannot send: {exc}"
            raise self.lab.guard.bad_result("make_client", problem) from None
        finally:
            self._record_capture(token)
        return {"status": response.status_code}

    def _record_capture(self, token: str) -> None:
        """If an impostor got the job's token, say which: that token now earns its flag.

        Only the shipped client falls for an impostor here; a client of yours that hands its
        token over some other way has not been fooled by a certificate.
        """
        if not self.lab.state.is_weak("make_client"):
            return
        for impostor in self._impostors.values():
            if f"Bearer {token}" in impostor.captured:
                self.lab.store.execute(
                    "UPDATE sessions SET given_to = ? WHERE token = ? AND given_to = ?",
                    (impostor.kind, token, "reports-job"),
                )

    def service_client(self, service: str | None) -> httpx.Client:
        """An HTTPS client of the service port, presenting ``service``'s certificate.

        ``"billing"`` and ``"reports"`` are the services' own; ``"rogue"`` (CN=billing, from
        another CA) and ``"expired"`` (CN=billing, course CA) are the bad ones; None, none.
        """
        self.lab._alive()
        if service is not None and service not in self.certs:
            names = ", ".join(self.certs)
            raise ValueError(f"no certificate {service!r}; the lab has: {names} (or None)")
        files = self.certs[service] if service else None
        headers = {}
        if service is not None:  # rogue and expired say CN=billing: they pose as billing
            headers["User-Agent"] = SERVICE_AGENTS.get(service, SERVICE_AGENTS["billing"])
        return lab_client(self.service_url, verify=self.ca.client_context(files), headers=headers)

    # -- settings the learner changes (server_tls, service_tls) --------------------------

    def apply(self, names: set[str]) -> None:
        """Restart the TLS ports whose hooks are in ``names`` (lab.defend() does it for you)."""
        __tracebackhide__ = True  # a learner sees the BadHook, not the lab's plumbing
        # Only a failed handshake blames the TLS setting: a hook's 500 or 504 (a bad header)
        # is an answer, so security_headers is never mistaken for server_tls.
        if "server_tls" in names:
            self._swap(self.lab.server, "server_tls", self.lab.url + "/no-such-route", None)
        if "service_tls" in names:
            self._swap(
                self.service, "service_tls", self.service_url + "/health", self.certs["billing"]
            )

    def _swap(self, server: LabServer, hook: str, probe: str, cert: CertFiles | None) -> None:
        """Serve with the hook's new context; put the old one back if no client can connect."""
        __tracebackhide__ = True
        context, old = context_from_hook(self.lab, hook), server.ssl_context
        server.restart(context)
        try:
            with lab_client(probe, verify=self.ca.client_context(cert)) as http:
                http.get(probe)
        except httpx.TransportError as exc:
            server.restart(old)
            advice = "Did you load_cert_chain(files.cert, files.key)?"
            if cert is not None:
                advice += " If you require client certificates, load_verify_locations(files.ca)."
            raise BadHook(
                f"{hook}: a client that trusts the course CA could not connect to a server "
                f"using your context ({type(exc).__name__}: {exc}). {advice} The previous "
                "setting is back in place."
            ) from None

    # -- plumbing --------------------------------------------------------------------------

    def _serve(self, server: LabServer) -> LabServer:
        server.start()
        self._servers.append(server)
        return server

    def _relay(self, port: int) -> Relay:
        relay = Relay(port)
        self._relays.append(relay)
        return relay

    def _impostor_app(self, impostor: Impostor) -> Starlette:
        async def anything(request: Request) -> JSONResponse:
            header = request.headers.get("authorization", "")
            if header:
                impostor.captured.append(header)
            return JSONResponse({"report": "nothing to see here"})

        return Starlette(routes=[Route("/{path:path}", anything)])

    def stop(self) -> None:
        for relay in self._relays:
            relay.stop()
        for server in self._servers:
            server.stop()


def context_from_hook(lab: Lab, hook: str) -> ssl.SSLContext:
    """Build a server context with the current ``server_tls``/``service_tls`` hook."""
    __tracebackhide__ = True
    try:
        context = lab.guard.call_blocking(hook, lab.state.hooks[hook], lab.server_files)
    except (HookFailed, HookTimeout) as exc:
        raise BadHook(f"{hook}(files) could not build a context: {exc}") from None
    if not isinstance(context, ssl.SSLContext):
        raise BadHook(f"{hook}(files) must return an ssl.SSLContext, not {type(context).__name__}")
    if context.protocol != ssl.PROTOCOL_TLS_SERVER:
        raise BadHook(f"{hook}(files): a server needs ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)")
    return context


def _plain_server(files: CertFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    return context
