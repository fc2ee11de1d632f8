"""Lab: the object a notebook holds, and every way a learner can misuse it."""

from __future__ import annotations

import contextvars

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware

from labapp import (
    BadHook,
    Lab,
    LabError,
    LabStopped,
    UnknownDependency,
    UnknownExercise,
    UnknownHook,
    UnknownLesson,
    start_lab,
)
from labapp.engine.registry import running


def test_an_unknown_lesson_lists_the_valid_ones() -> None:
    """A typo in the lesson id says which ids exist."""
    with pytest.raises(UnknownLesson, match="'00-welcome', '01-unprotected'"):
        start_lab("01-unprotectd")
    with pytest.raises(UnknownLesson):
        start_lab(1)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["01", "01-unprotected", "01-unprotected-endpoints.ipynb"])
def test_a_lesson_can_be_named_by_number_id_or_notebook(name: str) -> None:
    """Learners may type the number, the id, or the notebook's file name."""
    with start_lab(name) as lab:
        assert lab.lesson.id == "01-unprotected"


def test_rerunning_start_lab_replaces_the_previous_lab() -> None:
    """One lab per lesson per kernel: the old one is stopped, the new one registered."""
    first = start_lab("01-unprotected")
    second = start_lab("01-unprotected")
    try:
        assert "stopped" in repr(first)
        assert running()["01-unprotected"] is second
        assert second.client.get("/health").status_code == 200
    finally:
        second.stop()
    assert "01-unprotected" not in running()


def test_the_context_manager_stops_the_lab_and_deletes_its_files() -> None:
    """Leaving the with-block stops the server and removes the temp folder."""
    with start_lab("00-welcome") as lab:
        workdir = lab.workdir
        assert (workdir / "lab.sqlite3").exists()
    assert not workdir.exists()
    with pytest.raises(LabStopped, match="start_lab"):
        lab.grade()
    lab.stop()  # idempotent


def test_an_unknown_hook_name_lists_the_hooks(lab01: Lab) -> None:
    """A misspelt hook name is refused with the names that exist."""
    with pytest.raises(UnknownHook, match="its hooks are: authorize"):
        lab01.defend(authorise=lambda req: True)


def test_a_hook_with_the_wrong_signature_is_refused_before_it_runs(lab01: Lab) -> None:
    """The server never calls a function it cannot call correctly."""
    with pytest.raises(BadHook, match=r"must accept \(req\)"):
        lab01.defend(authorize=lambda: True)
    with pytest.raises(BadHook, match="must be a function"):
        lab01.defend(authorize="allow")
    with pytest.raises(BadHook, match="lab.defend"):
        lab01.defend()
    assert lab01.client.get("/orders").status_code == 200  # the weak default is still in place


def test_all_misuse_errors_are_lab_errors() -> None:
    """One base class, so a notebook can catch every lab error at once."""
    for error in (BadHook, LabStopped, UnknownExercise, UnknownHook, UnknownLesson):
        assert issubclass(error, LabError)


def test_hints_come_one_at_a_time_then_say_there_are_no_more(lab01: Lab, capsys) -> None:
    """Each call gives the next hint; past the last it says so instead of repeating."""
    total = len(lab01.lesson.all_hints()["fail-open"])
    for number in range(1, total + 1):
        lab01.hint("fail-open")
        assert f"Hint {number}/{total}" in capsys.readouterr().out
    lab01.hint("fail-open")
    assert "No more hints" in capsys.readouterr().out
    with pytest.raises(UnknownExercise, match="'read-all-orders'"):
        lab01.hint("no-such-exercise")


def test_hint_without_a_name_means_the_only_exercise(lab01: Lab, capsys) -> None:
    """lab.hint() in a lesson of one exercise gives its hints; with several, it asks which."""
    with start_lab("00-welcome") as lab00:
        assert list(lab00.lesson.all_hints()) == ["classify"]
        lab00.hint()
        assert "Hint 1/3 (nudge) for 'classify'" in capsys.readouterr().out
    with pytest.raises(UnknownExercise, match="which exercise.*'read-all-orders'"):
        lab01.hint()


def test_check_answer_refuses_an_unknown_quiz(lab01: Lab) -> None:
    """A lesson without that quiz says which quizzes it has."""
    with pytest.raises(UnknownExercise, match="no quiz"):
        lab01.check_answer("classify", {})


def test_the_card_shows_url_users_endpoints_and_exercises(lab01: Lab) -> None:
    """The notebook repr is an HTML card with what a learner needs to start."""
    card = lab01._repr_html_()
    assert lab01.url in card
    assert "alice" in card and "svc-frontend" in card
    assert "/internal/export" in card
    assert "flag <code>fail-open</code>" in card and "hook <code>authorize</code>" in card
    assert "<code>authorize(req)</code>: authorize(req) -&gt; bool" in card


def test_audit_rows_render_as_a_table(lab01: Lab) -> None:
    """lab.audit() is a list of dicts that renders as an HTML table."""
    lab01.client.get("/orders")
    rows = lab01.audit()
    assert rows[-1]["action"] == "GET /orders" and rows[-1]["decision"] == "allow"
    assert "<table>" in rows._repr_html_()
    assert "GET /orders" in str(rows.tail(1))


def test_outage_ends_when_the_block_ends(lab01: Lab) -> None:
    """The simulated outage is scoped to its with-block, even if the block raises."""
    with pytest.raises(RuntimeError), lab01.outage("identity"):
        assert lab01.client.get("/health").json()["identity_service"] == "down"
        raise RuntimeError
    assert lab01.client.get("/health").json()["identity_service"] == "up"


def test_an_outage_of_an_unknown_service_is_refused(lab01: Lab) -> None:
    """Only the services the lab depends on can be taken down; the error lists them."""
    with pytest.raises(UnknownDependency, match="'identity'"), lab01.outage("database"):
        pass


def test_invalid_input_gets_a_422_that_does_not_echo_it(lab01: Lab) -> None:
    """A bad body is refused with 422 naming the field, never echoing (or choking on) it."""
    headers = {"Authorization": f"Bearer {lab01.users[0]['token']}"}
    for body in ('{"product_id": "\\ud800 secret-ish"}', '{"product_id": [1, 2]}', "{"):
        response = lab01.client.post(
            "/orders", content=body, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 422
        assert "secret-ish" not in response.text and "input" not in response.json()["detail"][0]


def test_an_attacker_server_serves_json_on_loopback_and_stops_with_the_lab() -> None:
    """lab.attacker_server gives a learner a loopback URL to host, say, a forged JWKS."""
    lab = start_lab("01")
    url = lab.attacker_server({"/jwks.json": {"keys": []}})
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(url + "/jwks.json").json() == {"keys": []}
    lab.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/jwks.json", timeout=1)


def test_hooks_see_the_request_context(lab01: Lab) -> None:
    """A contextvar set while serving a request is visible inside the learner's hook."""
    seen: list[object] = []
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")

    async def set_marker(request, call_next):
        marker.set("set in the request")
        return await call_next(request)

    lab01.server.app.middleware_stack = None  # rebuilt below with the new middleware
    lab01.server.app.user_middleware.insert(0, Middleware(BaseHTTPMiddleware, dispatch=set_marker))
    lab01.defend(authorize=lambda req: seen.append(marker.get()) or True)
    lab01.client.get("/products")
    assert seen == ["set in the request"]


def test_on_a_hub_the_docs_page_is_served_through_the_proxy_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """jupyter-server-proxy serves /user/NAME/proxy/PORT/: /docs must load its schema there."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    with start_lab("01-unprotected") as lab:
        prefix = f"/user/ada/proxy/{lab.server.port}"
        assert lab.docs_url == f"{prefix}/docs"
        assert f"{prefix}/openapi.json" in lab.client.get("/docs").text
        assert lab.client.get("/products").status_code == 200  # graders go direct
        assert "/orders" in lab.client.get("/openapi.json").json()["paths"]
        assert prefix in lab._repr_html_()
    with start_lab("00-welcome", tls=True) as lab:  # the proxy speaks HTTP only
        assert lab.docs_url == f"{lab.url}/docs"


def test_off_a_hub_the_docs_are_at_the_lab_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    with start_lab("00-welcome") as lab:
        assert lab.docs_url == f"{lab.url}/docs"
        assert "/openapi.json" in lab.client.get("/docs").text


class _Tools:
    """A tiny lesson network: one exported tool, one that stays on lab.net only."""

    exports = ("browser", "victim")

    def __init__(self, lab: Lab) -> None:
        self.victim = f"victim of {lab.lesson.id}"
        self.stopped = False

    def browser(self, user: str) -> str:
        return f"browser of {user}"

    def private(self) -> str:
        return "only lab.net.private"

    def stop(self) -> None:
        self.stopped = True


def test_a_lesson_network_exports_its_tools_on_the_lab() -> None:
    """lab.<name> reaches lab.net.<name> only for names the network exports."""
    from fastapi import FastAPI

    from labapp.engine.lab import start
    from labapp.engine.spec import Lesson

    lesson = Lesson(
        id="99-tools",
        title="tools",
        notebook="99-tools.ipynb",
        minutes=1,
        create_app=lambda state: FastAPI(),
        seed=lambda state: None,
        network=_Tools,
    )
    with start(lesson) as lab:
        assert lab.browser("alice") == "browser of alice"
        assert lab.victim == "victim of 99-tools"
        assert {"browser", "victim"} <= set(dir(lab))
        assert lab.net.private() == "only lab.net.private"
        with pytest.raises(AttributeError, match="99-tools lab has no attribute 'private'"):
            lab.private  # noqa: B018 - not exported
        with pytest.raises(AttributeError, match="'nonesuch'.*browser, victim"):
            lab.nonesuch  # noqa: B018
        assert not hasattr(lab, "__wrapped__")


def test_an_unknown_attribute_of_a_lab_without_network_names_the_lab() -> None:
    """No network, no exports: a typo is a plain AttributeError naming the lab."""
    with start_lab("00-welcome") as lab:
        with pytest.raises(AttributeError, match="00-welcome lab has no attribute 'brwoser'$"):
            lab.brwoser  # noqa: B018
        assert getattr(lab, "victim", None) is None
