"""Lesson 00: the bookshop enforces its own truth, and the quiz is graded against it."""

from __future__ import annotations

import copy

import pytest

from labapp import Lab, WrongAnswer
from labapp.lessons.l00_welcome.app import TRUTH
from tests.conftest import ROOT

import nbformat  # isort: skip


def _solution_answer() -> dict:
    """The classification the solution notebook gives."""
    nb = nbformat.read(ROOT / "solutions" / "00-welcome-threat-modeling.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "classification = {" in c.source)
    namespace: dict = {}
    exec(cell.source, namespace)  # noqa: S102 - our own notebook's cell
    return namespace["classification"]


def test_the_truth_covers_exactly_the_routes_in_the_openapi_document(lab00: Lab) -> None:
    """Every published route is classified, and nothing else is."""
    paths = lab00.client.get("/openapi.json").json()["paths"]
    published = {f"{m.upper()} {p}" for p, ops in paths.items() for m in ops}
    assert published == set(TRUTH)


def _call(lab: Lab, route: str, token: str | None):
    method, path = route.split(" ", 1)
    path = path.replace("{book_id}", "1").replace("{user_id}", "2")
    body = {
        "/cart/items": {"book_id": 1},
        "/account": {"display_name": "Al"},
        "/admin/books": {"title": "New", "price_cents": 100},
    }.get(path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return lab.client.request(method, path, headers=headers, json=body)


ADMITTED = {
    "anyone": {None, "customer", "admin", "service"},
    "customer": {"customer", "admin"},
    "admin": {"admin"},
    "service": {"service"},
}


@pytest.mark.parametrize("route", sorted(TRUTH))
def test_the_lab_enforces_who_may_reach_each_route(lab00: Lab, route: str) -> None:
    """The welcome lab is protected properly: each route admits exactly its audience."""
    tokens = {user["role"]: user["token"] for user in lab00.users}
    for role in (None, "customer", "admin", "service"):
        status = _call(lab00, route, tokens[role] if role else None).status_code
        if role in ADMITTED[TRUTH[route][2]]:
            assert 200 <= status < 300, (route, role, status)
        else:
            assert status == (401 if role is None else 403), (route, role, status)


def test_the_solution_classification_passes(lab00: Lab) -> None:
    """The solution notebook's answer is graded right on every row."""
    report = lab00.check_answer("classify", _solution_answer())
    assert report.passed and len(report.rows) == len(TRUTH)


def _wrong(edit) -> dict:
    answer = copy.deepcopy(_solution_answer())
    edit(answer)
    return answer


WRONG_ANSWERS = {
    "a GET marked as changing state": (
        lambda a: a["GET /orders"].update(changes_state=True),
        "GET /orders",
    ),
    "metrics open to anyone": (lambda a: a["GET /metrics"].update(who="anyone"), "GET /metrics"),
    "a route left out": (
        lambda a: a.pop("DELETE /admin/users/{user_id}"),
        "DELETE /admin/users/{user_id}",
    ),
    "a route that does not exist": (lambda a: a.update({"GET /admin": {}}), "GET /admin"),
    "the asset as free text": (
        lambda a: a["POST /orders"].update(asset="the orders table"),
        "POST /orders",
    ),
    "changes_state as a string": (
        lambda a: a["PATCH /account"].update(changes_state="yes"),
        "PATCH /account",
    ),
}


@pytest.mark.parametrize("mistake", list(WRONG_ANSWERS))
def test_a_plausible_wrong_classification_fails_on_its_row(lab00: Lab, mistake: str) -> None:
    """Each mistake fails the grader, naming the route it is about."""
    edit, route = WRONG_ANSWERS[mistake]
    with pytest.raises(WrongAnswer) as caught:
        lab00.check_answer("classify", _wrong(edit))
    assert [row.id for row in caught.value.report.failures] == [route]


@pytest.mark.parametrize("answer", [None, [], "GET /books: anyone"])
def test_an_answer_of_the_wrong_shape_is_explained(lab00: Lab, answer) -> None:
    """Not a dict: one row saying what shape is expected."""
    with pytest.raises(WrongAnswer, match="format"):
        lab00.check_answer("classify", answer)


def test_every_decision_lands_in_the_audit_log_without_tokens(lab00: Lab) -> None:
    """Allowed and denied requests are both recorded, with the actor and never the token."""
    token = lab00.users[0]["token"]
    lab00.client.get("/orders")
    lab00.client.get("/orders", headers={"Authorization": f"Bearer {token}"})
    events = lab00.audit()
    assert [(e["actor"], e["decision"]) for e in events[-2:]] == [
        ("anonymous", "deny"),
        ("alice", "allow"),
    ]
    assert token not in str(events)


def test_the_notebook_opens_no_hint_for_the_learner() -> None:
    """Every hint in the progress file is one the learner asked for: no cell calls lab.hint,
    and the exercise says where the ladder is."""
    nb = nbformat.read(ROOT / "notebooks" / "00-welcome-threat-modeling.ipynb", as_version=4)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    assert not any("lab.hint(" in source for source in code)
    text = "\n".join(cell.source for cell in nb.cells)
    ladder = "first a nudge, then the technique, then the steps."
    assert f'Stuck? `lab.hint("classify")` — {ladder}' in text
