"""labapp.engine.tls and HTTPS labs: real certificates, real handshakes, real sockets."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from labapp import start_lab
from labapp.engine.grading import grader_client
from labapp.engine.server import LabServer
from labapp.engine.tls import (
    CourseCA,
    Relay,
    client_context,
    no_nagle,
    peer_common_name,
    server_context,
)
from tests.conftest import refused


@pytest.fixture
def ca(tmp_path: Path) -> CourseCA:
    return CourseCA(tmp_path / "tls")


def _whoami_app() -> FastAPI:
    app = FastAPI()

    @app.get("/who")
    def who(request: Request) -> dict[str, object]:
        tls = request.scope.get("extensions", {}).get("tls")
        return {
            "cn": peer_common_name(request.scope),
            "scheme": request.url.scheme,
            "tls_version": tls["tls_version"] if tls else None,
        }

    return app


def test_the_app_sees_the_verified_client_certificate(ca: CourseCA) -> None:
    """uvicorn hides the peer certificate; the lab's protocol puts it in the ASGI scope."""
    files = ca.issue("server", "localhost")
    billing = ca.issue("billing", common_name="billing")
    server = LabServer(_whoami_app(), ssl_context=server_context(files, require_client_cert=True))
    server.start()
    try:
        assert server.url.startswith("https://localhost:")  # a name, as certificates carry
        with httpx.Client(verify=ca.client_context(billing)) as client:
            body = client.get(server.url + "/who").json()
        assert body == {"cn": "billing", "scheme": "https", "tls_version": 0x0304}
        with (
            httpx.Client(verify=ca.client_context()) as client,
            pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        ):
            client.get(server.url + "/who")  # TLS 1.3: refused after the handshake
    finally:
        server.stop()


def test_a_server_that_asks_for_no_certificate_reports_none(ca: CourseCA) -> None:
    server = LabServer(_whoami_app(), ssl_context=server_context(ca.issue("s", "localhost")))
    server.start()
    try:
        billing = ca.issue("billing", common_name="billing")
        with httpx.Client(verify=ca.client_context(billing)) as client:
            assert client.get(server.url + "/who").json()["cn"] is None
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("names", "expired", "error"),
    [
        (("impostor.example",), False, "Hostname mismatch"),
        (("localhost",), True, "certificate has expired"),
    ],
)
def test_a_verifying_client_refuses_wrong_name_and_expired_certificates(
    ca: CourseCA, names: tuple[str, ...], expired: bool, error: str
) -> None:
    """Both certificates come from the trusted CA: the name and the dates still count."""
    files = ca.issue("bad", *names, expired=expired)
    server = LabServer(_whoami_app(), ssl_context=server_context(files))
    server.start()
    try:
        with (
            httpx.Client(verify=ca.client_context()) as client,
            pytest.raises(httpx.ConnectError, match=error),
        ):
            client.get(server.url + "/who")
    finally:
        server.stop()


def test_restart_keeps_the_port_and_applies_the_new_context(ca: CourseCA) -> None:
    files = ca.issue("server", "localhost")
    server = LabServer(_whoami_app(), ssl_context=server_context(files))
    server.start()
    try:
        port = server.port
        server.restart(server_context(files, require_client_cert=True))
        assert server.port == port
        with (
            httpx.Client(verify=ca.client_context()) as client,
            pytest.raises(httpx.TransportError),
        ):
            client.get(server.url + "/who")
    finally:
        server.stop()
    assert refused(port)


def test_the_relay_shows_headers_over_http_and_only_records_over_https(ca: CourseCA) -> None:
    plain = LabServer(_whoami_app())
    secure = LabServer(
        _whoami_app(), ssl_context=server_context(ca.issue("s", *("127.0.0.1", "localhost")))
    )
    plain.start()
    secure.start()
    wire, tls_wire = Relay(plain.port), Relay(secure.port)
    try:
        secret = {"Authorization": "Bearer sniff-me-if-you-can"}
        assert httpx.get(wire.url() + "/who", headers=secret).status_code == 200
        with httpx.Client(verify=ca.client_context()) as client:
            assert client.get(
                tls_wire.url("https", "localhost") + "/who", headers=secret
            ).is_success
        assert b"Bearer sniff-me-if-you-can" in wire.captured()
        assert b"sniff-me-if-you-can" not in tls_wire.captured()
        assert b"localhost" in tls_wire.captured()  # the server name travels in the ClientHello
        assert "HTTP/1.1 200" in wire.text("received")
        wire.clear()
        assert wire.captured() == b""
    finally:
        for relay in (wire, tls_wire):
            relay.stop()
        plain.stop()
        secure.stop()
    assert refused(wire.port)
    assert not [t for t in threading.enumerate() if t.name.startswith("lab-relay")]


def test_any_lesson_can_run_over_https_with_its_own_ca() -> None:
    """start_lab(..., tls=True): lab.client and the graders trust the lab's CA, nobody else."""
    with start_lab("01-unprotected", tls=True) as lab:
        assert lab.url.startswith("https://localhost:")
        assert lab.ca_file is not None and lab.ca_file.read_text().startswith("-----BEGIN")
        assert lab.client.get("/products").status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(lab.url + "/products", verify=ssl.create_default_context())
        with grader_client(lab.url, **lab.client_options()) as http:
            assert http.get("/health").status_code == 200
        context = client_context(lab.ca_file)
        assert httpx.get(lab.url + "/health", verify=context).status_code == 200
        assert "HTTPS" in lab._repr_html_()
    assert lab.ca_file is not None and not lab.ca_file.exists()  # deleted with the lab


def test_a_plain_lab_has_no_ca() -> None:
    with start_lab("00-welcome") as lab:
        assert lab.url.startswith("http://")
        assert lab.ca_file is None
        assert lab.client_options() == {}


def test_the_lab_ca_looks_like_a_real_private_ca(tmp_path) -> None:
    """Issued now, for a year (CA), 90 days (server) and 30 days (client); named like one."""
    import datetime

    from cryptography import x509

    from labapp.engine.tls import CourseCA

    ca = CourseCA(tmp_path)
    root = x509.load_pem_x509_certificate(ca.ca_file.read_bytes())
    server = x509.load_pem_x509_certificate(
        ca.issue("s", "127.0.0.1", "localhost").cert.read_bytes()
    )
    client = x509.load_pem_x509_certificate(ca.issue("c", common_name="billing").cert.read_bytes())
    old = x509.load_pem_x509_certificate(ca.issue("o", "localhost", expired=True).cert.read_bytes())
    now = datetime.datetime.now(datetime.timezone.utc)

    def days(cert: x509.Certificate) -> int:
        return round((cert.not_valid_after_utc - cert.not_valid_before_utc).days)

    assert days(root) == 365 and days(server) == 90 and days(client) == 30
    assert abs(server.not_valid_before_utc - now) < datetime.timedelta(minutes=10)
    assert old.not_valid_after_utc < now - datetime.timedelta(days=6)
    assert "O=Northwind Systems Ltd" in root.subject.rfc4514_string()
    assert server.subject.rfc4514_string().startswith("CN=localhost,")
    assert not any("Testing CA" in c.issuer.rfc4514_string() for c in (root, server))


class _Transport:
    def __init__(self, sock: object) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> object:
        return self.sock if name == "socket" else None


def test_a_tls_connection_sends_small_writes_at_once() -> None:
    """TCP_NODELAY on the server's side of each TLS connection: with Nagle on, every HTTPS
    answer waited ~40 ms for a delayed ACK. A transport without a TCP socket is left alone."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        no_nagle(_Transport(sock))
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
        no_nagle(_Transport(unix))  # no TCP options on a Unix socket: no error either
    no_nagle(_Transport(None))
