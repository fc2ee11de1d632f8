"""FlagBook: fresh per-start flags, and WrongFlag messages that never give the answer away."""

from __future__ import annotations

import re

import pytest

from labapp.engine.errors import LabError, UnknownExercise, WrongFlag
from labapp.engine.flags import FlagBook

LESSON = "01-unprotected"
NAMES = ("read-all-orders", "internal-export")


@pytest.fixture
def book() -> FlagBook:
    return FlagBook(LESSON, NAMES)


def _wrong_flag_message(book: FlagBook, name: str, value: object) -> str:
    """Check ``value`` and return the WrongFlag message, asserting it hides the right flag."""
    with pytest.raises(WrongFlag) as caught:
        book.check(name, value)
    message = str(caught.value)
    right = book.flag(name)
    assert right not in message
    assert right[-33:-1] not in message  # not even the bare 32-hex MAC
    return message


def test_flag_has_the_lesson_name_and_mac_form(book: FlagBook) -> None:
    """A flag reads FLAG{lesson:name:32 lowercase hex}."""
    flag = book.flag("read-all-orders")
    assert re.fullmatch(r"FLAG\{01-unprotected:read-all-orders:[0-9a-f]{32}\}", flag)


def test_each_lab_start_draws_a_fresh_key() -> None:
    """Two FlagBooks for the same lesson give different flags for the same exercise."""
    first, second = FlagBook(LESSON, NAMES), FlagBook(LESSON, NAMES)
    assert first.flag("read-all-orders") != second.flag("read-all-orders")


def test_all_flags_lists_one_flag_per_exercise(book: FlagBook) -> None:
    """all_flags() gives each exercise's flag, in order, for the store to redact."""
    assert book.all_flags() == [book.flag(name) for name in NAMES]


def test_right_flag_is_accepted(book: FlagBook) -> None:
    """check() returns quietly for the right flag."""
    assert book.check("read-all-orders", book.flag("read-all-orders")) is None


def test_right_flag_with_surrounding_whitespace_is_accepted(book: FlagBook) -> None:
    """A flag copied with stray spaces or a newline still counts."""
    book.check("read-all-orders", "  " + book.flag("read-all-orders") + "\n")


def test_wrong_flag_is_an_assertion_error_and_a_lab_error() -> None:
    """WrongFlag is an AssertionError (nbval fails the grader cell) and a LabError."""
    assert issubclass(WrongFlag, AssertionError)
    assert issubclass(WrongFlag, LabError)


@pytest.mark.parametrize("value", [None, 42, b"FLAG{01-unprotected:read-all-orders:00}"])
def test_non_string_is_refused_with_its_type(book: FlagBook, value: object) -> None:
    """A non-string is refused with a message naming its type."""
    message = _wrong_flag_message(book, "read-all-orders", value)
    assert type(value).__name__ in message


def test_bytes_holding_the_right_flag_are_refused_without_echoing_it(book: FlagBook) -> None:
    """Even bytes that encode the right flag are refused, and the message does not echo them."""
    value = book.flag("read-all-orders").encode()
    assert "bytes" in _wrong_flag_message(book, "read-all-orders", value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "flag",
        "FLAG{01-unprotected:read-all-orders:abc}",
        "FLAG{01-unprotected:read-all-orders:" + "A" * 32 + "}",
        "01-unprotected:read-all-orders:" + "0" * 32,
    ],
)
def test_malformed_string_is_explained(book: FlagBook, value: str) -> None:
    """A string that is not shaped like a flag is refused with the expected shape."""
    message = _wrong_flag_message(book, "read-all-orders", value)
    assert "is not a flag" in message
    assert "<32 hex>" in message


@pytest.mark.parametrize("wrap", ["the flag is {}", "{}!", "{{{}}}"])
def test_malformed_string_around_the_right_flag_does_not_echo_it(book: FlagBook, wrap: str) -> None:
    """A malformed string containing the right flag is refused without repeating it whole."""
    value = wrap.format(book.flag("read-all-orders"))
    assert "is not a flag" in _wrong_flag_message(book, "read-all-orders", value)


def test_flag_from_another_lesson_names_both_lessons(book: FlagBook) -> None:
    """A flag of another lesson is refused, naming the lesson it belongs to."""
    other = FlagBook("00-welcome", NAMES).flag("read-all-orders")
    message = _wrong_flag_message(book, "read-all-orders", other)
    assert "00-welcome" in message
    assert LESSON in message


def test_flag_of_another_exercise_names_both_exercises(book: FlagBook) -> None:
    """The flag of a sibling exercise is refused, naming which exercise it is for."""
    sibling = book.flag("internal-export")
    message = _wrong_flag_message(book, "read-all-orders", sibling)
    assert "'internal-export'" in message
    assert "'read-all-orders'" in message


def test_stale_flag_is_explained_without_revealing_the_right_one(book: FlagBook) -> None:
    """A flag from a retired lab start is recognised as coming from an earlier start."""
    old = FlagBook(LESSON, NAMES)
    stale = old.flag("read-all-orders")
    old.retire()
    message = _wrong_flag_message(book, "read-all-orders", stale)
    assert "earlier start" in message


def test_altered_flag_is_refused_as_not_this_labs(book: FlagBook) -> None:
    """Changing one hex digit of the right flag makes it wrong, and not 'stale'."""
    right = book.flag("read-all-orders")
    digit = right[-2]
    altered = right[:-2] + ("0" if digit != "0" else "1") + right[-1]
    message = _wrong_flag_message(book, "read-all-orders", altered)
    assert "altered" in message
    assert "earlier start" not in message


def test_flag_of_a_live_other_start_is_refused(book: FlagBook) -> None:
    """A flag from another lab start that was never retired (another kernel) is refused."""
    other = FlagBook(LESSON, NAMES).flag("read-all-orders")
    assert "another kernel" in _wrong_flag_message(book, "read-all-orders", other)


def test_unknown_exercise_lists_the_valid_names(book: FlagBook) -> None:
    """check() for an exercise the lesson lacks raises UnknownExercise listing the real ones."""
    with pytest.raises(UnknownExercise) as caught:
        book.check("no-such-exercise", book.flag("read-all-orders"))
    message = str(caught.value)
    assert "'no-such-exercise'" in message
    assert all(repr(name) in message for name in NAMES)
    assert book.flag("read-all-orders") not in message


def test_unknown_exercise_is_a_lab_error_and_lookup_error(book: FlagBook) -> None:
    """flag() for an unknown name raises UnknownExercise, a LabError and a LookupError."""
    with pytest.raises(LookupError) as caught:
        book.flag("no-such-exercise")
    assert isinstance(caught.value, UnknownExercise)
    assert isinstance(caught.value, LabError)


def test_lesson_without_flags_says_so() -> None:
    """A lesson with no flags says so instead of listing nothing."""
    with pytest.raises(UnknownExercise, match="has no flags"):
        FlagBook("00-welcome", ()).check("anything", "FLAG{x:y:z}")
