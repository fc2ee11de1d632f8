"""The battery's rows about the two TLS ports' own settings: versions, suites, trust.

Each row tries the handshake for real, on the HTTPS port and on the service port (which
``service_tls`` builds "as server_tls"), and then reads the context the hook returned: what
OpenSSL's security level refuses on this machine today is not what the setting allows.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import httpx

from labapp.engine.grading import Observed, grader_client
from labapp.engine.loopback import LAB_HOST, LOOPBACK
from labapp.engine.tls import CertFiles, client_context, legacy_context
from labapp.lessons.l07_tls.probes import extra_trust, version_floor, weak_suites

WEAK_SUITES = "ECDHE-ECDSA-NULL-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0"


def _ports(lab: Any) -> Iterator[tuple[str, int, ssl.SSLContext, CertFiles | None]]:
    """Each TLS port: its name, number, the context its hook returned, the cert to show it."""
    yield "the HTTPS port (server_tls)", lab.server.port, lab.server.ssl_context, None
    service = lab.net.service
    yield (
        "the service port (service_tls)",
        service.port,
        service.ssl_context,
        lab.net.certs["billing"],
    )


def _handshake(lab: Any, port: int, context: ssl.SSLContext, cert: CertFiles | None) -> str | None:
    """What the port agreed to with a client using ``context``, or None if it refused.

    The client checks the name the certificate carries (LAB_HOST), not the address it
    connects to: by address, every handshake would fail the name check, whatever the port's
    versions and suites, and this probe would see a refusal that is not there.
    """
    context.load_verify_locations(lab.ca_file)
    if cert is not None:  # the service port asks for one: show a good one, so only the
        context.load_cert_chain(cert.cert, cert.key)  # version or suite decides
    try:
        with (
            socket.create_connection((LOOPBACK, port), timeout=3) as raw,
            context.wrap_socket(raw, server_hostname=LAB_HOST) as tls,
        ):
            return f"{tls.version()} with {(tls.cipher() or ('?',))[0]}"
    except (ssl.SSLError, OSError):
        return None


def attack_old_tls(lab: Any, http: httpx.Client) -> Observed:
    """A client offering only TLS 1.0/1.1 (RFC 8996: MUST NOT be negotiated), then the floor
    each context sets."""
    for where, port, _, cert in _ports(lab):
        agreed = _handshake(lab, port, legacy_context(server=False, maximum=True), cert)
        if agreed:
            return Observed(True, None, f"{where} negotiated {agreed}")
    for where, _, context, _ in _ports(lab):
        floor = version_floor(context)
        if floor < ssl.TLSVersion.TLSv1_2:
            detail = f"{where}: your context allows {floor.name} (minimum_version is "
            detail += f"{context.minimum_version.name}). OpenSSL's security level refuses the "
            detail += "old handshake on this machine today; your setting does not"
            return Observed(True, None, detail)
    return Observed(False, None, "TLS 1.0/1.1 refused, and both floors are TLS 1.2")


def attack_weak_ciphers(lab: Any, http: httpx.Client) -> Observed:
    """A TLS 1.2 client offering only NULL-encryption and SHA-1 CBC suites, then the lists."""
    for where, port, _, cert in _ports(lab):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(WEAK_SUITES)
        agreed = _handshake(lab, port, context, cert)
        if agreed:
            return Observed(True, None, f"{where} negotiated {agreed}")
    for where, _, context, _ in _ports(lab):
        weak = weak_suites(context)
        if weak:
            shown = ", ".join(weak[:3]) + (f" and {len(weak) - 3} more" if len(weak) > 3 else "")
            return Observed(True, None, f"{where}: your cipher list still has {shown}")
    return Observed(False, None, "weak suites refused, and neither list has any")


def service_get(
    lab: Any, http: httpx.Client, cert: str | None, path: str, headers: dict[str, str]
) -> httpx.Response:
    """GET on the service port presenting ``cert`` (a name in lab.net.certs, or None)."""
    files = lab.net.certs[cert] if cert else None
    verify = client_context(lab.ca_file, files)
    with grader_client(lab.net.service_url, statuses=http.statuses, verify=verify) as client:
        return client.get(path, headers=headers)


def _service_handshake(lab: Any, http: httpx.Client, cert: str | None, what: str) -> Observed:
    response = service_get(lab, http, cert, "/internal/usage", {})
    return Observed(
        True,
        response.status_code,
        f"the service port answered a client with {what}: an HTTP answer, whatever its "
        "status, means its handshake let the client in",
    )


def attack_no_client_cert(lab: Any, http: httpx.Client) -> Observed:
    return _service_handshake(lab, http, None, "no certificate")


def attack_rogue_client_cert(lab: Any, http: httpx.Client) -> Observed:
    """A certificate from another CA, then the service port's trust store itself."""
    try:
        return _service_handshake(lab, http, "rogue", "a certificate from another CA")
    except httpx.TransportError:
        pass  # refused at the handshake: now, whom else does it trust?
    others = extra_trust(lab.net.service.ssl_context, lab.ca_file, server_side=True)
    if others:
        return Observed(True, None, trusts_more("the service port", others))
    return Observed(False, None, "refused at the handshake; the course CA is its only CA")


def attack_expired_client_cert(lab: Any, http: httpx.Client) -> Observed:
    return _service_handshake(lab, http, "expired", "an expired certificate")


def trusts_more(who: str, others: list[str]) -> str:
    shown = ", ".join(repr(name) for name in others[:2])
    more = f" and {len(others) - 2} more" if len(others) > 2 else ""
    return (
        f"{who} trusts {len(others)} certificate(s) besides the course CA ({shown}{more}): "
        "anyone with a certificate from any of them gets in"
    )
