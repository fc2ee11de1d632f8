"""Lesson 07: each attack works for real on the weak lab; the solution stops all; every rule
the defend cells state fails its own row when broken; wrong TLS settings, clients, headers and
identity rules are caught on the row that names them; hostile input never gets a 5xx."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
from cryptography import x509

from labapp import BadHook, DefenseBreached, Lab, LabStopped, start_lab
from labapp.engine.grading import run_item
from labapp.engine.tls import legacy_context
from labapp.lessons.common import auth
from labapp.lessons.l07_tls import LESSON
from labapp.lessons.l07_tls.network import API_HOST, GATEWAY_CONF, new_session
from tests.conftest import refused, solution_namespace

FLAG = re.compile(r"FLAG\{07-tls:[\w-]+:[0-9a-f]{32}\}")
HOOKS = (
    "on_plain_http",
    "security_headers",
    "server_tls",
    "service_tls",
    "identify_service",
    "make_client",
)
YEAR_HSTS = "max-age=31536000; includeSubDomains"
NO_CHECK_TIME = 0x200000  # OpenSSL's X509_V_FLAG_NO_CHECK_TIME: "ignore the dates"


def solution(lab: Lab) -> dict[str, Any]:
    """The six hooks, from the cells of the solution notebook that define them.

    Those cells also try the hooks on ``lab`` and defend it, as the notebook does.
    """
    found: dict[str, Any] = {}
    for name in HOOKS:
        if name not in found:
            namespace = solution_namespace("07-tls-and-mtls.ipynb", name, lab=lab)
            found.update({hook: namespace[hook] for hook in HOOKS if hook in namespace})
    return found


def _row(lab: Lab, row_id: str) -> Any:
    item = next(i for i in [*LESSON.attacks, *LESSON.checks] if i.id == row_id)
    return run_item(lab, item)


def _failing(lab: Lab) -> set[str]:
    with pytest.raises(DefenseBreached) as breach:
        lab.grade()
    return {row.id for row in breach.value.report.failures}


@pytest.fixture(scope="module")
def defended() -> Iterator[tuple[Lab, dict[str, Any]]]:
    """One lab for the tables below, defended with the solution; each case swaps hooks in."""
    with start_lab("07-tls") as lab:
        yield lab, solution(lab)


def _with(defended: tuple[Lab, dict[str, Any]], **wrong: Any) -> Lab:
    """The solution with ``wrong`` in place of some hooks (only changed hooks are re-applied:
    each TLS setting restarts a port)."""
    lab, hooks = defended
    wanted = {**hooks, **wrong}
    changed = {name: fn for name, fn in wanted.items() if lab.state.hooks[name] is not fn}
    if changed:
        lab.defend(**changed)
    return lab


def _quietly(set_it: Callable[[], None]) -> None:
    """Python deprecates TLS 1.0/1.1 and warns when a context allows them; tests error on
    warnings, and a learner's hook would not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        set_it()


# -- the solution's pieces, one rule broken at a time ----------------------------------------


def server(files: Any) -> ssl.SSLContext:
    """The solution's server_tls, written out: TLS 1.2 floor, Python's suites, the cert."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    return context


def service(files: Any) -> ssl.SSLContext:
    """The solution's service_tls, written out: server() plus required course-CA certs."""
    context = server(files)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(files.ca)
    return context


def course_only(ca_file: Any) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def tweak(base: Callable[[Any], ssl.SSLContext], change: Callable[[ssl.SSLContext, Any], Any]):
    """``base``'s context with ``change(context, argument)`` applied: one rule broken."""

    def hook(argument: Any) -> ssl.SSLContext:
        context = base(argument)
        _quietly(lambda: change(context, argument))
        return context

    hook.__name__ = f"{base.__name__}_tweaked"
    return hook


def client_of(make_context: Callable[[Any], ssl.SSLContext]) -> Callable[[Any], httpx.Client]:
    def make_client(ca_file: Any) -> httpx.Client:
        return httpx.Client(verify=make_context(ca_file))

    return make_client


def hsts(value: str) -> Callable[[Any], dict[str, str]]:
    def security_headers(req: Any) -> dict[str, str]:
        return {"Strict-Transport-Security": value}

    return security_headers


def hsts_when(condition: Callable[[Any], bool]) -> Callable[[Any], dict[str, str]]:
    def security_headers(req: Any) -> dict[str, str]:
        return {"Strict-Transport-Security": YEAR_HSTS} if condition(req) else {}

    return security_headers


def plain(decide: Callable[[Any], Any], *, revoking: Callable[[Any], bool] = lambda req: True):
    """An on_plain_http that revokes when ``revoking(req)`` and returns ``decide(req)``."""

    def on_plain_http(req: Any) -> Any:
        if req.token and revoking(req):
            req.revoke_token()
        return decide(req)

    return on_plain_http


def set_min(version: ssl.TLSVersion) -> Callable[[ssl.SSLContext, Any], None]:
    def change(context: ssl.SSLContext, files: Any) -> None:
        context.minimum_version = version

    return change


def set_max(version: ssl.TLSVersion) -> Callable[[ssl.SSLContext, Any], None]:
    def change(context: ssl.SSLContext, files: Any) -> None:
        context.maximum_version = version

    return change


def ciphers(spec: str) -> Callable[[ssl.SSLContext, Any], None]:
    return lambda context, files: context.set_ciphers(spec)


def ignore_dates(context: ssl.SSLContext, argument: Any) -> None:
    context.verify_flags |= NO_CHECK_TIME


def system_store(context: ssl.SSLContext, argument: Any) -> None:
    context.load_default_certs()


def system_directory(context: ssl.SSLContext, argument: Any) -> None:
    """The system store read from its directory, one certificate at a time, when needed."""
    context.load_verify_locations(capath=ssl.get_default_verify_paths().capath)


def header_fallback(name: str, parse: Callable[[str], str] = lambda v: v):
    def identify_service(req: Any) -> str | None:
        value = req.headers.get(name)
        return req.client_cert_cn or (parse(value) if value else None)

    return identify_service


def _xfcc_subject(value: str) -> str:
    found = re.search(r'Subject="CN=([^",]+)', value)
    return found.group(1) if found else value


def payouts_for_any_certificate(req: Any) -> str | None:
    """'Any valid certificate may read payouts': the CN, except billing's route."""
    if req.client_cert_cn and req.path == "/internal/payouts":
        return "billing"
    return req.client_cert_cn


def _forgets_to_return(req: Any) -> None:
    if req.token:
        req.revoke_token()  # ...and falls off the end: None


# -- 1. the text and the grader agree: every rule the defend cells state, and its row -------


@dataclass(frozen=True)
class Rule:
    text: str  # the rule as the notebook states it (table, prose, comments, hints)
    row: str  # the grader row (attack or check id) that enforces it
    wrong: dict[str, Any]  # the solution's hooks with exactly this one rule broken


RULES = [
    Rule(
        "on_plain_http: revoke the token if one was sent",
        "sniff-token",
        {"on_plain_http": lambda req: False},
    ),
    Rule(
        "... whatever its path or method",
        "sniff-token",
        {"on_plain_http": plain(lambda req: False, revoking=lambda req: req.path == "/inbox")},
    ),
    Rule(
        "on_plain_http: return False on every request: refuse (403), never serve or redirect",
        "plain-http-served",
        {"on_plain_http": plain(lambda req: True)},
    ),
    Rule(
        "... the bool False: anything else is a 500 that names your hook",
        "plain-http-served",
        {"on_plain_http": _forgets_to_return},
    ),
    Rule(
        "... /health too (no exception for a load balancer)",
        "plain-http-served",
        {"on_plain_http": plain(lambda req: req.path == "/health")},
    ),
    Rule(
        "security_headers: max-age of a year (31536000) or more",
        "no-hsts",
        {"security_headers": hsts("max-age=86400; includeSubDomains")},
    ),
    Rule(
        "security_headers: includeSubDomains",
        "no-hsts",
        {"security_headers": hsts("max-age=31536000")},
    ),
    Rule(
        "security_headers: on every HTTPS response, errors too",
        "no-hsts",
        {"security_headers": hsts_when(lambda req: req.path in ("/health", "/inbox"))},
    ),
    Rule(
        "security_headers: the value as written (directives separated by ';')",
        "no-hsts",
        {"security_headers": hsts("max-age=31536000, includeSubDomains")},
    ),
    Rule(
        "server_tls: TLS 1.2 or newer (minimum_version TLSv1_2)",
        "old-tls",
        {"server_tls": tweak(server, set_min(ssl.TLSVersion.TLSv1))},
    ),
    Rule(
        "server_tls: keep 1.2: a TLS 1.2 client still connects",
        "tls12-works",
        {"server_tls": tweak(server, set_min(ssl.TLSVersion.TLSv1_3))},
    ),
    Rule(
        "server_tls: TLS 1.2 and 1.3 (set minimum_version only)",
        "tls13-works",
        {"server_tls": tweak(server, set_max(ssl.TLSVersion.TLSv1_2))},
    ),
    Rule(
        "server_tls: keep Python's own cipher list",
        "weak-ciphers",
        {"server_tls": tweak(server, ciphers("DEFAULT:@SECLEVEL=0"))},
    ),
    Rule(
        "service_tls: as server_tls: TLS 1.2 or newer",
        "old-tls",
        {"service_tls": tweak(service, set_min(ssl.TLSVersion.TLSv1_1))},
    ),
    Rule(
        "service_tls: as server_tls: Python's own cipher list",
        "weak-ciphers",
        {"service_tls": tweak(service, ciphers("HIGH:!aNULL"))},
    ),
    Rule(
        "service_tls: require a client certificate (CERT_REQUIRED)",
        "no-client-cert",
        {"service_tls": tweak(service, lambda c, f: setattr(c, "verify_mode", ssl.CERT_OPTIONAL))},
    ),
    Rule(
        "service_tls: from the course CA, and only that one",
        "rogue-client-cert",
        {"service_tls": tweak(service, system_store)},
    ),
    Rule(
        "service_tls: a valid certificate (dates checked)",
        "expired-client-cert",
        {"service_tls": tweak(service, ignore_dates)},
    ),
    Rule(
        "identify_service: the verified certificate's name; never a header",
        "spoofed-identity",
        {"identify_service": header_fallback("x-client-cert-cn")},
    ),
    Rule(
        "identify_service: the certificate's name (req.client_cert_cn), not its whole subject",
        "services-work",
        {"identify_service": lambda req: req.tls and req.tls["client_cert_name"]},
    ),
    Rule(
        "identify_service: that certificate's own name, for its own routes",
        "cross-service",
        {"identify_service": payouts_for_any_certificate},
    ),
    Rule(
        "make_client: trusts ca_file",
        "job-works",
        {"make_client": client_of(lambda ca: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))},
    ),
    Rule(
        "make_client: ... and nothing else (not the public CAs)",
        "impostor-server",
        {"make_client": client_of(tweak(course_only, system_store))},
    ),
    Rule(
        "make_client: names checked",
        "bad-certificate",
        {
            "make_client": client_of(
                tweak(course_only, lambda c, a: setattr(c, "check_hostname", False))
            )
        },
    ),
    Rule(
        "make_client: dates checked",
        "bad-certificate",
        {"make_client": client_of(tweak(course_only, ignore_dates))},
    ),
]


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.row}:{r.text[:40]}" for r in RULES])
def test_each_rule_of_the_text_fails_its_own_row_when_broken(
    defended: tuple[Lab, dict[str, Any]], rule: Rule
) -> None:
    lab = _with(defended, **rule.wrong)
    with pytest.raises(DefenseBreached) as breach:
        lab.grade()
    assert {row.id for row in breach.value.report.failures} == {rule.row}
    assert f"] {rule.row} (" in str(breach.value)


def test_every_row_enforces_a_rule_of_the_text() -> None:
    """No row without a sentence behind it (https-works is the lesson's whole point)."""
    rows = {item.id for item in [*LESSON.attacks, *LESSON.checks]}
    assert rows - {rule.row for rule in RULES} == {"https-works"}


# -- 2. wrong defenses by class: each fails the row named (and only those) ----------------------


def _transport_with_system_cas(ca_file: Any) -> httpx.Client:
    """The context handed to a transport rather than to the client: same trust, same row."""
    context = ssl.create_default_context()
    context.load_verify_locations(ca_file)
    return httpx.Client(transport=httpx.HTTPTransport(verify=context))


def _header_first(req: Any) -> str | None:
    return req.headers.get("x-client-cert-cn") or req.client_cert_cn


def _header_only_beside_a_certificate(req: Any) -> str | None:
    """'A verified caller may say whom it calls for': the header, once a certificate came."""
    return req.headers.get("x-client-cert-cn", req.client_cert_cn) if req.client_cert_cn else None


def _header_at_usage_only(req: Any) -> str | None:
    if req.path == "/internal/usage":  # "reports is read-only: the proxy's word will do"
        return req.headers.get("x-client-cert-cn") or req.client_cert_cn
    return req.client_cert_cn


def _parses_bearer_itself(req: Any) -> bool:
    if req.headers.get("authorization", "").startswith("Bearer "):
        req.revoke_token()
    return False


def _reports_by_default(req: Any) -> str | None:
    return req.client_cert_cn or "reports"


def _any_certificate_is_billing(req: Any) -> str | None:
    return "billing" if req.client_cert_cn else None


def _legacy_server(files: Any) -> ssl.SSLContext:
    context = legacy_context(server=True)  # what the weak lab ships, "for old clients"
    context.load_cert_chain(files.cert, files.key)
    return context


def _legacy_service(files: Any) -> ssl.SSLContext:
    context = _legacy_server(files)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(files.ca)
    return context


def _splits_the_response(req: Any) -> dict[str, str]:
    return {"Strict-Transport-Security": "max-age=31536000\r\nSet-Cookie: x=1"}


_SHARED = httpx.Client()  # one client for every run: closed after the first job


WRONG = {
    # A trust store holding more than the course CA, on the client...
    "client: system CAs plus the course CA": (
        {"make_client": client_of(tweak(course_only, system_store))},
        {"impostor-server"},
    ),
    "client: create_default_context() then load_verify_locations(ca)": (
        {
            "make_client": client_of(
                tweak(
                    lambda ca: ssl.create_default_context(),
                    lambda c, ca: c.load_verify_locations(ca),
                )
            )
        },
        {"impostor-server"},
    ),
    "client: certifi's bundle plus the course CA": (
        {
            "make_client": client_of(
                tweak(
                    lambda ca: ssl.create_default_context(cafile=certifi.where()),
                    lambda c, ca: c.load_verify_locations(ca),
                )
            )
        },
        {"impostor-server"},
    ),
    "client: the system CA directory (loaded lazily) plus the course CA": (
        {"make_client": client_of(tweak(course_only, system_directory))},
        {"impostor-server"},
    ),
    "client: set_default_verify_paths() as well": (
        {"make_client": client_of(tweak(course_only, lambda c, a: c.set_default_verify_paths()))},
        {"impostor-server"},
    ),
    "client: system CAs, through a transport": (
        {"make_client": _transport_with_system_cas},
        {"impostor-server"},
    ),
    "client: the system CAs instead of the course CA": (
        {"make_client": client_of(lambda ca: ssl.create_default_context())},
        {"impostor-server", "job-works"},
    ),
    # ... and on the service port.
    "service: load_default_certs() as well": (
        {"service_tls": tweak(service, system_store)},
        {"rogue-client-cert"},
    ),
    "service: the system CA directory as well": (
        {"service_tls": tweak(service, system_directory)},
        {"rogue-client-cert"},
    ),
    "service: set_default_verify_paths() as well": (
        {"service_tls": tweak(service, lambda c, f: c.set_default_verify_paths())},
        {"rogue-client-cert"},
    ),
    # An explicit TLS minimum below 1.2 (OpenSSL's security level refuses the handshake here).
    "server: minimum TLSv1": (
        {"server_tls": tweak(server, set_min(ssl.TLSVersion.TLSv1))},
        {"old-tls"},
    ),
    "server: minimum TLSv1_1": (
        {"server_tls": tweak(server, set_min(ssl.TLSVersion.TLSv1_1))},
        {"old-tls"},
    ),
    "server: minimum SSLv3": (
        {"server_tls": tweak(server, set_min(ssl.TLSVersion.SSLv3))},
        {"old-tls"},
    ),
    "server: MINIMUM_SUPPORTED": (
        {"server_tls": tweak(server, set_min(ssl.TLSVersion.MINIMUM_SUPPORTED))},
        {"old-tls"},
    ),
    "service: minimum TLSv1": (
        {"service_tls": tweak(service, set_min(ssl.TLSVersion.TLSv1))},
        {"old-tls"},
    ),
    "server: the shipped legacy context": (
        {"server_tls": _legacy_server},
        {"old-tls", "weak-ciphers"},
    ),
    "service: a legacy context requiring certificates": (
        {"service_tls": _legacy_service},
        {"old-tls", "weak-ciphers"},
    ),
    "server: legacy context with the version fixed": (
        {"server_tls": tweak(_legacy_server, set_min(ssl.TLSVersion.TLSv1_2))},
        {"weak-ciphers"},
    ),
    "server: set_ciphers('HIGH:!aNULL')": (
        {"server_tls": tweak(server, ciphers("HIGH:!aNULL"))},
        {"weak-ciphers"},
    ),
    "service: set_ciphers('DEFAULT:@SECLEVEL=0')": (
        {"service_tls": tweak(service, ciphers("DEFAULT:@SECLEVEL=0"))},
        {"weak-ciphers"},
    ),
    "server: TLS 1.3 only": (
        {"server_tls": tweak(server, set_min(ssl.TLSVersion.TLSv1_3))},
        {"tls12-works"},
    ),
    "server: TLS 1.2 at most": (
        {"server_tls": tweak(server, set_max(ssl.TLSVersion.TLSv1_2))},
        {"tls13-works"},
    ),
    # The HSTS details the text requires.
    "hsts: a year, no includeSubDomains": (
        {"security_headers": hsts("max-age=31536000")},
        {"no-hsts"},
    ),
    "hsts: one day": ({"security_headers": hsts("max-age=86400; includeSubDomains")}, {"no-hsts"}),
    "hsts: max-age=0": ({"security_headers": hsts("max-age=0; includeSubDomains")}, {"no-hsts"}),
    "hsts: commas": (
        {"security_headers": hsts("max-age=31536000, includeSubDomains")},
        {"no-hsts"},
    ),
    "hsts: no separator": (
        {"security_headers": hsts("max-age=31536000 includeSubDomains")},
        {"no-hsts"},
    ),
    "hsts: max-age twice": (
        {"security_headers": hsts("max-age=31536000; includeSubDomains; max-age=0")},
        {"no-hsts"},
    ),
    "hsts: a decimal max-age": (
        {"security_headers": hsts("max-age=31536000.0; includeSubDomains")},
        {"no-hsts"},
    ),
    "hsts: includeSubDomains=true": (
        {"security_headers": hsts("max-age=31536000; includeSubDomains=true")},
        {"no-hsts"},
    ),
    "hsts: /health only": (
        {"security_headers": hsts_when(lambda req: req.path == "/health")},
        {"no-hsts"},
    ),
    "hsts: GET only": (
        {"security_headers": hsts_when(lambda req: req.method == "GET")},
        {"no-hsts"},
    ),
    "hsts: the routes only": (
        {
            "security_headers": hsts_when(
                lambda req: req.path in ("/health", "/inbox", "/reports/daily")
            )
        },
        {"no-hsts"},
    ),
    "hsts: signed-in requests only": (
        {"security_headers": hsts_when(lambda req: bool(req.token))},
        {"no-hsts"},
    ),
    # on_plain_http: a decision is a bool; every request is refused and its token revoked.
    "plain: forgets to return": (
        {"on_plain_http": _forgets_to_return},
        {"plain-http-served"},
    ),
    "plain: returns the string 'False'": (
        {"on_plain_http": plain(lambda req: "False")},
        {"plain-http-served"},
    ),
    "plain: returns 0": (
        {"on_plain_http": plain(lambda req: 0)},
        {"plain-http-served"},
    ),
    "plain: serves everything": (
        {"on_plain_http": lambda req: True},
        {"plain-http-served", "sniff-token"},
    ),
    "plain: revokes and serves": (
        {"on_plain_http": plain(lambda req: True)},
        {"plain-http-served"},
    ),
    "plain: refuses GET only": (
        {"on_plain_http": plain(lambda req: req.method != "GET")},
        {"plain-http-served"},
    ),
    "plain: refuses known routes only": (
        {
            "on_plain_http": plain(
                lambda req: req.path not in ("/inbox", "/health", "/reports/daily")
            )
        },
        {"plain-http-served"},
    ),
    "plain: revokes on GET only": (
        {"on_plain_http": plain(lambda req: False, revoking=lambda req: req.method == "GET")},
        {"sniff-token"},
    ),
    "plain: revokes on the API's routes only": (
        {"on_plain_http": plain(lambda req: False, revoking=lambda req: req.path != "/health")},
        {"sniff-token"},
    ),
    "plain: lets CORS preflights through": (
        {"on_plain_http": plain(lambda req: req.method == "OPTIONS")},
        {"plain-http-served"},
    ),
    "plain: parses 'Bearer ' itself, case-sensitively": (
        {"on_plain_http": _parses_bearer_itself},
        {"sniff-token"},
    ),
    # identify_service: the verified certificate, never a header, never a default.
    "identity: the header, at /internal/usage only": (
        {"identify_service": _header_at_usage_only},
        {"spoofed-identity"},
    ),
    "identity: Apache's SSL-Client-Subject-DN as a fallback": (
        {"identify_service": header_fallback("ssl-client-subject-dn", lambda v: v[3:])},
        {"spoofed-identity"},
    ),
    "identity: the header first": ({"identify_service": _header_first}, {"spoofed-identity"}),
    "identity: X-Client-Cert-CN as a fallback": (
        {"identify_service": header_fallback("x-client-cert-cn")},
        {"spoofed-identity"},
    ),
    "identity: Envoy's X-Forwarded-Client-Cert as a fallback": (
        {"identify_service": header_fallback("x-forwarded-client-cert", _xfcc_subject)},
        {"spoofed-identity"},
    ),
    "identity: nginx's X-SSL-Client-CN as a fallback": (
        {"identify_service": header_fallback("x-ssl-client-cn")},
        {"spoofed-identity"},
    ),
    "identity: the header, once some certificate came": (
        {"identify_service": _header_only_beside_a_certificate},
        {"spoofed-identity"},
    ),
    "identity: 'reports' when no certificate came": (
        {"identify_service": _reports_by_default},
        {"spoofed-identity"},
    ),
    "identity: every certificate is billing": (
        {"identify_service": _any_certificate_is_billing},
        {"cross-service", "services-work"},
    ),
    "identity: the whole subject, not the name": (
        {"identify_service": lambda req: req.tls and req.tls["client_cert_name"]},
        {"services-work"},
    ),
    # make_client: names, dates, a client each time.
    "client: check_hostname=False": (
        {
            "make_client": client_of(
                tweak(course_only, lambda c, a: setattr(c, "check_hostname", False))
            )
        },
        {"bad-certificate"},
    ),
    "client: dates ignored": (
        {"make_client": client_of(tweak(course_only, ignore_dates))},
        {"bad-certificate"},
    ),
    "client: verify=False": (
        {"make_client": lambda ca: httpx.Client(verify=False)},  # noqa: S501
        {"impostor-server", "bad-certificate"},
    ),
    "client: one shared client, closed after its first job": (
        {"make_client": lambda ca: _SHARED},
        {"impostor-server", "bad-certificate", "job-works"},
    ),
    "client: not an httpx.Client": (
        {"make_client": lambda ca: course_only(ca)},
        {"impostor-server", "bad-certificate", "job-works"},
    ),
    # A hook that fails is named, and is never a pass.
}


@pytest.mark.parametrize("case", list(WRONG))
def test_each_wrong_defense_fails_its_row(defended: tuple[Lab, dict[str, Any]], case: str) -> None:
    wrong, rows = WRONG[case]
    lab = _with(defended, **wrong)
    with pytest.raises(DefenseBreached) as breach:
        lab.grade()
    assert {row.id for row in breach.value.report.failures} == rows
    for row in rows:
        assert f"] {row} (" in str(breach.value)


# -- 3. hostile input: a 4xx, never a 5xx, on all three ports, weak or defended ----------------

HUGE = 9 * 10**40  # far beyond 64 bits
HOSTILE = [
    ("GET", f"/inbox?limit={HUGE}&offset=-{HUGE}", {}, None),
    ("GET", "/inbox/%ED%A0%80", {}, None),  # a lone surrogate, percent-encoded
    ("GET", "/inbox/%00%ff/..%2f..%2fetc", {}, None),
    ("GET", "/inbox/", {}, None),  # a redirect to drop the slash
    ("GET", "/health", {"Host": "["}, None),  # request.url would choke on it
    ("GET", "/health", {"Host": "a" * 4000}, None),
    ("POST", "/inbox", {"Content-Type": "application/json"}, b'{"a": "\\ud800"}'),
    ("POST", "/inbox", {"Content-Type": "application/json"}, b'{"a": 1, "a": 2}'),
    ("POST", "/inbox", {"Content-Type": "application/json"}, b"[" * 50_000 + b"]" * 50_000),
    ("PUT", "/inbox", {"Content-Type": "application/json"}, f'{{"n": {HUGE}}}'.encode()),
    ("PATCH", "/health", {"Content-Type": "text/plain"}, b"\xed\xa0\x80" * 1000),
    ("DELETE", "/reports/daily", {}, None),
    ("HEAD", "/inbox", {}, None),
    ("GET", "/inbox", {"Authorization": b"Bearer \xed\xa0\x80"}, None),
    ("GET", "/inbox", {"Authorization": f"Bearer {HUGE}"}, None),
    ("GET", "/inbox", {"Authorization": "Bearer " + "a" * 5000}, None),
    ("GET", "/inbox", {"Authorization": "Bearer"}, None),
    ("GET", "/inbox", {"Authorization": "Bearer \x7f"}, None),
    ("GET", "/inbox", {"Authorization": "Basic Zm9vOmJhcg=="}, None),
    ("GET", "/inbox", {"Authorization": 'Bearer {"$ne": null}'}, None),
    ("GET", "/reports/daily", {"X-Client-Cert-CN": b"\xff\xfe" * 200}, None),
]
SERVICE_PATH = {"/inbox": "/internal/payouts", "/reports/daily": "/internal/usage"}


def _send(client: httpx.Client, url: str, method: str, headers: Any, body: Any) -> int:
    return client.request(method, url, headers=headers, content=body).status_code


def _hostile_statuses(lab: Lab, signed_in: bool) -> dict[str, int]:
    bob = auth(new_session(lab.store, "bob"))  # not his seeded token: http:// revokes it
    seen = {}
    with lab.net.service_client("reports") as service:
        for method, path, headers, body in HOSTILE:
            sent = {**(bob if signed_in else {}), **headers}
            first, _, rest = path.partition("?")
            service_path = SERVICE_PATH.get(first, first) + ("?" + rest if rest else "")
            for where, client, url in (
                ("https", lab.client, f"{lab.url}{path}"),
                ("http", lab.client, f"{lab.net.http_url}{path}"),
                ("service", service, f"{lab.net.service_url}{service_path}"),
            ):
                seen[f"{where} {method} {path[:40]}"] = _send(client, url, method, sent, body)
    return seen


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("defense", ["weak", "solution"])
def test_hostile_input_gets_a_4xx_never_a_5xx(
    defended: tuple[Lab, dict[str, Any]], defense: str, signed_in: bool
) -> None:
    lab, hooks = defended
    if defense == "weak":
        lab.undefend()
    else:
        _with(defended)
    incidents = len(lab.guard.incidents)
    statuses = _hostile_statuses(lab, signed_in)
    assert {what: status for what, status in statuses.items() if status >= 500} == {}
    assert lab.guard.incidents[incidents:] == []  # no hook was even made to fail
    if defense == "solution":  # and plain HTTP is refused whatever comes
        assert {s for what, s in statuses.items() if what.startswith("http ")} == {403}


def _tls_cn(req: Any) -> str | None:
    """The CN parsed out of the ASGI TLS extension's subject: the same verified certificate."""
    name = (req.tls or {}).get("client_cert_name") or ""
    found = re.search(r"(?:^|,)CN=([^,]+)", name)
    return found.group(1) if found else None


def _refuses_identity_headers(req: Any) -> str | None:
    if "x-client-cert-cn" in req.headers:
        return None  # someone tries to speak for a proxy that is not there: refuse
    return req.client_cert_cn


def _old_flags_raise_the_floor(context: ssl.SSLContext, files: Any) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.options |= ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1  # deprecated, and still a floor


async def _async_plain(req: Any) -> bool:
    req.revoke_token()  # a no-op without a token
    return False


def _purpose_server(files: Any) -> ssl.SSLContext:
    """Python's documented server recipe: create_default_context(Purpose.CLIENT_AUTH)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    return context


def _purpose_service(files: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(files.cert, files.key)
    return context


def _no_minimum(files: Any) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    return context


RIGHT = {
    "hsts: two years, preload": {
        "security_headers": hsts("max-age=63072000; includeSubDomains; preload")
    },
    "hsts: directives in another order, no spaces": {
        "security_headers": hsts("includeSubDomains;max-age=31536000")
    },
    "hsts: a quoted max-age, any case": {
        "security_headers": hsts('MAX-AGE="31536000"; INCLUDESUBDOMAINS')
    },
    "hsts: with more security headers": {
        "security_headers": lambda req: {
            "Strict-Transport-Security": YEAR_HSTS,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        }
    },
    "plain: async, revoking unconditionally": {"on_plain_http": _async_plain},
    "server: no explicit minimum (Python's is TLS 1.2)": {"server_tls": _no_minimum},
    "server: create_default_context(Purpose.CLIENT_AUTH)": {"server_tls": _purpose_server},
    "server: a low minimum with OP_NO_TLSv1 and OP_NO_TLSv1_1": {
        "server_tls": tweak(server, _old_flags_raise_the_floor)
    },
    "service: create_default_context(Purpose.CLIENT_AUTH, cafile=files.ca)": {
        "service_tls": _purpose_service
    },
    "service: TLS 1.3 only between our own services": {
        "service_tls": tweak(service, set_min(ssl.TLSVersion.TLSv1_3))
    },
    "identity: the CN from req.tls": {"identify_service": _tls_cn},
    "identity: refuses requests that carry the header": {
        "identify_service": _refuses_identity_headers
    },
    "client: PROTOCOL_TLS_CLIENT and the course CA": {
        "make_client": client_of(
            tweak(
                lambda ca: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
                lambda c, ca: c.load_verify_locations(ca),
            )
        )
    },
    "client: cadata, a TLS 1.2 floor, a timeout": {
        "make_client": lambda ca: httpx.Client(
            verify=tweak(
                lambda a: ssl.create_default_context(cadata=Path(a).read_text()),
                set_min(ssl.TLSVersion.TLSv1_2),
            )(ca),
            timeout=3,
        )
    },
    # RFC 9325 §4.2 to the letter: AEAD suites only (the notebook offers it as an option).
    "server and service: ECDHE with AES-GCM or ChaCha20 only": {
        "server_tls": tweak(server, ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")),
        "service_tls": tweak(service, ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")),
    },
}


@pytest.mark.parametrize("case", list(RIGHT))
def test_each_right_variant_passes(defended: tuple[Lab, dict[str, Any]], case: str) -> None:
    """A grader that failed a right defense would teach learners to distrust it."""
    assert _with(defended, **RIGHT[case]).grade().passed


def test_a_decision_that_is_not_a_bool_is_named_on_the_plain_http_row(
    defended: tuple[Lab, dict[str, Any]],
) -> None:
    lab = _with(defended, on_plain_http=_forgets_to_return)
    row = _row(lab, "plain-http-served")
    assert not row.passed
    assert "on_plain_http() returned NoneType None; it must return True or False" in row.observed
    assert "a 5xx is never a pass" in row.observed


def test_a_header_that_would_split_the_response_is_a_hook_error_not_a_tls_one(
    defended: tuple[Lab, dict[str, Any]],
) -> None:
    lab = _with(defended, security_headers=_splits_the_response)  # server_tls is not blamed
    row = _row(lab, "https-works")
    assert not row.passed and "security_headers() returned" in row.observed


def test_a_client_factory_that_raises_is_named_and_crashes_nothing(
    defended: tuple[Lab, dict[str, Any]],
) -> None:
    def broken(ca_file: Any) -> httpx.Client:
        raise ValueError("forgot the CA")

    lab = _with(defended, make_client=broken)
    assert {"impostor-server", "bad-certificate", "job-works"} <= _failing(lab)
    report = str(_row(lab, "job-works"))
    assert "make_client() raised" in report and "forgot the CA" in report


def test_the_trust_rows_say_what_else_is_trusted(defended: tuple[Lab, dict[str, Any]]) -> None:
    lab = _with(defended, make_client=client_of(tweak(course_only, system_directory)))
    row = _row(lab, "impostor-server")
    assert "besides the course CA" in row.observed and "anyone with a certificate" in row.observed
    lab = _with(defended, service_tls=tweak(service, system_store))
    assert "the service port trusts" in _row(lab, "rogue-client-cert").observed


def test_a_low_floor_is_named_even_where_openssl_refuses_the_handshake(
    defended: tuple[Lab, dict[str, Any]],
) -> None:
    lab = _with(defended, server_tls=tweak(server, set_min(ssl.TLSVersion.TLSv1)))
    row = _row(lab, "old-tls")
    assert "allows TLSv1 (minimum_version is TLSv1)" in row.observed


# -- the rows name the cause: the hook, the direction, the kind of check, the fix -------------


def _refuses_everything_but_system_cas(ca_file: Any) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context())


WORDING = {
    # on_plain_http refuses but forgets to revoke: the most common first try.
    "plain: refuses, no revoke": (
        {"on_plain_http": lambda req: False},
        "sniff-token",
        ["got through", "replayed over HTTPS", "on_plain_http let a token seen in clear live"],
        ["on_plain_http", "req.revoke_token()", "return False"],
    ),
    # "TLS 1.3 only is safest": the HTTPS port denies a TLS 1.2 client at the handshake.
    "server: TLS 1.3 only": (
        {"server_tls": tweak(server, set_min(ssl.TLSVersion.TLSv1_3))},
        "tls12-works",
        ["refused", "server_tls", "refused the handshake of a TLSv1_2-only client"],
        ["server_tls denies too much", "minimum_version = TLSv1_2"],
    ),
    # check_hostname=False "because the staging names never matched".
    "client: no name check": (
        {
            "make_client": client_of(
                tweak(course_only, lambda c, a: setattr(c, "check_hostname", False))
            )
        },
        "bad-certificate",
        ["got through", "make_client's client", "wrong-name", "skipped the name check"],
        ["make_client skips a check", "check_hostname=True"],
    ),
    # A client that trusts the system's CAs only: it denies the real API.
    "client: system CAs only": (
        {"make_client": _refuses_everything_but_system_cas},
        "job-works",
        ["refused", "make_client's client, refused the real API", "CERTIFICATE_VERIFY_FAILED"],
        ["make_client denies too much", "cafile=str(ca_file)"],
    ),
    # The header kept "as a fallback, in case the gateway is down".
    "identity: header fallback": (
        {"identify_service": header_fallback("x-client-cert-cn")},
        "spoofed-identity",
        ["got through", "identify_service answered 'billing'", "no certificate"],
        ["identify_service believed a header", "req.client_cert_cn", "not even as a fallback"],
    ),
    # CERT_OPTIONAL: the handshake asks, and lets a client without a certificate in.
    "service: CERT_OPTIONAL": (
        {"service_tls": tweak(service, lambda c, f: setattr(c, "verify_mode", ssl.CERT_OPTIONAL))},
        "no-client-cert",
        ["got through", "no certificate", "its handshake let the client in"],
        ["service_tls let a client without a certificate through the handshake", "CERT_REQUIRED"],
    ),
    # The whole subject instead of its CN: real services are refused by the app, not the TLS.
    "identity: the whole subject": (
        {"identify_service": lambda req: req.tls and req.tls["client_cert_name"]},
        "services-work",
        ["refused", "its certificate accepted", "identify_service did not answer 'billing'"],
        ["denies too much", "req.client_cert_cn as is"],
    ),
    # A comma between directives: a browser ignores the whole header.
    "hsts: commas": (
        {"security_headers": hsts("max-age=31536000, includeSubDomains")},
        "no-hsts",
        ["got through", "a browser ignores it", "separated by ';'"],
        ["security_headers left a response without a usable HSTS header"],
    ),
}


@pytest.mark.parametrize("case", list(WORDING))
def test_a_failing_row_names_the_hook_the_direction_and_the_fix(
    defended: tuple[Lab, dict[str, Any]], case: str
) -> None:
    """The row a plausible mistake fails says which hook, which way, and what to change."""
    wrong, row_id, observed, hint = WORDING[case]
    row = _row(_with(defended, **wrong), row_id)
    assert not row.passed
    for fragment in observed:
        assert fragment in row.observed, f"{fragment!r} not in {row.observed!r}"
    for fragment in hint:
        assert fragment in row.hint, f"{fragment!r} not in {row.hint!r}"


def test_bad_certificate_says_a_refused_handshake_is_expected(
    defended: tuple[Lab, dict[str, Any]],
) -> None:
    row = _row(_with(defended), "bad-certificate")
    assert row.passed and "refuses both impostors at the handshake" in row.expected


# -- the explore probes see what the text says (by the name the certificate holds) ----------
# (the defended lab's test first: starting lab07 stops this module's defended lab)


def _negotiate(lab: Lab) -> dict[str, Any]:
    """The explore section's negotiate(), VERSIONS and SHA1_ONLY, as the notebook runs them."""
    given = {"lab": lab, "ssl": ssl, "socket": socket, "warnings": warnings, "httpx": httpx}
    return solution_namespace("07-tls-and-mtls.ipynb", "negotiate", **given)


def test_the_explore_probe_sees_the_defended_port_refuse_only_the_old(
    defended: tuple[Lab, dict[str, Any]],
) -> None:
    lab = _with(defended)
    probe = _negotiate(lab)
    outcomes = {v: probe["negotiate"](lab.server.port, v) for v in probe["VERSIONS"]}
    assert outcomes[ssl.TLSVersion.TLSv1].startswith("refused ("), outcomes
    assert outcomes[ssl.TLSVersion.TLSv1_1].startswith("refused ("), outcomes
    assert outcomes[ssl.TLSVersion.TLSv1_2].startswith("TLSv1.2 with "), outcomes
    assert outcomes[ssl.TLSVersion.TLSv1_3].startswith("TLSv1.3 with "), outcomes
    sha1 = probe["negotiate"](lab.server.port, ssl.TLSVersion.TLSv1_2, probe["SHA1_ONLY"])
    assert sha1.startswith("refused ("), sha1


def test_the_explore_probe_sees_the_weak_port_accept_old_versions_and_sha1_suites(
    lab07: Lab,
) -> None:
    """The text says TLS 1.0/1.1 and the SHA-1 suites are accepted: a probe that fails its
    own certificate check (by address) would print 'refused' for every line instead."""
    probe = _negotiate(lab07)
    outcomes = {v: probe["negotiate"](lab07.server.port, v) for v in probe["VERSIONS"]}
    assert outcomes[ssl.TLSVersion.TLSv1].startswith("TLSv1 with "), outcomes
    assert outcomes[ssl.TLSVersion.TLSv1_1].startswith("TLSv1.1 with "), outcomes
    assert outcomes[ssl.TLSVersion.TLSv1_2].startswith("TLSv1.2 with "), outcomes
    assert outcomes[ssl.TLSVersion.TLSv1_3].startswith("TLSv1.3 with "), outcomes
    sha1 = probe["negotiate"](lab07.server.port, ssl.TLSVersion.TLSv1_2, probe["SHA1_ONLY"])
    assert re.fullmatch(r"TLSv1\.2 with \S+-SHA", sha1), sha1


def test_the_graders_handshakes_reach_the_weak_ports(lab07: Lab) -> None:
    """old-tls and weak-ciphers breach the weak lab by a real handshake, not only by reading
    the context: their probe checks the certificate's name, and the handshake completes."""
    assert "negotiated TLSv1" in _row(lab07, "old-tls").observed
    assert "negotiated TLSv1.2 with" in _row(lab07, "weak-ciphers").observed


def test_rows_that_want_a_refused_handshake_do_not_promise_a_4xx(lab07: Lab) -> None:
    """A 401 is a 4xx, yet it fails these rows: they say so, and say why."""
    rows = [a for a in LESSON.attacks if a.transport_error_blocks]
    assert {a.id for a in rows} >= {"no-client-cert", "rogue-client-cert", "expired-client-cert"}
    for attack in rows:
        assert "refused handshake" in attack.expected and "4xx" not in attack.expected
        assert "not the app" in attack.fix and "CERT_REQUIRED" in attack.fix
        row = _row(lab07, attack.id)
        assert row.expected == attack.expected
        assert not row.passed and "handshake let the client in" in row.observed


# -- the attacks, for real, on the weak lab ---------------------------------------------


@pytest.mark.parametrize("attack", [a.id for a in LESSON.attacks if a.id != "cross-service"])
def test_each_attack_breaches_the_weak_lab(lab07: Lab, attack: str) -> None:
    assert not _row(lab07, attack).passed


def test_the_weak_service_already_keeps_services_apart_by_certificate(lab07: Lab) -> None:
    """cross-service is there to catch a defense that maps every certificate to one name."""
    assert _row(lab07, "cross-service").passed


def test_sniffing_the_phone_apps_token_off_the_wifi_reveals_a_flag(lab07: Lab) -> None:
    assert lab07.net.phone_app_sync()["status"] == 200
    token = re.search(r"Authorization: Bearer (\S+)", lab07.net.wifi.text()).group(1)
    body = lab07.client.get("/inbox", headers=auth(token)).json()
    assert FLAG.fullmatch(body["flag"])
    lab07.check_flag("sniff-token", body["flag"])


def test_bobs_own_https_token_earns_nothing(lab07: Lab) -> None:
    """Sending a token over http:// yourself is not sniffing the app: no flag."""
    bob = next(u for u in lab07.users if u["username"] == "bob")
    assert httpx.get(lab07.net.http_url + "/inbox", headers=auth(bob["token"])).is_success
    assert "flag" not in lab07.client.get("/inbox", headers=auth(bob["token"])).json()


@pytest.mark.parametrize(
    ("kind", "flag"),
    [
        ("other-ca", "impostor-server"),
        ("wrong-name", "bad-certificate"),
        ("expired", "bad-certificate"),
    ],
)
def test_a_token_captured_by_an_impostor_reveals_its_flag(lab07: Lab, kind: str, flag: str) -> None:
    impostor = lab07.net.impostor(kind)
    assert lab07.net.reports_job(via=impostor.url)["status"] == 200
    token = impostor.captured[-1].split()[1]
    body = lab07.client.get("/reports/daily", headers=auth(token)).json()
    lab07.check_flag(flag, body["flag"])


def test_the_jobs_own_token_at_the_real_api_earns_nothing(lab07: Lab) -> None:
    assert lab07.net.reports_job()["status"] == 200
    assert "flag" not in str(lab07.audit())


def test_a_spoofed_client_cert_header_reveals_the_flag(lab07: Lab) -> None:
    with lab07.net.service_client("reports") as client:
        # The honest call, as the (imagined) TLS-terminating proxy would label it:
        honest = client.get("/internal/usage", headers={"X-Client-Cert-CN": "reports"})
        assert honest.status_code == 200
        body = client.get("/internal/payouts", headers={"X-Client-Cert-CN": "billing"}).json()
    assert body["caller"] == "billing"
    lab07.check_flag("spoofed-identity", body["flag"])


# -- the defense -------------------------------------------------------------------------


def test_the_solution_stops_every_attack_and_keeps_real_traffic_twice(lab07: Lab) -> None:
    lab07.defend(**solution(lab07))
    assert lab07.grade().passed
    assert lab07.grade().passed  # revoked tokens and fresh sessions: grading is repeatable


def test_after_defending_the_attacks_fail_for_the_learner_too(lab07: Lab) -> None:
    lab07.defend(**solution(lab07))
    assert lab07.net.phone_app_sync()["status"] == 403
    impostor = lab07.net.impostor("other-ca")
    outcome = lab07.net.reports_job(via=impostor.url)
    assert "CERTIFICATE_VERIFY_FAILED" in outcome["error"]
    assert impostor.captured == []
    with lab07.net.service_client(None) as client, pytest.raises(httpx.TransportError):
        client.get("/internal/payouts", headers={"X-Client-Cert-CN": "billing"})
    assert lab07.audit(decision="deny")


def test_undefend_puts_the_weak_tls_back(lab07: Lab) -> None:
    lab07.defend(**solution(lab07))
    lab07.undefend()
    assert not _row(lab07, "old-tls").passed
    assert not _row(lab07, "no-client-cert").passed


# -- bad settings are refused at defend time, and the lab keeps working ------------------


@pytest.mark.parametrize(
    ("hook", "fn", "message"),
    [
        ("server_tls", lambda files: None, "must return an ssl.SSLContext"),
        ("server_tls", lambda files: ssl.create_default_context(), "PROTOCOL_TLS_SERVER"),
        ("server_tls", lambda files: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), "load_cert_chain"),
        ("service_tls", lambda files: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_a_server_setting_that_cannot_work_is_refused_and_the_old_one_kept(
    lab07: Lab, hook: str, fn: Any, message: str
) -> None:
    with pytest.raises(BadHook, match=message):
        lab07.defend(**{hook: fn})
    assert lab07.client.get("/health").status_code == 200
    with lab07.net.service_client("reports") as client:
        assert client.get("/health").status_code == 200
    assert lab07.state.hooks[hook] is next(h.weak for h in LESSON.hooks if h.name == hook)


def test_stopping_the_lab_leaves_no_port_or_thread_behind() -> None:
    lab = start_lab("07-tls")
    lab.net.impostor("other-ca")
    lab.net.tap(lab.server.port)
    ports = [lab.server.port, lab.net.plain.port, lab.net.service.port, lab.net.wifi.port]
    ports += [imp.server.port for imp in lab.net._impostors.values()]
    lab.stop()
    assert all(refused(port) for port in ports)
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith("lab-")]
    assert not leftovers
    with pytest.raises(LabStopped):
        lab.net.impostor("expired")


def test_unknown_impostors_and_services_are_named(lab07: Lab) -> None:
    with pytest.raises(ValueError, match="other-ca, wrong-name, expired"):
        lab07.net.impostor("self-signed")
    with pytest.raises(ValueError, match="billing, reports, expired, rogue"):
        lab07.net.service_client("payroll")


def test_undefend_after_stop_says_the_lab_is_stopped() -> None:
    lab = start_lab("07-tls")
    lab.stop()
    with pytest.raises(LabStopped):
        lab.undefend()


# -- flags only for the attack itself ---------------------------------------------------


def test_a_token_sent_to_one_impostor_by_hand_earns_only_the_first_flag(lab07: Lab) -> None:
    """Relaying a captured token to the 'expired' impostor yourself fools no client."""
    first = lab07.net.impostor("other-ca")
    lab07.net.reports_job(via=first.url)
    header = first.captured[-1]
    expired = lab07.net.impostor("expired").url
    httpx.get(expired, headers={"Authorization": header}, verify=False)  # noqa: S501 - an attack
    body = lab07.client.get("/reports/daily", headers={"Authorization": header}).json()
    lab07.check_flag("impostor-server", body["flag"])


def test_a_hook_that_leaks_what_it_sees_earns_no_flag(lab07: Lab) -> None:
    seen: list[str] = []

    def stash(req: Any) -> bool:
        seen.append(req.token)
        return True

    lab07.defend(on_plain_http=stash, identify_service=lambda req: "billing")
    lab07.net.phone_app_sync()
    assert "flag" not in lab07.client.get("/inbox", headers=auth(seen[-1])).json()
    with lab07.net.service_client("reports") as client:
        body = client.get("/internal/payouts").json()
    assert body["caller"] == "billing" and "flag" not in body


# -- a real-looking world: names, not addresses; clients that say what they are -------------


def test_the_certificates_this_lesson_issues_name_hosts_not_ip_addresses(lab07: Lab) -> None:
    """OWASP TLS Cheat Sheet, 'Use Correct Domain Names': no IP addresses in a certificate."""
    for kind in ("other-ca", "wrong-name", "expired"):
        impostor = lab07.net.impostor(kind)
        assert impostor.url.startswith(f"https://{API_HOST}:")
        path = lab07.workdir / ("rogue" if kind == "other-ca" else "tls") / f"impostor-{kind}.crt"
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.IPAddress) == []
        assert names.get_values_for_type(x509.DNSName)


def test_the_phone_app_and_the_services_send_their_own_user_agent(lab07: Lab) -> None:
    lab07.net.wifi.clear()
    lab07.net.phone_app_sync()
    assert "User-Agent: Messages/" in lab07.net.wifi.text()
    with lab07.net.service_client("reports") as client:
        assert client.headers["user-agent"].startswith("reports-service/")


def test_the_gateway_configuration_names_the_header_the_service_believes() -> None:
    """The clue of attack 4 is a file to read, and it must match what the weak service reads."""
    assert "proxy_set_header X-Client-Cert-CN" in GATEWAY_CONF
    weak = next(h.weak for h in LESSON.hooks if h.name == "identify_service")

    class Request:
        headers = {"x-client-cert-cn": "billing"}
        client_cert_cn = None

    assert weak(Request()) == "billing"
