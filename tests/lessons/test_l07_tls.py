"""Lesson 07: each attack works for real on the weak lab; the solution stops all; wrong
TLS settings, clients and identity rules are caught on the row that names them."""

from __future__ import annotations

import re
import ssl
import threading
from typing import Any

import httpx
import pytest

from labapp import BadHook, DefenseBreached, Lab, LabStopped, start_lab
from labapp.engine.grading import run_item
from labapp.engine.tls import legacy_context
from labapp.lessons.common import auth
from labapp.lessons.l07_tls import LESSON
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


def _with(lab: Lab, **wrong: Any) -> set[str]:
    lab.defend(**{**solution(lab), **wrong})
    return _failing(lab)


def test_refusing_plain_http_without_revoking_is_caught(lab07: Lab) -> None:
    assert _with(lab07, on_plain_http=lambda req: False) == {"sniff-token"}


def test_revoking_but_still_serving_plain_http_is_caught(lab07: Lab) -> None:
    def revoke_and_serve(req: Any) -> bool:
        if req.token:
            req.revoke_token()
        return True  # "the token is dead anyway": the request is still served in clear

    assert _with(lab07, on_plain_http=revoke_and_serve) == {"plain-http-served"}
    assert _with(lab07, on_plain_http=lambda req: True) == {"sniff-token", "plain-http-served"}


def test_a_short_hsts_max_age_is_caught(lab07: Lab) -> None:
    def one_day(req: Any) -> dict[str, str]:
        return {"Strict-Transport-Security": "max-age=86400"}

    assert _with(lab07, security_headers=one_day) == {"no-hsts"}


def test_a_server_that_still_allows_tls_1_0_is_caught(lab07: Lab) -> None:
    def compatible(files: Any) -> ssl.SSLContext:
        context = legacy_context(server=True)
        context.load_cert_chain(files.cert, files.key)
        return context

    # TLS 1.0 and 1.1 have no AEAD suites: allowing them lets SHA-1 CBC suites in too.
    assert _with(lab07, server_tls=compatible) == {"old-tls", "weak-ciphers"}


def test_optional_client_certificates_are_caught(lab07: Lab) -> None:
    def optional(files: Any) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files.cert, files.key)
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(files.ca)
        return context

    assert _with(lab07, service_tls=optional) == {"no-client-cert"}


def _header_first(req: Any) -> str | None:
    return req.headers.get("x-client-cert-cn") or req.client_cert_cn


def _header_as_fallback(req: Any) -> str | None:
    return req.client_cert_cn or req.headers.get("x-client-cert-cn")


@pytest.mark.parametrize("identify", [_header_first, _header_as_fallback])
def test_an_identity_header_read_at_all_is_caught(lab07: Lab, identify: Any) -> None:
    """Even as a fallback that CERT_REQUIRED makes unreachable today."""
    assert _with(lab07, identify_service=identify) == {"spoofed-identity"}


def test_a_sound_version_floor_with_weak_ciphers_is_caught(lab07: Lab) -> None:
    def floor_only(files: Any) -> ssl.SSLContext:
        context = legacy_context(server=True)  # the shipped context...
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # ...with the version fixed
        context.load_cert_chain(files.cert, files.key)
        return context

    assert _with(lab07, server_tls=floor_only) == {"weak-ciphers"}


def test_hsts_on_some_responses_only_is_caught(lab07: Lab) -> None:
    def health_only(req: Any) -> dict[str, str]:
        return {"Strict-Transport-Security": "max-age=31536000"} if req.path == "/health" else {}

    assert _with(lab07, security_headers=health_only) == {"no-hsts"}


def test_a_header_that_would_split_the_response_is_a_hook_error_not_a_tls_one(lab07: Lab) -> None:
    def injected(req: Any) -> dict[str, str]:
        return {"Strict-Transport-Security": "max-age=31536000\r\nSet-Cookie: x=1"}

    lab07.defend(**{**solution(lab07), "security_headers": injected})  # server_tls is not blamed
    row = _row(lab07, "https-works")
    assert not row.passed and "security_headers() returned" in row.observed


def test_any_valid_certificate_as_billing_is_caught(lab07: Lab) -> None:
    def any_cert(req: Any) -> str | None:
        return "billing" if req.client_cert_cn else None

    assert "cross-service" in _with(lab07, identify_service=any_cert)


def test_a_client_without_hostname_checks_is_caught(lab07: Lab) -> None:
    def no_hostname(ca_file: Any) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(ca_file))
        context.check_hostname = False
        return httpx.Client(verify=context)

    assert _with(lab07, make_client=no_hostname) == {"bad-certificate"}


def test_a_client_that_trusts_the_system_cas_instead_is_caught(lab07: Lab) -> None:
    def system_cas(ca_file: Any) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context())

    assert _with(lab07, make_client=system_cas) == {"job-works"}


def test_a_client_factory_that_raises_fails_rows_without_crashing_the_grader(lab07: Lab) -> None:
    def broken(ca_file: Any) -> httpx.Client:
        raise ValueError("forgot the CA")

    failing = _with(lab07, make_client=broken)
    assert {"impostor-server", "bad-certificate", "job-works"} <= failing
    report = str(_row(lab07, "job-works"))
    assert "make_client() raised" in report and "forgot the CA" in report


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


def test_malformed_credentials_get_4xx_from_the_defended_lab(lab07: Lab) -> None:
    lab07.defend(**solution(lab07))
    for value in ("Bearer", "Bearer \x7f", "Basic Zm9vOmJhcg==", "Bearer " + "a" * 5000):
        assert lab07.client.get("/inbox", headers={"Authorization": value}).status_code == 401


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
