"""The battery's rows that speak HTTP: the API on both ports, the reports job, the checks.

The plain-HTTP and HSTS rows send requests no route answers (a 404, a 405, a redirect to add
a slash) as well as the routes': a defense must hold for every request, not for a list.
"""

from __future__ import annotations

import re
import secrets
import ssl
from typing import Any

import httpx

from labapp.engine.grading import Observed, grader_client
from labapp.engine.tls import client_context
from labapp.lessons.common import auth, user_token
from labapp.lessons.l07_tls.handshakes import service_get, trusts_more
from labapp.lessons.l07_tls.hsts import parse_hsts
from labapp.lessons.l07_tls.network import API_HOST, WRONG_HOST, new_session
from labapp.lessons.l07_tls.probes import client_contexts, extra_trust

YEAR = 31_536_000  # seconds: the HSTS max-age OWASP and ASVS 5 (3.4.1) ask for


def _elsewhere() -> str:
    """A path no route has, fresh each run: a defense cannot list the grader's paths."""
    return f"/{secrets.token_hex(4)}"


def attack_sniff(lab: Any, http: httpx.Client) -> Observed:
    """The phone app syncs over http:// through a tap; the token on the wire is replayed.

    Then tokens sent in clear elsewhere (another path, another method, a page that does not
    exist) are replayed too: each one crossed the network in clear just the same.
    """
    wire = lab.net.tap(lab.net.plain.port)  # a fresh tap: the learner's capture stays theirs
    try:
        lab.net.phone_app_sync(via=wire.url())
        found = re.search(rb"Bearer ([\w.~+/-]+)", wire.captured())
    finally:
        lab.net.untap(wire)
    if found is None:
        return Observed(False, None, "no bearer token crossed the wire")
    response = http.get("/inbox", headers=auth(found.group(1).decode()))
    if response.is_success:
        detail = "the phone app's token, read off the wire of the plain-HTTP port and replayed "
        detail += "over HTTPS, still works: on_plain_http let a token seen in clear live"
        return Observed(True, response.status_code, detail)
    # The scheme's case varies too: "bearer" is as good as "Bearer" to the API (RFC 9110
    # §11.1), so a defense that parses the header itself must not miss it.
    for method, path, scheme in (
        ("GET", "/health", "Bearer"),
        ("POST", "/inbox", "bearer"),
        ("GET", _elsewhere(), "BEARER"),
    ):
        token = new_session(lab.store, "alice")
        sent = {"Authorization": f"{scheme} {token}"}
        # What the plain port answers is plain-http-served's to judge (a 500 there too);
        # this row asks only whether the token still works afterwards.
        with grader_client(lab.net.http_url) as clear:
            clear.request(method, path, headers=sent)
        replay = http.get("/inbox", headers=auth(token))
        if replay.is_success:
            detail = f"a token sent in clear ('{scheme} <token>', {method} {path}) still "
            detail += "works over HTTPS: on_plain_http did not revoke it"
            return Observed(True, replay.status_code, detail)
    return Observed(False, response.status_code, "every token sent in clear was revoked")


def attack_plain_http(lab: Any, http: httpx.Client) -> Observed:
    """Plain HTTP must be refused (403), not served and not redirected, whatever the request.

    OWASP's TLS Cheat Sheet: API-only endpoints should disable HTTP altogether. Any answer
    but the lab's refusal (even a 404) means the request was served in clear.
    """
    token = auth(new_session(lab.store, "alice"))
    probes = (
        ("GET", "/inbox", token),
        ("GET", "/health", {}),
        ("GET", "/inbox/", token),  # a route's redirect to add the slash
        ("POST", "/inbox", token),
        ("OPTIONS", "/inbox", {}),  # a CORS preflight is a request in clear too
        ("HEAD", "/health", {}),
        ("GET", _elsewhere(), {}),
    )
    for method, path, headers in probes:
        response = http.request(method, f"{lab.net.http_url}{path}", headers=headers)
        status = response.status_code
        detail = f"{method} {path} over http://" + (" with a bearer token" if headers else "")
        if 300 <= status < 400:
            detail += f" was redirected to {response.headers.get('location')!r}: the request "
            detail += "already crossed in clear, and a client that follows sends it again"
        elif status < 500:
            detail += " was answered by the app in clear, not refused (403)"
        if status != 403:
            return Observed(status < 500, status, detail)
    return Observed(False, status, "refused, with a token and without, on every path")


def attack_no_hsts(lab: Any, http: httpx.Client) -> Observed:
    """Every HTTPS response, errors included, must carry HSTS a browser can parse: a year or
    more, and includeSubDomains (RFC 6797 §6.1; OWASP HSTS Cheat Sheet; ASVS 5 3.4.1)."""
    bob = auth(user_token(lab.state, "bob"))
    probes = (
        ("GET", "/health", {}),
        ("GET", "/inbox", bob),
        ("GET", "/reports/daily", {}),  # 401
        ("GET", "/reports/daily", bob),  # 403
        ("POST", "/inbox", bob),  # 405
        ("GET", _elsewhere(), {}),  # 404
    )
    for method, path, headers in probes:
        response = http.request(method, path, headers=headers)
        value = response.headers.get("strict-transport-security")
        where = f"{method} {path} (HTTP {response.status_code}): "
        status = response.status_code if response.status_code >= 500 else None  # in `where`
        if value is None:
            return Observed(True, status, where + "no HSTS header")
        policy = parse_hsts(value)
        problem = policy.problem and f"a browser ignores it: {policy.problem}"
        if not problem and policy.max_age < YEAR:
            problem = f"max-age {policy.max_age} s is under one year ({YEAR} s)"
        if not problem and not policy.include_subdomains:
            problem = "no includeSubDomains: subdomains stay open to http:// (RFC 6797 §14.4)"
        if problem:
            detail = f"{where}Strict-Transport-Security: {value!r}: {problem}"
            return Observed(True, status, detail)
    return Observed(False, None, f"HSTS on every response: {value!r}")


# What each impostor's certificate gets wrong, and the client check that should refuse it.
_SKIPPED = {
    "other-ca": "its certificate comes from another CA: your client did not verify the chain "
    "against the course CA",
    "wrong-name": f"its certificate (from the course CA) names {WRONG_HOST}, not {API_HOST}: "
    "your client skipped the name check (check_hostname)",
    "expired": "its certificate (from the course CA, for the right name) has expired: your "
    "client skipped the date check",
}


def _job_against(lab: Any, kinds: tuple[str, ...]) -> Observed:
    refusals = []
    for kind in kinds:
        impostor = lab.net.impostor(kind)
        before = len(impostor.captured)
        outcome = lab.net.reports_job(via=impostor.url)
        if len(impostor.captured) > before:
            detail = f"the reports job, with make_client's client, sent its token to the {kind} "
            return Observed(True, outcome.get("status"), f"{detail}impostor; {_SKIPPED[kind]}")
        refusals.append(f"{kind}: {str(outcome.get('error', outcome))[:80]}")
    return Observed(False, None, "the job refused " + "; ".join(refusals))


def attack_impostor(lab: Any, http: httpx.Client) -> Observed:
    """The other-CA impostor, then the client's trust store: the course CA and nothing else.

    The lab cannot get a certificate from a public CA, so a client that also trusts those
    refuses every impostor here; the row reads the context inside the client instead.
    """
    seen = _job_against(lab, ("other-ca",))
    if seen.succeeded:
        return seen
    client = lab.guard.call_blocking("make_client", lab.state.hooks["make_client"], lab.ca_file)
    if not isinstance(client, httpx.Client):
        return seen  # job-works names the problem
    with client:
        contexts = client_contexts(client)
        if contexts is None:
            raise LookupError(
                "the grader found no SSL context in your client's transport (it reads "
                "client._transport._pool._ssl_context): pass verify=context to httpx.Client"
            )
        for context in contexts:
            others = extra_trust(context, lab.ca_file, server_side=False)
            if others:
                return Observed(True, None, trusts_more("your make_client's client", others))
    return seen


def attack_bad_certificate(lab: Any, http: httpx.Client) -> Observed:
    return _job_against(lab, ("wrong-name", "expired"))


def attack_cross_service(lab: Any, http: httpx.Client) -> Observed:
    """A valid certificate for one service at the other service's route."""
    for cert, path in (("reports", "/internal/payouts"), ("billing", "/internal/usage")):
        response = service_get(lab, http, cert, path, {})
        if response.is_success:
            return Observed(True, response.status_code, f"the {cert} certificate at {path}")
    return Observed(False, response.status_code)


def check_https(lab: Any, http: httpx.Client) -> Observed:
    response = http.get("/inbox", headers=auth(user_token(lab.state, "bob")))
    return Observed(response.is_success, response.status_code, "GET /inbox as bob over HTTPS")


def _only(lab: Any, http: httpx.Client, version: ssl.TLSVersion) -> Observed:
    context = client_context(lab.ca_file)
    context.minimum_version = context.maximum_version = version
    try:
        with grader_client(lab.url, statuses=http.statuses, verify=context) as client:
            response = client.get("/health")
    except httpx.TransportError as exc:
        detail = f"the HTTPS port (server_tls) refused the handshake of a {version.name}-only "
        return Observed(False, None, f"{detail}client ({type(exc).__name__})")
    return Observed(response.is_success, response.status_code, f"a {version.name}-only client")


def check_tls12(lab: Any, http: httpx.Client) -> Observed:
    return _only(lab, http, ssl.TLSVersion.TLSv1_2)


def check_tls13(lab: Any, http: httpx.Client) -> Observed:
    return _only(lab, http, ssl.TLSVersion.TLSv1_3)


def check_job(lab: Any, http: httpx.Client) -> Observed:
    outcome = lab.net.reports_job()
    status = outcome.get("status")
    if status is None:
        detail = "the reports job, with make_client's client, refused the real API"
        return Observed(False, None, f"{detail}: {outcome['error']}")
    http.statuses.append(status)
    return Observed(200 <= status < 300, status, "the reports job, with your client, at lab.url")


def check_services(lab: Any, http: httpx.Client) -> Observed:
    """Each service, with its own certificate, at its own route; a failure names the hook."""
    for cert, path in (("billing", "/internal/payouts"), ("reports", "/internal/usage")):
        try:
            response = service_get(lab, http, cert, path, {})
        except httpx.TransportError as exc:
            detail = f"the service port (service_tls) refused the handshake of the {cert} "
            detail += f"service's own course-CA certificate ({type(exc).__name__})"
            return Observed(False, None, detail)
        if not response.is_success:
            detail = f"the {cert} service at {path}, its certificate accepted"
            if response.status_code in (401, 403):
                detail += f", was refused: identify_service did not answer {cert!r}"
            return Observed(False, response.status_code, detail)
    return Observed(True, response.status_code, "billing and reports, each with its certificate")
