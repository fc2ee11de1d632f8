"""No lab answers hostile input with a 5xx: schemathesis against every lab's OpenAPI, and a
hand-made set of the inputs it does not generate (lone surrogates, huge and deep JSON...).

Each lab is fuzzed with its weak defaults, anonymously and signed in, and with the solution
notebook's defense, signed in. ``make test`` runs 20 examples per route, the same every run
(LABAPP_FUZZ_EXAMPLES); ``make fuzz`` runs 500, new ones each time. A 5xx is reported with
the request that caused it; none is allowed (the only 5xx a lab may give is a *learner's*
hook failing, and no learner code runs here).
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI, Request
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

import labapp
from labapp import Lab, start_lab
from labapp.engine.grading import grader_client
from labapp.lessons import all_lessons
from labapp.tools import authoring
from tests.conftest import ROOT

EXAMPLES = int(os.environ.get("LABAPP_FUZZ_EXAMPLES", "20"))
# The bounded run of `make test` draws the same examples every time (a CI run never flakes);
# `make fuzz` sets LABAPP_FUZZ_RANDOM=1 to explore new ones on each run.
DERANDOMIZE = os.environ.get("LABAPP_FUZZ_RANDOM") != "1"
LESSONS = [lesson.id for lesson in all_lessons()]
MODES = ["weak-anonymous", "weak-signed-in", "solution-signed-in"]


def signed_in(lab: Lab) -> dict[str, str]:
    """Credentials of the lab's most privileged listed user, as its legitimate clients send."""
    users = sorted(lab.users, key=lambda u: u.get("role") != "admin")
    if not users:
        return {}
    user = users[0]
    if "token" in user:
        return {"Authorization": f"Bearer {user['token']}"}
    if "api_key" in user:
        return {"X-API-Key": user["api_key"]}
    body = {"username": user["username"], "password": user["password"]}
    answer = lab.client.post("/login", json=body).json()
    token = answer.get("access_token") or answer.get("token")
    return {"Authorization": f"Bearer {token}"}


def defended(lab: Lab) -> None:
    """Plug in every hook as the lesson's solution notebook writes it."""
    path = ROOT / "solutions" / lab.lesson.notebook
    given_names = {name: getattr(labapp, name) for name in labapp.__all__} | {"lab": lab}
    hooks = authoring.solution_hooks(path, [h.name for h in lab.lesson.hooks], **given_names)
    if hooks:
        lab.defend(**hooks)


def _server_errors(lab: Lab, headers: dict[str, str], examples: int = EXAMPLES) -> list[str]:
    schema = schemathesis.openapi.from_dict(lab.server.app.openapi())
    found: list[str] = []
    verify = str(lab.ca_file) if lab.ca_file else True  # schemathesis calls with requests
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=DERANDOMIZE,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call(base_url=lab.url, headers=headers, verify=verify, timeout=10)
            if response.status_code >= 500:
                found.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code} "
                    f"{response.text[:160]!r} (query {case.query!r}, body {case.body!r:.120})"
                )

        call()
    return found


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lesson_id", LESSONS)
def test_schemathesis_finds_no_server_error(lesson_id: str, mode: str) -> None:
    """Schema-valid and schema-breaking requests to every route: a 4xx at worst, never a 5xx."""
    with start_lab(lesson_id) as lab:
        if mode.startswith("solution"):
            defended(lab)
        headers = signed_in(lab) if mode.endswith("signed-in") else {}
        errors = _server_errors(lab, headers)
    assert errors == [], "\n".join(errors[:10])


# -- what schemathesis does not generate -------------------------------------------------

HUGE_INT = "9" * 40
SURROGATE = '"\\ud800"'  # a lone surrogate, JSON-escaped: valid JSON, not valid text
HOSTILE_BODIES: dict[str, bytes] = {
    "a lone surrogate": f'{{"username": {SURROGATE}, "password": {SURROGATE}}}'.encode(),
    "an integer beyond 64 bits": f'{{"username": {HUGE_INT}, "id": {HUGE_INT}}}'.encode(),
    "duplicate keys": b'{"username": "alice", "username": {"$ne": 1}, "password": []}',
    "deeply nested": b"[" * 5000 + b"]" * 5000,
    "a huge body": json.dumps({"username": "a" * 2_000_000, "password": "b"}).encode(),
    "not UTF-8": b'{"username": "\xff\xfe", "password": "\xc3"}',
    "not JSON": b"username=alice&password=x",
    "a bare number": b"1e999999",
}
HOSTILE_SEGMENTS = [
    HUGE_INT,
    "-" + HUGE_INT,
    "%ED%A0%80",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "1e9999",
]


def _fill(path: str, value: str) -> str:
    while "{" in path:
        start = path.index("{")
        path = path[:start] + value + path[path.index("}", start) + 1 :]
    return path


def _hostile_requests(lab: Lab) -> list[tuple[str, str, dict[str, Any]]]:
    spec = lab.server.app.openapi()
    requests = []
    for path, methods in spec["paths"].items():
        for method in methods:
            method = method.upper()
            segments = HOSTILE_SEGMENTS if "{" in path else ["x"]
            for segment in segments:
                url = _fill(path, segment)
                # A surrogate's bytes, percent-encoded: not valid UTF-8 once decoded.
                requests.append((method, f"{url}?q=%ED%A0%80&limit={HUGE_INT}&id=-1e999", {}))
            if method in ("POST", "PATCH", "PUT", "DELETE"):
                for body in HOSTILE_BODIES.values():
                    headers = {"Content-Type": "application/json"}
                    requests.append(
                        (method, _fill(path, "1"), {"content": body, "headers": headers})
                    )
    return requests


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lesson_id", LESSONS)
def test_hand_made_hostile_input_gets_no_server_error(lesson_id: str, mode: str) -> None:
    """Lone surrogates, integers beyond 64 bits, duplicate keys, deep and huge JSON, bytes
    that are not UTF-8, in paths, queries and bodies: a 4xx at worst."""
    errors = []
    with start_lab(lesson_id) as lab:
        if mode.startswith("solution"):
            defended(lab)
        auth = signed_in(lab) if mode.endswith("signed-in") else {}
        with grader_client(lab.url, **lab.client_options()) as http:
            for method, url, options in _hostile_requests(lab):
                headers = {**auth, **options.pop("headers", {})}
                try:
                    response = http.request(method, url, headers=headers, **options)
                except httpx.HTTPError as exc:  # a refused request is not a crash
                    errors.append(f"{method} {url}: transport error {exc!r}")
                    continue
                if response.status_code >= 500:
                    errors.append(
                        f"{method} {url} -> {response.status_code} {response.text[:160]!r}"
                    )
    assert errors == [], "\n".join(errors[:10])


# -- the fuzzers can fail ------------------------------------------------------------------


def _fragile_app(state: Any) -> Any:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        if item_id >= 2**31:  # the kind of limit a database column has
            raise ValueError("this id cannot be stored")
        return {"id": item_id}

    @app.post("/notes")
    async def note(request: Request) -> dict[str, int]:
        body = await request.json()  # read by hand: no model to refuse a lone surrogate
        return {"bytes": len(str(body["text"]).encode())}

    return app


def _fragile_lab() -> Lab:
    from labapp.engine.lab import Lab as EngineLab
    from labapp.engine.spec import Lesson

    lesson = Lesson("98-fragile", "a fragile app", "98-x.ipynb", 1, _fragile_app, lambda s: None)
    return EngineLab(lesson)


def test_schemathesis_reports_a_route_that_crashes() -> None:
    """The harness is not blind: a route that divides by zero is caught with its request."""
    with _fragile_lab() as lab:
        errors = _server_errors(lab, {}, examples=50)
    assert any(error.startswith("GET /items/") and "-> 500" in error for error in errors)


def test_the_hand_made_inputs_catch_a_route_that_trusts_text_to_encode() -> None:
    """A lone surrogate in a JSON string crashes an app that encodes it: caught."""
    with _fragile_lab() as lab, grader_client(lab.url) as http:
        headers = {"Content-Type": "application/json"}
        answer = http.post(
            "/notes",
            content=HOSTILE_BODIES["a lone surrogate"].replace(b"username", b"text"),
            headers=headers,
        )
    assert answer.status_code == 500
