"""TLS for labs: a throwaway CA per lab, certificates, the peer certificate for the app, a relay.

- :class:`CourseCA` makes the lab's CA (with ``cryptography``, shaped like a real private CA)
  and issues certificates as PEM files in the lab's folder (good, wrong-name and expired
  ones, and client certificates).
- :class:`TLSProtocol` is uvicorn's h11 protocol plus the ASGI TLS extension: uvicorn does
  not give the app the client certificate, so this reads it from the handshake.
- :class:`Relay` is a small TCP proxy on loopback that keeps the bytes it forwards, to
  show what travels on the wire.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from uvicorn.protocols.http.h11_impl import H11Protocol

from labapp.engine.loopback import LAB_HOST, LOOPBACK

LAB_NAMES = (LAB_HOST,)  # what a lab's server certificate is valid for: a name, no address


@dataclass(frozen=True)
class CertFiles:
    """A certificate, its private key and the CA that signed it, as PEM files."""

    cert: Path
    key: Path
    ca: Path


class CourseCA:
    """A certificate authority made for one lab; its files live in ``folder``.

    Built like a real private CA, so what a learner inspects looks like one: an EC P-256
    root with a name and an organisation, valid for a year from today; leaf certificates
    valid for 90 days (servers) or 30 days (clients), issued now, with the extensions a
    strict verifier wants (basic constraints, key usage, extended key usage, key ids).
    """

    def __init__(
        self,
        folder: Path,
        name: str = "Northwind Systems Issuing CA G1",
        organization: str | None = None,
    ) -> None:
        self.folder = folder
        self.name = name
        self.organization = organization or ORGANIZATION
        folder.mkdir(parents=True, exist_ok=True)
        now = _now()
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name, self.organization)
        public = self._key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=CA_AGE_DAYS))
            .not_valid_after(now + datetime.timedelta(days=365 - CA_AGE_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = folder / f"{_slug(name)}.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        label: str,
        *names: str,
        common_name: str | None = None,
        expired: bool = False,
        days: int | None = None,
    ) -> CertFiles:
        """Issue a certificate for ``names`` (hosts or IPs) and/or ``common_name``.

        Valid from now for ``days`` (default: 90 for a server, 30 for a client, that is a
        certificate with a ``common_name`` and no host names); ``expired=True`` gives one
        that ran its whole life and ended a week ago.
        """
        if not names and not common_name:
            raise ValueError("a certificate needs host names or a common name")
        lifetime = datetime.timedelta(days=days or (SERVER_DAYS if names else CLIENT_DAYS))
        now = _now()
        start = now - lifetime - datetime.timedelta(days=7) if expired else now
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name or _host_name(names), self.organization))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - datetime.timedelta(minutes=5))  # clock skew
            .not_valid_after(start + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
            )
        cert = builder.sign(self._key, hashes.SHA256())
        files = CertFiles(self.folder / f"{label}.crt", self.folder / f"{label}.key", self.ca_file)
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return files

    def client_context(self, client: CertFiles | None = None) -> ssl.SSLContext:
        """A client context that trusts this CA only (and presents ``client``, for mTLS)."""
        return client_context(self.ca_file, client)


ORGANIZATION = "Northwind Systems Ltd"
CA_AGE_DAYS = 30  # the lab's CA was made a month ago and is valid for a year
SERVER_DAYS, CLIENT_DAYS = 90, 30  # as a public CA (90) and a service mesh (hours-30 days) issue


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _host_name(names: tuple[str, ...]) -> str:
    """The subject's name: its first DNS name (an IP address is a poor certificate name)."""
    return next((n for n in names if isinstance(_general_name(n), x509.DNSName)), names[0])


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def server_context(files: CertFiles, *, require_client_cert: bool = False) -> ssl.SSLContext:
    """A sound server context: TLS 1.2 or newer, optionally requiring a client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(files.ca)
    return context


def client_context(ca_file: Path, client: CertFiles | None = None) -> ssl.SSLContext:
    """Verify the server against ``ca_file`` (hostname checks on); optionally present a cert."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context


def legacy_context(server: bool, *, maximum: bool = False) -> ssl.SSLContext:
    """A context that allows TLS 1.0 and 1.1: what the weak lab and the downgrade probe use.

    Python deprecates those versions (and warns); OpenSSL 3 allows them only at security
    level 0, since their handshake signatures use SHA-1 and MD5. That level also lets in
    weak cipher suites (CBC with SHA-1 MACs), as old servers had them.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        if maximum:
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension (``scope["extensions"]["tls"]``) for one connection.

    The client certificate is there only if the handshake *verified* it: with
    ``CERT_NONE`` the server never asks for one, and with ``CERT_OPTIONAL`` or
    ``CERT_REQUIRED`` a certificate that fails verification ends the handshake.
    """
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain, name = [], None
    if der:
        cert = x509.load_der_x509_certificate(der)
        chain = [ssl.DER_cert_to_PEM_cert(der)]
        name = cert.subject.rfc4514_string()
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,  # Python gives the suite's name, not its number
        "cipher_name": cipher[0] if cipher else None,  # not in the spec: for display
    }


def no_nagle(transport: Any) -> None:
    """Send small writes at once on this connection (TCP_NODELAY).

    Under TLS the server's socket came with Nagle on (TCP_NODELAY 0, measured with uvicorn
    0.54): a response's second TLS record waited for the client's delayed ACK, 44 ms a
    request with or without keep-alive, against 3 ms with this.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # not a TCP socket: nothing to change
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class TLSProtocol(H11Protocol):
    """uvicorn's h11 protocol that adds the ASGI TLS extension to every request's scope."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        no_nagle(transport)
        info = tls_extension(transport.get_extra_info("ssl_object"))
        if info is None:
            return
        app = self.app

        async def with_tls(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = info
            await app(scope, receive, send)

        self.app = with_tls


def peer_common_name(scope: dict[str, Any]) -> str | None:
    """The CN of the verified client certificate of this request, if there is one."""
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    return common_name(x509.load_pem_x509_certificate(chain[0].encode()))


class Relay:
    """A TCP relay on 127.0.0.1 that forwards to ``target_port`` and keeps what passes.

    It stands for any machine on the path (a café's Wi-Fi, a proxy): it sees every byte.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._chunks: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._stopped = False
        self._thread = threading.Thread(
            target=self._accept, name=f"lab-relay-{self.port}", daemon=True
        )
        self._thread.start()

    def url(self, scheme: str = "http", host: str = LOOPBACK) -> str:
        return f"{scheme}://{host}:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed: stop() was called
            try:
                upstream = socket.create_connection((LOOPBACK, self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(target=self._connection, args=(client, upstream), daemon=True).start()

    def _connection(self, client: socket.socket, upstream: socket.socket) -> None:
        back = threading.Thread(target=self._pump, args=(upstream, client, "received"), daemon=True)
        back.start()
        self._pump(client, upstream, "sent")
        back.join(10)
        with self._lock:
            self._open.difference_update((client, upstream))
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.close()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        src.settimeout(None)
        try:
            while data := src.recv(65536):
                with self._lock:
                    self._chunks.append((way, data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def captured(self, way: str = "sent") -> bytes:
        """Every byte the clients ``"sent"`` (or ``"received"``) through the relay so far."""
        with self._lock:
            return b"".join(data for w, data in self._chunks if w == way)

    def text(self, way: str = "sent", limit: int = 1200) -> str:
        """The capture as a person reads a packet dump: printable ASCII, dots for the rest."""
        raw = self.captured(way)[:limit]
        return "".join(chr(b) if 32 <= b < 127 or b in (10, 13) else "." for b in raw)

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(2)

    def __repr__(self) -> str:
        return f"<Relay {self.url()} -> port {self.target_port}: {len(self.captured())} bytes sent>"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
