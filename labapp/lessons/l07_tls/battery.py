"""Lesson 07's battery: each attack over real sockets, real TLS handshakes, real certificates.

Rows about the service port's handshake count a dropped connection as a rejection
(``transport_error_blocks``): with TLS 1.3 a server that refuses a client certificate
closes the connection after the handshake, and the client sees a read error. Any HTTP
answer at all, even a 401, means the handshake let the client in.
"""

from __future__ import annotations

import re
import socket
import ssl
from typing import Any

import httpx

from labapp.engine.grading import Attack, Check, Observed, grader_client
from labapp.engine.loopback import LOOPBACK
from labapp.engine.tls import client_context, legacy_context
from labapp.lessons.common import auth, user_token
from labapp.lessons.l07_tls.app import TransportRequest
from labapp.lessons.l07_tls.network import new_session

WEAK_SUITES = "ECDHE-ECDSA-NULL-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0"
YEAR = 31_536_000  # seconds: the HSTS max-age OWASP and ASVS 5 (3.4.1) ask for


def _service_get(
    lab: Any, http: httpx.Client, cert: str | None, path: str, headers: dict[str, str]
) -> httpx.Response:
    """GET on the service port presenting ``cert`` (a name in lab.net.certs, or None)."""
    files = lab.net.certs[cert] if cert else None
    verify = client_context(lab.ca_file, files)
    with grader_client(lab.net.service_url, statuses=http.statuses, verify=verify) as client:
        return client.get(path, headers=headers)


def attack_sniff(lab: Any, http: httpx.Client) -> Observed:
    """The phone app syncs over http:// through a tap; the token on the wire is replayed."""
    wire = lab.net.tap(lab.net.plain.port)  # a fresh tap: the learner's capture stays theirs
    try:
        lab.net.phone_app_sync(via=wire.url())
        found = re.search(rb"Bearer ([\w.~+/-]+)", wire.captured())
    finally:
        lab.net.untap(wire)
    if found is None:
        return Observed(False, None, "no bearer token crossed the wire")
    response = http.get("/inbox", headers=auth(found.group(1).decode()))
    return Observed(
        response.is_success,
        response.status_code,
        "a token sniffed from plain HTTP, replayed over HTTPS",
    )


def attack_plain_http(lab: Any, http: httpx.Client) -> Observed:
    """Plain HTTP must be refused, not served and not redirected: with a token or without.

    OWASP's TLS Cheat Sheet: API-only endpoints should disable HTTP altogether.
    """
    token = new_session(lab.store, "alice")
    for path, headers in (("/inbox", auth(token)), ("/health", {})):
        response = http.get(f"{lab.net.http_url}{path}", headers=headers)
        status = response.status_code
        detail = f"GET {path} over http://" + (" with a bearer token" if headers else "")
        if 300 <= status < 400:
            detail += f" was redirected to {response.headers.get('location')!r}: the request "
            detail += "already crossed in clear, and a client that follows sends it again"
        if status < 400:
            return Observed(True, status, detail)
    return Observed(False, status, "refused with and without a token")


def _handshake_with(lab: Any, context: ssl.SSLContext) -> Observed:
    context.load_verify_locations(lab.ca_file)
    try:
        with (
            socket.create_connection((LOOPBACK, lab.server.port), timeout=3) as raw,
            context.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
        ):
            version, cipher = tls.version(), (tls.cipher() or ("?",))[0]
    except (ssl.SSLError, OSError) as exc:
        return Observed(False, None, f"handshake refused ({type(exc).__name__})")
    return Observed(True, None, f"the HTTPS port negotiated {version} with {cipher}")


def attack_old_tls(lab: Any, http: httpx.Client) -> Observed:
    """A client that offers only TLS 1.0/1.1 (RFC 8996: MUST NOT be negotiated)."""
    return _handshake_with(lab, legacy_context(server=False, maximum=True))


def attack_weak_ciphers(lab: Any, http: httpx.Client) -> Observed:
    """A TLS 1.2 client offering only a NULL-encryption suite and CBC suites with SHA-1 MACs."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(WEAK_SUITES)
    return _handshake_with(lab, context)


def attack_no_hsts(lab: Any, http: httpx.Client) -> Observed:
    """Every HTTPS response, errors included, must carry HSTS of a year or more."""
    bob = auth(user_token(lab.state, "bob"))
    for path, headers in (("/health", {}), ("/inbox", bob), ("/reports/daily", {})):
        response = http.get(path, headers=headers)
        value = response.headers.get("strict-transport-security")
        found = re.search(r'max-age\s*=\s*"?(\d+)', value or "", re.IGNORECASE)
        max_age = int(found.group(1)) if found else 0
        if max_age < YEAR:
            detail = f"GET {path} (HTTP {response.status_code}): "
            detail += f"Strict-Transport-Security: {value!r}" if value else "no HSTS header"
            if value:
                detail += f" (max-age {max_age} s is under one year, {YEAR} s)"
            return Observed(True, response.status_code, detail)
    return Observed(False, response.status_code, f"HSTS on every response: {value!r}")


def _job_against(lab: Any, kinds: tuple[str, ...]) -> Observed:
    refusals = []
    for kind in kinds:
        impostor = lab.net.impostor(kind)
        before = len(impostor.captured)
        outcome = lab.net.reports_job(via=impostor.url)
        if len(impostor.captured) > before:
            return Observed(
                True,
                outcome.get("status"),
                f"the reports job sent its token to the {kind} impostor",
            )
        refusals.append(f"{kind}: {str(outcome.get('error', outcome))[:80]}")
    return Observed(False, None, "the job refused " + "; ".join(refusals))


def attack_impostor(lab: Any, http: httpx.Client) -> Observed:
    return _job_against(lab, ("other-ca",))


def attack_bad_certificate(lab: Any, http: httpx.Client) -> Observed:
    return _job_against(lab, ("wrong-name", "expired"))


def attack_spoofed_identity(lab: Any, http: httpx.Client) -> Observed:
    """X-Client-Cert-CN: billing, from the reports service's connection and from none.

    Then identify_service itself is asked about a request that carries the header and no
    verified certificate: a header kept as a fallback would only wait for the day someone
    relaxes CERT_REQUIRED.
    """
    last = None
    for cert in ("reports", None):
        try:
            response = _service_get(
                lab, http, cert, "/internal/payouts", {"X-Client-Cert-CN": "billing"}
            )
        except httpx.TransportError:
            continue  # refused at the handshake: blocked
        last = response.status_code
        if response.is_success:
            who = f"the {cert} certificate" if cert else "no certificate"
            return Observed(True, last, f"X-Client-Cert-CN: billing, sent with {who}")
    headers = {"x-client-cert-cn": "billing"}
    request = TransportRequest("GET", "/internal/payouts", "https", headers, None, None, None, _no)
    answer = lab.guard.call_blocking(
        "identify_service", lab.state.hooks["identify_service"], request
    )
    if answer is not None:
        detail = f"identify_service answered {answer!r} for a request with no certificate"
        return Observed(True, last, detail + " and X-Client-Cert-CN: billing")
    return Observed(False, last)


def _no() -> None:
    """A revoke_token() that does nothing: the probe request has no token."""


def _handshake(lab: Any, http: httpx.Client, cert: str | None, what: str) -> Observed:
    response = _service_get(lab, http, cert, "/internal/usage", {})
    return Observed(
        True,
        response.status_code,
        f"the service port answered a client with {what}: its handshake let the client in",
    )


def attack_no_client_cert(lab: Any, http: httpx.Client) -> Observed:
    return _handshake(lab, http, None, "no certificate")


def attack_rogue_client_cert(lab: Any, http: httpx.Client) -> Observed:
    return _handshake(lab, http, "rogue", "a certificate from another CA")


def attack_expired_client_cert(lab: Any, http: httpx.Client) -> Observed:
    return _handshake(lab, http, "expired", "an expired certificate")


def attack_cross_service(lab: Any, http: httpx.Client) -> Observed:
    """A valid certificate for one service at the other service's route."""
    for cert, path in (("reports", "/internal/payouts"), ("billing", "/internal/usage")):
        response = _service_get(lab, http, cert, path, {})
        if response.is_success:
            return Observed(True, response.status_code, f"the {cert} certificate at {path}")
    return Observed(False, response.status_code)


def check_https(lab: Any, http: httpx.Client) -> Observed:
    response = http.get("/inbox", headers=auth(user_token(lab.state, "bob")))
    return Observed(response.is_success, response.status_code, "GET /inbox as bob over HTTPS")


def check_tls12(lab: Any, http: httpx.Client) -> Observed:
    context = client_context(lab.ca_file)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with grader_client(lab.url, statuses=http.statuses, verify=context) as client:
        response = client.get("/health")
    return Observed(response.is_success, response.status_code, "a TLS 1.2-only client")


def check_job(lab: Any, http: httpx.Client) -> Observed:
    outcome = lab.net.reports_job()
    status = outcome.get("status")
    if status is None:
        return Observed(False, None, f"the job could not reach the real API: {outcome['error']}")
    http.statuses.append(status)
    return Observed(200 <= status < 300, status, "the reports job, with your client, at lab.url")


def check_services(lab: Any, http: httpx.Client) -> Observed:
    for cert, path in (("billing", "/internal/payouts"), ("reports", "/internal/usage")):
        response = _service_get(lab, http, cert, path, {})
        if not response.is_success:
            return Observed(False, response.status_code, f"the {cert} service at {path}")
    return Observed(True, response.status_code, "billing and reports, each with its certificate")


ATTACKS = (
    Attack(
        "sniff-token",
        "bob's phone app syncs over http://; its token is read off the wire and replayed",
        (
            "lab.net.phone_app_sync() makes the app sync through the café Wi-Fi (lab.net.wifi).",
            "print(lab.net.wifi.text()): the request is there, headers and all.",
            "Replay the Authorization header over HTTPS: lab.client.get('/inbox', headers=...).",
        ),
        attack_sniff,
        fix="on_plain_http: call req.revoke_token() (it crossed in clear), then return False.",
    ),
    Attack(
        "plain-http-served",
        "a request over http:// is served (or redirected), with a bearer token or without",
        ("Any answer but a refusal teaches the client that http:// works.",),
        attack_plain_http,
        fix="on_plain_http must return False: refuse with 403, never serve or redirect an API "
        "call (OWASP TLS Cheat Sheet, 'Use TLS For All Pages').",
        flag=False,
    ),
    Attack(
        "old-tls",
        "a client offering only TLS 1.0/1.1 completes a handshake",
        ("ssl.TLSVersion.TLSv1_2 is the floor (RFC 8996, ASVS 5 12.1.1).",),
        attack_old_tls,
        expected="a refused handshake",
        fix="server_tls: context.minimum_version = ssl.TLSVersion.TLSv1_2 (and no SECLEVEL=0).",
        flag=False,
    ),
    Attack(
        "weak-ciphers",
        "a TLS 1.2 client offering only NULL-encryption and SHA-1 CBC suites connects",
        ("OWASP TLS Cheat Sheet, 'Only Support Strong Ciphers'; RFC 9325 §4.1.",),
        attack_weak_ciphers,
        expected="a refused handshake",
        fix="server_tls: keep Python's default cipher list (no NULL, no SHA-1 suites); "
        "never set_ciphers('...@SECLEVEL=0').",
        flag=False,
    ),
    Attack(
        "no-hsts",
        "HTTPS responses lack Strict-Transport-Security with max-age of a year or more",
        ("RFC 6797; OWASP HSTS Cheat Sheet; ASVS 5 3.4.1.",),
        attack_no_hsts,
        fix="security_headers: return {'Strict-Transport-Security': "
        "'max-age=31536000; includeSubDomains'}.",
        flag=False,
    ),
    Attack(
        "impostor-server",
        "the reports job sends its token to an impostor whose certificate is from another CA",
        (
            "imp = lab.net.impostor('other-ca') starts a server with someone else's certificate.",
            "lab.net.reports_job(via=imp.url): you are on the path, so you choose where it goes.",
            "imp.captured holds what it sent. Use that token on lab.url's /reports/daily.",
        ),
        attack_impostor,
        fix="make_client: verify against the course CA only: "
        "httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file))).",
    ),
    Attack(
        "bad-certificate",
        "the reports job accepts a course-CA certificate for the wrong name, or an expired one",
        (
            "lab.net.impostor('wrong-name') and lab.net.impostor('expired') are signed by the "
            "course CA itself.",
            "The weak client checks nothing at all; a client with check_hostname=False "
            "would still fall for 'wrong-name'.",
            "As before: reports_job(via=imp.url), then the captured token on /reports/daily.",
        ),
        attack_bad_certificate,
        fix="make_client: keep check_hostname=True and CERT_REQUIRED (the defaults of "
        "ssl.create_default_context); never verify=False.",
    ),
    Attack(
        "spoofed-identity",
        "X-Client-Cert-CN: billing on the service port makes any caller the billing service",
        (
            "with lab.net.service_client('reports') as c: c.get('/internal/usage', "
            "headers={'X-Client-Cert-CN': 'reports'}) is a call as the proxy would label it.",
            "The service trusts X-Client-Cert-CN, 'set by the proxy'. Who else can set it?",
            "c.get('/internal/payouts', headers={'X-Client-Cert-CN': 'billing'})",
        ),
        attack_spoofed_identity,
        fix="identify_service: return req.client_cert_cn (from the verified handshake); "
        "ignore every header.",
    ),
    Attack(
        "no-client-cert",
        "the service port accepts a client with no certificate",
        ("mTLS: the server must require a certificate.",),
        attack_no_client_cert,
        fix="service_tls: context.verify_mode = ssl.CERT_REQUIRED (CERT_OPTIONAL lets a "
        "client without one in).",
        flag=False,
        transport_error_blocks=True,
    ),
    Attack(
        "rogue-client-cert",
        "the service port accepts a client certificate from another CA",
        ("Trust only the course CA for client certificates.",),
        attack_rogue_client_cert,
        fix="service_tls: CERT_REQUIRED and context.load_verify_locations(files.ca).",
        flag=False,
        transport_error_blocks=True,
    ),
    Attack(
        "expired-client-cert",
        "the service port accepts an expired client certificate",
        ("The handshake checks expiry when it verifies the certificate at all.",),
        attack_expired_client_cert,
        fix="service_tls: CERT_REQUIRED with load_verify_locations(files.ca) checks expiry too.",
        flag=False,
        transport_error_blocks=True,
    ),
    Attack(
        "cross-service",
        "a valid certificate for one service calls the other service's route",
        ("Identity is the certificate's name, and each route names one service.",),
        attack_cross_service,
        fix="identify_service: return the verified CN as is; do not map every valid "
        "certificate to the same service.",
        flag=False,
    ),
)

CHECKS = (
    Check("https-works", "bob reads his inbox over HTTPS", check_https),
    Check(
        "tls12-works",
        "a client that speaks TLS 1.2 (not 1.3) still connects",
        check_tls12,
        hint="TLS 1.2 is still allowed (ASVS 5 12.1.1): set minimum_version, not 1.3 only.",
    ),
    Check(
        "job-works",
        "the reports job, using your make_client, reads the real daily report",
        check_job,
        hint="make_client must trust the course CA (ca_file) and return an httpx.Client.",
    ),
    Check(
        "services-work",
        "billing and reports call their routes with their own certificates, no headers",
        check_services,
        hint="service_tls must load_verify_locations(files.ca); identify_service must return "
        "req.client_cert_cn.",
    ),
)
