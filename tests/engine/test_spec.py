"""What a lesson declares: a hook's declared return type is enforced by the server."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from labapp.engine.lab import Lab
from labapp.engine.spec import Hook, LabState, Lesson


def _create_app(state: LabState) -> FastAPI:
    app = FastAPI()

    @app.get("/decide")
    async def decide() -> dict[str, bool]:
        return {"allowed": await state.call("decide")}

    return app


LESSON = Lesson(
    id="99-test",
    title="a lesson for the engine's tests",
    notebook="99-test.ipynb",
    minutes=1,
    create_app=_create_app,
    seed=lambda state: None,
    hooks=(Hook("decide", (), "allow or deny", lambda: False, returns=bool),),
)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1, "int 1"),
        ("False", "str 'False'"),
        (None, "NoneType None"),
        ([True], "list [True]"),
        ("x" * 100, "str '" + "x" * 56 + "..."),
    ],
)
def test_a_decision_that_is_not_a_bool_is_the_hooks_failure(value: object, shown: str) -> None:
    """Never guessed as allow or deny: a 500 naming the hook, what came back, what to return."""
    with Lab(LESSON) as lab:
        lab.defend(decide=lambda: value)
        response = lab.client.get("/decide")
        assert response.status_code == 500
        detail = response.json()["detail"]
        assert (
            detail
            == f"decide() raised TypeError: decide() returned {shown}; it must return True or False"
        )
        assert lab.guard.incidents[-1].kind == "returned"


@pytest.mark.parametrize("value", [True, False])
def test_a_bool_decision_is_served(value: bool) -> None:
    with Lab(LESSON) as lab:
        lab.defend(decide=lambda: value)
        assert lab.client.get("/decide").json() == {"allowed": value}


def test_a_grader_row_can_ask_a_hook_directly_with_the_same_checks() -> None:
    """state.call_blocking: the hook's answer, or its failure when it is not a bool."""
    from labapp.engine.guard import HookFailed

    with Lab(LESSON) as lab:
        lab.defend(decide=lambda: True)
        assert lab.state.call_blocking("decide") is True
        lab.defend(decide=lambda: "yes")
        with pytest.raises(HookFailed, match="must return True or False"):
            lab.state.call_blocking("decide")


def test_the_report_names_a_wrong_return_once() -> None:
    """The row reads 'decide() returned int 1; ...', not 'decide() returned: decide() ...'."""
    from labapp.engine.grading import Attack, Observed, run_item

    def probe(lab, http):
        return Observed(False, http.get("/decide").status_code)

    with Lab(LESSON) as lab:
        lab.defend(decide=lambda: 1)
        row = run_item(lab, Attack("probe", "ask", ("hint",), probe))
    assert "; decide() returned int 1; it must return True or False" in row.observed
    assert "decide() returned: decide()" not in row.observed
    assert row.hint.startswith("return exactly what the hook's contract says")


@pytest.mark.parametrize(
    ("value", "ok"),
    [({"sub": "alice"}, True), (None, True), (True, False), ("alice", False), ([], False)],
)
def test_a_hook_may_return_one_of_several_types(value: object, ok: bool) -> None:
    """returns=(dict, type(None)): claims or nothing; anything else says what it must be."""
    from labapp.engine.spec import _is_a, _names

    assert _is_a(value, (dict, type(None))) is ok
    assert _names((dict, type(None))) == "a dict or None"
    assert _is_a(1, bool) is False and _is_a(False, (bool,)) is True
