"""Lesson 07's battery: each attack over real sockets, real TLS handshakes, real certificates.

The rows live beside it: ``http_rows`` (the API on both ports, the reports job, the checks),
``handshakes`` (each port's versions, suites and trust) and, here, the service identity
rows, which build requests as the app does. Where no handshake can show a rule today (a
TLS 1.0 floor OpenSSL happens to refuse, a client that also trusts every public CA), a row
reads the learner's object itself (``probes``).

Rows about the service port's handshake count a dropped connection as a rejection
(``transport_error_blocks``): with TLS 1.3 a server that refuses a client certificate
closes the connection after the handshake, and the client sees a read error. Any HTTP
answer at all, even a 401, means the handshake let the client in.
"""

from __future__ import annotations

from typing import Any

import httpx
from cryptography import x509

from labapp.engine.grading import Attack, Check, Observed
from labapp.engine.loopback import LAB_HOST
from labapp.lessons.l07_tls.app import TransportRequest
from labapp.lessons.l07_tls.handshakes import (
    attack_expired_client_cert,
    attack_no_client_cert,
    attack_old_tls,
    attack_rogue_client_cert,
    attack_weak_ciphers,
    service_get,
)
from labapp.lessons.l07_tls.http_rows import (
    attack_bad_certificate,
    attack_cross_service,
    attack_impostor,
    attack_no_hsts,
    attack_plain_http,
    attack_sniff,
    check_https,
    check_job,
    check_services,
    check_tls12,
    check_tls13,
)


class _EveryHeader(dict):  # type: ignore[type-arg]
    """Request headers in which every identity header there is names ``claim``."""

    def __init__(self, claim: str, headers: dict[str, str]) -> None:
        super().__init__(headers)
        self.update({name: value.format(claim) for name, value in _IDENTITY_HEADERS.items()})
        self.claim = claim

    def __missing__(self, key: str) -> str:
        return self.claim

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if isinstance(key, str) else default

    def __contains__(self, key: object) -> bool:
        return True


_IDENTITY_HEADERS = {  # the names proxies use (nginx, Envoy, Apache...), and some guesses
    "x-client-cert-cn": "{}",
    "x-ssl-client-cn": "{}",
    "x-ssl-client-s-dn": "CN={}",
    "x-forwarded-client-cert": 'Hash=00;Subject="CN={0}";URI=spiffe://lab/{0}',
    "ssl-client-subject-dn": "CN={}",
    "x-client-cert": "{}",
    "x-service-name": "{}",
    "x-forwarded-user": "{}",
}


def _probe_request(lab: Any, cert: str | None, path: str, claim: str | None) -> TransportRequest:
    """A service-port request as the app builds it, over a connection whose handshake
    verified ``cert`` (or none); with a ``claim``, every identity header names it."""
    chain, name = [], None
    if cert is not None:
        pem = lab.net.certs[cert].cert.read_text()
        subject = x509.load_pem_x509_certificate(pem.encode()).subject
        chain, name = [pem], subject.rfc4514_string()
    tls = {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": 0x0304,
        "cipher_suite": None,
        "cipher_name": "TLS_AES_256_GCM_SHA384",
    }
    host = f"{LAB_HOST}:{lab.net.service.port}"  # as a real client of service_url sends it
    headers: dict[str, str] = {"host": host, "user-agent": "python-httpx"}
    if claim is not None:
        headers = _EveryHeader(claim, headers)
    return TransportRequest("GET", path, "https", headers, None, tls, cert, _no)


# (certificate, route, the name a header claims): each route, with a certificate and without.
_SPOOFS = (
    ("reports", "/internal/payouts", "billing"),
    (None, "/internal/payouts", "billing"),
    ("billing", "/internal/usage", "reports"),
    (None, "/internal/usage", "reports"),
)


def attack_spoofed_identity(lab: Any, http: httpx.Client) -> Observed:
    """X-Client-Cert-CN naming the route's service, from another service's connection and
    from none; a request the header lets in that is refused without it is a breach.

    Then identify_service itself is asked about the same requests with every identity
    header a proxy might set, and without them: a header kept as a fallback would only
    wait for the day someone relaxes CERT_REQUIRED. (A name that does not depend on headers
    but is wrong anyway is cross-service's business.)
    """
    last = None
    for cert, path, claim in _SPOOFS[:3]:  # no certificate at /internal/usage: same door
        try:
            spoofed = service_get(lab, http, cert, path, {"X-Client-Cert-CN": claim})
            last = spoofed.status_code
            honest = service_get(lab, http, cert, path, {})
        except httpx.TransportError:
            continue  # refused at the handshake: blocked
        if spoofed.is_success and not honest.is_success:
            who = f"the {cert} certificate" if cert else "no certificate"
            return Observed(True, last, f"X-Client-Cert-CN: {claim} at {path}, sent with {who}")
    hook = lab.state.hooks["identify_service"]
    for cert, path, claim in _SPOOFS:
        plain, claimed = (
            lab.guard.call_blocking("identify_service", hook, _probe_request(lab, cert, path, c))
            for c in (None, claim)
        )
        who = f"the verified certificate CN={cert}" if cert else "no certificate"
        if cert is None and plain is not None:
            detail = f"identify_service answered {plain!r} at {path} for a request with no "
            return Observed(True, None, detail + "certificate: without a verified name, None")
        if claimed is not None and claimed != plain:
            detail = f"identify_service answered {claimed!r} at {path} for a request with "
            detail += f"{who} whose headers (X-Client-Cert-CN...) say {claim}; {plain!r} "
            return Observed(True, None, detail + "without them")
    return Observed(False, last)


def _no() -> None:
    """A revoke_token() that does nothing: the probe request has no token."""


ATTACKS = (
    Attack(
        "sniff-token",
        "bob's phone app syncs over http://; its token is read off the wire and replayed",
        (
            "Bob's app talks to the API's http:// address, through the café's Wi-Fi, and "
            "lab.net.wifi keeps every byte it carries. Let the app sync, then read what the "
            "Wi-Fi saw, as you read the taps in the explore section: what in bob's request "
            "says who he is?",
            "Sniffing, then replay: over plain HTTP a bearer token is readable text, and a "
            "bearer token works for whoever presents it, over any connection. CWE-319 "
            "(Cleartext Transmission of Sensitive Information); CAPEC-157 (Sniffing Attacks); "
            "RFC 6750 §5.3: clients MUST always use TLS with bearer tokens. The API's HTTPS "
            "port does not help once the client chose http://.",
            "1. lab.net.phone_app_sync() makes bob's app sync through the Wi-Fi.\n"
            "2. lab.net.wifi.text() is the capture: the token follows 'Authorization: Bearer '.\n"
            "3. Send it in the Authorization header to /inbox with lab.client (HTTPS).\n"
            "4. The JSON's 'flag' is yours.\n"
            "```python\n"
            "import re\n"
            "\n"
            "lab.net.phone_app_sync()\n"
            'found = re.search(r"Authorization: Bearer (\\S+)", lab.net.wifi.text())\n'
            'as_bob = {"Authorization": f"Bearer {found.group(1)}"}\n'
            'inbox = lab.client.get("/inbox", headers=as_bob).json()\n'
            'flag_sniff = inbox["flag"]\nlab.check_flag("sniff-token", flag_sniff)\n'
            "```",
        ),
        attack_sniff,
        expected="every token sent over http:// is dead over HTTPS (401)",
        fix="on_plain_http lets a token seen in clear live: whenever req.token is set, on every "
        "path and method, call req.revoke_token() (it crossed the network in clear), then "
        "return False.",
    ),
    Attack(
        "plain-http-served",
        "a request over http:// is served (or redirected), on any path, with a token or without",
        ("Any answer but a refusal teaches the client that http:// works.",),
        attack_plain_http,
        expected="403 for every request over http://",
        fix="on_plain_http must return False (the bool, not None or 'False') for every "
        "request: refuse with 403, never serve or redirect an API call (OWASP TLS Cheat Sheet, "
        "'Use TLS For All Pages').",
        flag=False,
    ),
    Attack(
        "old-tls",
        "a TLS 1.0/1.1 client gets in, or a port's context allows those versions",
        (
            "ssl.TLSVersion.TLSv1_2 is the floor (RFC 8996 §4, §5; RFC 9325 §3.1.1; ASVS 5.0 "
            "12.1.1).",
        ),
        attack_old_tls,
        expected="a refused handshake; minimum_version TLS 1.2 on both ports",
        fix="server_tls or service_tls allows too old a version: context.minimum_version = "
        "ssl.TLSVersion.TLSv1_2 (never TLSv1, TLSv1_1 or MINIMUM_SUPPORTED), and no SECLEVEL=0.",
        flag=False,
    ),
    Attack(
        "weak-ciphers",
        "a TLS 1.2 client offering only NULL and SHA-1 suites connects, or a list has them",
        (
            "RFC 9325 §4.1 (NULL encryption: MUST NOT) and §4.2 (the recommended TLS 1.2 "
            "suites are AEAD); OWASP TLS Cheat Sheet, 'Only Support Strong Ciphers'.",
        ),
        attack_weak_ciphers,
        expected="a refused handshake; no NULL, anonymous or SHA-1 suite in either list",
        fix="server_tls or service_tls allows weak suites: keep Python's default cipher list "
        "(no NULL, no anonymous, no SHA-1 suites): no set_ciphers() call (or AEAD suites only), "
        "never '...@SECLEVEL=0'.",
        flag=False,
    ),
    Attack(
        "no-hsts",
        "an HTTPS response (errors too) lacks HSTS of a year or more with includeSubDomains",
        (
            "RFC 6797 §6.1; OWASP HSTS Cheat Sheet; ASVS 5.0 3.4.1 (a year at level 1, "
            "includeSubDomains from level 2).",
        ),
        attack_no_hsts,
        expected="HSTS a browser accepts, a year or more with includeSubDomains, on every answer",
        fix="security_headers left a response without a usable HSTS header: for every request, "
        "whatever its path, method or token, return {'Strict-Transport-Security': "
        "'max-age=31536000; includeSubDomains'} (directives separated by ';', each once).",
        flag=False,
    ),
    Attack(
        "impostor-server",
        "the reports job sends its token to an impostor whose certificate is from another CA",
        (
            "The job sends its token with every request, to whoever completes its TLS "
            "handshake. You are on its path: reports_job(via=...) decides where its "
            "connection really goes, and an impostor keeps what clients send it. Read "
            "help(lab.net.reports_job) and help(lab.net.impostor).",
            "Adversary in the middle against a TLS client that does not verify certificates: "
            "CAPEC-94 (Adversary in the Middle); CWE-295 (Improper Certificate Validation); "
            "RFC 6750 §5.3: the client MUST validate the TLS certificate chain. Encryption "
            "without authentication protects you from everyone but the party you talk to.",
            "1. imp = lab.net.impostor('other-ca') starts a server with another CA's certificate.\n"
            "2. lab.net.reports_job(via=imp.url) sends the job to it.\n"
            "3. imp.captured[-1] is the whole header value it received, 'Bearer ...'.\n"
            "4. GET /reports/daily with lab.client, that value as Authorization; the JSON has "
            "the flag.\n"
            "```python\n"
            'imp = lab.net.impostor("other-ca")\n'
            "lab.net.reports_job(via=imp.url)\n"
            'stolen = {"Authorization": imp.captured[-1]}\n'
            'daily = lab.client.get("/reports/daily", headers=stolen).json()\n'
            'flag_impostor = daily["flag"]\nlab.check_flag("impostor-server", flag_impostor)\n'
            "```",
        ),
        attack_impostor,
        expected="the job refuses the impostor; its client trusts the course CA alone",
        fix="make_client trusts too much: verify against the course CA only, not the system's or "
        "certifi's CAs as well (no load_default_certs, no create_default_context() without "
        "cafile): httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file))).",
    ),
    Attack(
        "bad-certificate",
        "the reports job accepts a course-CA certificate for the wrong name, or an expired one",
        (
            "Two impostors, 'wrong-name' and 'expired', hold certificates the course CA itself "
            "signed. Compare show_certificate(...) of each with lab.url's: which check of a "
            "careful client would each one fail, and does this job make it?",
            "A chain to a trusted CA is one check of three; the others are the name and the "
            "dates. CWE-297 (Improper Validation of Certificate with Host Mismatch) and CWE-298 "
            "(Improper Validation of Certificate Expiration); RFC 9110 §4.3.4: a client MUST "
            "verify that the service's identity matches the URI's origin server.",
            "1. imp = lab.net.impostor('wrong-name') (or 'expired').\n"
            "2. lab.net.reports_job(via=imp.url): the job talks to it all the same.\n"
            "3. Replay imp.captured[-1] as the Authorization header on /reports/daily with "
            "lab.client; the JSON has the flag.\n"
            "```python\n"
            'imp = lab.net.impostor("wrong-name")\n'
            "lab.net.reports_job(via=imp.url)\n"
            'stolen = {"Authorization": imp.captured[-1]}\n'
            'daily = lab.client.get("/reports/daily", headers=stolen).json()\n'
            'flag_badcert = daily["flag"]\nlab.check_flag("bad-certificate", flag_badcert)\n'
            "```",
        ),
        attack_bad_certificate,
        expected="the job refuses both impostors at the handshake (a wrong name, an expired "
        "certificate)",
        fix="make_client skips a check: keep check_hostname=True and CERT_REQUIRED (the "
        "defaults of ssl.create_default_context), and the date check; never verify=False.",
    ),
    Attack(
        "spoofed-identity",
        "a header that names the billing service makes any caller the billing service",
        (
            "Read how the planned gateway tells the service who is calling: "
            "print(lab.net.gateway_conf). Then ask who else can reach the service port, and "
            "what a client may put in its own request.",
            "Identity spoofing through a header meant for a trusted proxy: the service "
            "believes text any client writes. CWE-290 (Authentication Bypass by Spoofing), "
            "CWE-348 (Use of Less Trusted Source); OWASP ASVS 5.0 12.1.3: validate mTLS client "
            "certificates before using their identity.",
            "1. lab.net.service_client('reports') is a client of the service port with the "
            "reports certificate.\n"
            "2. GET /internal/payouts (billing only) with the header the gateway would set, "
            "naming billing: X-Client-Cert-CN: billing.\n"
            "3. The JSON has the flag.\n"
            "```python\n"
            'as_billing = {"X-Client-Cert-CN": "billing"}\n'
            'with lab.net.service_client("reports") as reports:\n'
            '    payouts = reports.get("/internal/payouts", headers=as_billing).json()\n'
            'flag_spoof = payouts["flag"]\nlab.check_flag("spoofed-identity", flag_spoof)\n'
            "```",
        ),
        attack_spoofed_identity,
        expected="a 4xx or a refused handshake; identify_service ignores every header",
        fix="identify_service believed a header: return req.client_cert_cn (from the verified "
        "handshake), None without one; never take a name from any header, not even as a "
        "fallback.",
    ),
    Attack(
        "no-client-cert",
        "the service port accepts a client with no certificate",
        ("mTLS: the server must require a certificate.",),
        attack_no_client_cert,
        expected="a refused handshake (no HTTP answer at all: a 401 from the app comes after "
        "the handshake let the client in)",
        fix="service_tls let a client without a certificate through the handshake; the TLS "
        "layer must refuse it, not the app: context.verify_mode = ssl.CERT_REQUIRED "
        "(CERT_OPTIONAL lets a client without one in).",
        flag=False,
        transport_error_blocks=True,
    ),
    Attack(
        "rogue-client-cert",
        "the service port accepts a client certificate from another CA, or trusts other CAs",
        ("Trust only the course CA for client certificates.",),
        attack_rogue_client_cert,
        expected="a refused handshake (no HTTP answer at all, not even a 401); the service port "
        "trusts the course CA alone",
        fix="service_tls trusts too much; the TLS layer must refuse the certificate, not the "
        "app: CERT_REQUIRED and "
        "context.load_verify_locations(files.ca), and no other CA (no load_default_certs(), "
        "no capath).",
        flag=False,
        transport_error_blocks=True,
    ),
    Attack(
        "expired-client-cert",
        "the service port accepts an expired client certificate",
        ("The handshake checks expiry when it verifies the certificate at all.",),
        attack_expired_client_cert,
        expected="a refused handshake (no HTTP answer at all: a 401 from the app comes after "
        "the handshake let the client in)",
        fix="service_tls let an expired certificate through the handshake; the TLS layer must "
        "refuse it, not the app: CERT_REQUIRED "
        "with load_verify_locations(files.ca) checks the dates too (no "
        "VERIFY_X509_... flag that skips them).",
        flag=False,
        transport_error_blocks=True,
    ),
    Attack(
        "cross-service",
        "a valid certificate for one service calls the other service's route",
        ("Identity is the certificate's name, and each route names one service.",),
        attack_cross_service,
        fix="identify_service grants too much: return the verified CN as is; do not map "
        "every valid certificate to the same service.",
        flag=False,
    ),
)

CHECKS = (
    Check("https-works", "bob reads his inbox over HTTPS", check_https),
    Check(
        "tls12-works",
        "a client that speaks TLS 1.2 (not 1.3) still connects",
        check_tls12,
        hint="server_tls denies too much: TLS 1.2 stays allowed (RFC 9325 §3.1.1: MUST "
        "support it; ASVS 5.0 12.1.1): set minimum_version = TLSv1_2, not TLSv1_3.",
    ),
    Check(
        "tls13-works",
        "a client that speaks only TLS 1.3 still connects",
        check_tls13,
        hint="server_tls denies too much: TLS 1.3 must stay on (RFC 9325 §3.1.1: SHOULD "
        "support it; ASVS 5.0 12.1.1: the latest version preferred): set minimum_version only, "
        "no maximum_version.",
    ),
    Check(
        "job-works",
        "the reports job, using your make_client, reads the real daily report",
        check_job,
        hint="make_client denies too much: its client must trust the course CA "
        "(ssl.create_default_context(cafile=str(ca_file))), and it must return a new "
        "httpx.Client each time.",
    ),
    Check(
        "services-work",
        "billing and reports call their routes with their own certificates, no headers",
        check_services,
        hint="denies too much: service_tls must load_verify_locations(files.ca) for the "
        "services' own certificates; identify_service must return req.client_cert_cn as is.",
    ),
)
