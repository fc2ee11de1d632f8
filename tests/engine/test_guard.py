"""Learner hooks run under a deadline: errors become 500s, hangs become 504s."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from labapp import DefenseBreached, Lab
from labapp.engine.guard import check_signature


def _raises(req):
    return {"role": "admin"}["missing"]


def _spins(req):
    while True:
        pass


def _sleeps(req):
    time.sleep(3)
    return True


async def _async_sleeps(req):
    await asyncio.sleep(30)
    return True


async def _async_blocks(req):
    time.sleep(3)  # a blocking call inside async def: must not freeze the server
    return True


def test_a_hook_that_raises_gives_a_500_naming_the_exception(lab01: Lab) -> None:
    """The learner sees which exception their function raised, not a bare 500."""
    lab01.defend(authorize=_raises)
    response = lab01.client.get("/products")
    assert response.status_code == 500
    assert "authorize() raised KeyError" in response.json()["detail"]


def test_a_raising_hook_is_named_in_the_grader_report(lab01: Lab) -> None:
    """The report row says which hook raised what, and where."""
    lab01.defend(authorize=_raises)
    with pytest.raises(DefenseBreached) as caught:
        lab01.grade()
    report = caught.value.report
    assert not any(row.passed for row in report.rows)
    assert "authorize() raised: KeyError" in str(report)
    assert "5xx is never a pass" in str(report)


@pytest.mark.parametrize("hook", [_spins, _sleeps, _async_sleeps, _async_blocks])
def test_a_hook_that_hangs_gives_a_504_and_the_server_keeps_serving(lab01: Lab, hook) -> None:
    """Sync or async, a hung hook costs one request, never the server or the notebook."""
    lab01.defend(authorize=hook)
    response = lab01.client.get("/products")
    assert response.status_code == 504
    assert "did not return within" in response.json()["detail"]
    lab01.undefend()
    assert lab01.client.get("/products").status_code == 200


def test_a_runaway_loop_is_ended_after_its_deadline(lab01: Lab) -> None:
    """The thread of a `while True` hook does not keep burning a core forever."""
    lab01.defend(authorize=_spins)
    assert lab01.client.get("/products").status_code == 504
    for _ in range(100):
        if not [t for t in threading.enumerate() if t.name == "lab-hook-authorize"]:
            break
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "lab-hook-authorize"]


def test_stop_does_not_hang_on_a_hung_hook(lab01: Lab) -> None:
    """stop() returns even while a learner's hook is still sleeping."""
    lab01.defend(authorize=_sleeps)
    assert lab01.client.get("/products").status_code == 504
    lab01.stop()
    assert "stopped" in repr(lab01)


def test_signature_check_explains_what_is_expected() -> None:
    """A wrong signature is described with the parameters the hook must accept."""
    assert check_signature("authorize", lambda req: True, ("req",)) is None
    assert check_signature("authorize", lambda *args: True, ("req",)) is None
    problem = check_signature("authorize", lambda req, user: True, ("req",))
    assert problem and "must accept (req)" in problem
    assert "must be a function" in (check_signature("authorize", 42, ("req",)) or "")


def test_grading_waits_for_a_hung_hook_only_once(lab01: Lab) -> None:
    """After one timeout the grader stops calling that hook, so grading never looks hung."""
    calls: list[int] = []

    def hangs(req):
        calls.append(1)
        time.sleep(2)
        return True

    lab01.defend(authorize=hangs)
    with pytest.raises(DefenseBreached) as caught:
        lab01.grade()
    assert calls == [1]
    assert all("timed out" in row.observed for row in caught.value.report.rows)
    assert lab01.client.get("/products").status_code == 504  # outside grading: called again
    assert calls == [1, 1]


def test_the_report_names_the_learners_line_not_the_courses() -> None:
    """An error raised inside labapp (engine or lesson code) is placed at the learner's call."""
    from labapp.engine.guard import _where
    from labapp.lessons import get_lesson

    def learner_hook():
        return get_lesson(42)  # raises inside labapp/lessons/__init__.py

    with pytest.raises(Exception) as caught:
        learner_hook()
    assert _where(caught.value) == "line " + str(learner_hook.__code__.co_firstlineno + 1) + (
        ": return get_lesson(42)  # raises inside labapp/lessons/__init__.py"
    )


async def _async_spins(req):
    while True:  # never awaits: a cancel alone never reaches it
        pass


def test_a_busy_async_hook_is_ended_after_its_deadline(lab01: Lab) -> None:
    """An `async def` that never awaits does not keep burning a core either."""
    lab01.defend(authorize=_async_spins)
    assert lab01.client.get("/products").status_code == 504
    for _ in range(100):
        if not [t for t in threading.enumerate() if t.name == "lab-hook-authorize"]:
            break
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "lab-hook-authorize"]


def _blocked_hook(release: threading.Event):
    def stuck(req):
        release.wait()  # blocked in C: Python cannot interrupt it
        return True

    return stuck


def test_grade_refuses_beside_a_hook_python_cannot_end(lab01: Lab) -> None:
    """A call stuck past its deadline: grade() says so plainly instead of judging beside it."""
    from labapp import HookStillRunning
    from tests.lessons.test_l01_unprotected import solution_authorize

    release = threading.Event()
    try:
        lab01.defend(authorize=_blocked_hook(release))
        assert lab01.client.get("/products").status_code == 504
        lab01.defend(authorize=solution_authorize())
        with pytest.raises(HookStillRunning, match=r"authorize\(\) \(past its deadline"):
            lab01.grade()
    finally:
        release.set()
    lab01.grade()  # once it has ended, grading goes on


def test_stop_says_what_it_could_not_end_and_later_grades_refuse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The stuck call outlives its lab: stop() names it, another lab's grade() refuses."""
    from labapp import HookStillRunning, start_lab
    from tests.lessons.test_l01_unprotected import solution_authorize

    release = threading.Event()
    try:
        with start_lab("01-unprotected") as first:
            first.defend(authorize=_blocked_hook(release))
            assert first.client.get("/products").status_code == 504
        assert "a call of your hook is still running: authorize()" in capsys.readouterr().out
        with start_lab("01-unprotected") as second:
            second.defend(authorize=solution_authorize())
            with pytest.raises(HookStillRunning):
                second.grade()
            release.set()
            second.grade()
    finally:
        release.set()


def test_an_interrupted_grade_says_so_in_one_line(lab01: Lab) -> None:
    """Pressing stop during grade(): a KeyboardInterrupt with one sentence, not a wall."""
    import _thread

    interrupted = []

    def interrupts(req):
        if not interrupted:
            interrupted.append(1)
            _thread.interrupt_main()
        return False

    lab01.defend(authorize=interrupts)
    with pytest.raises(KeyboardInterrupt, match="grade\\(\\) was interrupted: nothing was graded"):
        lab01.grade()


@pytest.mark.parametrize(
    ("load", "stretch", "allowed"),
    [(0.3, "5", 1.0), (2.0, "5", 1.0), (8.0, "5", 4.0), (50.0, "5", 5.0), (8.0, "1", 1.0)],
)
def test_a_busy_machine_stretches_the_deadline_within_bounds(
    monkeypatch: pytest.MonkeyPatch, load: float, stretch: str, allowed: float
) -> None:
    """Load per core above 1 stretches a hook's second, at most five-fold (or as set)."""
    from labapp.engine import guard

    monkeypatch.setattr(guard.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(guard.os, "cpu_count", lambda: 2)
    monkeypatch.setenv("LABAPP_DEADLINE_STRETCH", stretch)
    assert guard.Guard().allowed() == allowed
