"""What a hook prints: captured per call, shown capped, never costing it its deadline."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from labapp import Lab
from labapp.engine import hookio
from tests.lessons.test_l01_unprotected import solution_authorize


def _wait_for(capsys: pytest.CaptureFixture[str], text: str) -> str:
    """The hook thread shows its output just after answering: give it a moment."""
    seen = ""
    for _ in range(100):
        seen += capsys.readouterr().out
        if text in seen:
            return seen
        time.sleep(0.02)
    return seen


def test_a_buffer_keeps_the_first_characters_and_counts_the_rest() -> None:
    buffer = hookio.Buffer(limit=5)
    for part in ("abc", "defg", "", "hij"):
        buffer.write(part)
    assert (buffer.text, buffer.dropped) == ("abcde", 5)


def test_only_the_hooks_own_thread_is_captured() -> None:
    """Another thread printing at the same moment still reaches the real stdout."""
    other = threading.Event()
    with hookio.captured() as buffer:
        print("from the hook")
        thread = threading.Thread(target=lambda: (print("from elsewhere"), other.set()))
        thread.start()
        thread.join()
    assert buffer.text == "from the hook\n"
    assert other.is_set()
    assert not isinstance(sys.stdout, hookio._Stream)  # put back after the last hook


def test_a_chatty_hook_is_shown_capped_per_call(
    lab01: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """10,000 characters printed: the first 2,000 shown, then how many were left out."""

    def chatty(req):
        print("x" * 10_000)
        return True

    lab01.defend(authorize=chatty)
    capsys.readouterr()
    assert lab01.client.get("/products").status_code == 200
    out = _wait_for(capsys, "not shown")
    assert "x" * hookio.PER_CALL in out and "x" * (hookio.PER_CALL + 1) not in out
    assert "… 8001 more characters of authorize()'s output not shown" in out


def test_printing_a_lot_does_not_cost_a_correct_hook_its_deadline(
    lab01: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """A correct gate that prints megabytes per call still passes, and a grade shows at most
    its budget plus one line saying how much it left out."""
    right = solution_authorize()

    def chatty_but_right(req):
        for _ in range(200):
            print("debugging " * 500)  # 1 MB per call
        return right(req)

    lab01.defend(authorize=chatty_but_right)
    capsys.readouterr()
    lab01.grade()
    out = capsys.readouterr().out
    assert out.count("debugging") * len("debugging ") <= hookio.PER_GRADE + len("debugging ")
    assert "more characters of your hooks' output not shown" in out
