"""Progress that survives: recorded by real labs, written atomically, merged, never lost."""

from __future__ import annotations

import json
import multiprocessing
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from labapp import DefenseBreached, UnknownLesson, WrongAnswer, WrongFlag, start_lab
from labapp.tools import progress
from labapp.tools.cli import main as labapp_main
from labapp.tools.progress import FILENAME, ProgressWarning, load, record, reset, scoreboard
from tests.conftest import ROOT
from tests.lessons.test_l00_welcome import _solution_answer
from tests.lessons.test_l01_unprotected import solution_authorize


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    progress._warned.clear()  # "warn once" is per kernel; each test is a fresh start


@pytest.fixture
def progress_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "course" / FILENAME
    monkeypatch.setenv(progress.ENV, str(path))
    return path


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder nobody may create files in: read-only, or (as root, who ignores modes) /sys."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            fd = os.open(candidate / "labapp-probe", os.O_CREAT | os.O_WRONLY, 0o644)
        except OSError:
            return candidate
        os.close(fd)
        os.unlink(candidate / "labapp-probe")
    pytest.skip("no folder here refuses new files to this user")


# -- the lab records as it grades ---------------------------------------------------------


def test_the_tests_never_write_progress_into_the_repository() -> None:
    """conftest points LABAPP_PROGRESS outside the repo before any test or kernel runs."""
    assert ROOT not in Path(os.environ[progress.ENV]).resolve().parents


def test_a_captured_flag_is_recorded_with_its_time(progress_file: Path) -> None:
    """The real read-all-orders attack on lesson 01, then check_flag: done, with a time."""
    with start_lab("01-unprotected") as lab:
        flag = lab.client.get("/orders").json()["flag"]
        lab.check_flag("read-all-orders", flag)
    done = load()["01-unprotected"]
    assert list(done) == ["read-all-orders"]
    when = datetime.fromisoformat(done["read-all-orders"]["done_at"])
    assert abs(datetime.now(timezone.utc) - when) < timedelta(minutes=1)
    assert json.loads(progress_file.read_text())["version"] == 1


def test_a_wrong_flag_records_nothing(progress_file: Path) -> None:
    """A flag check that fails leaves no trace."""
    with start_lab("01-unprotected") as lab:
        other = lab.client.get("/internal/export").json()["flag"]
        with pytest.raises(WrongFlag):
            lab.check_flag("read-all-orders", other)
        with pytest.raises(WrongFlag):
            lab.check_flag(
                "read-all-orders", "FLAG{01-unprotected:read-all-orders:" + "0" * 32 + "}"
            )
    assert load() == {}
    assert not progress_file.exists()


def test_a_passing_grade_records_defend_and_a_failing_one_does_not(progress_file: Path) -> None:
    """lab.grade() against the weak gate records nothing; against the solution, defend."""
    with start_lab("01-unprotected") as lab:
        with pytest.raises(DefenseBreached):
            lab.grade()
        assert load() == {}
        lab.defend(authorize=solution_authorize())
        lab.grade()
    assert list(load()["01-unprotected"]) == ["defend"]


def test_a_right_quiz_answer_is_recorded_and_a_wrong_one_is_not(progress_file: Path) -> None:
    """check_answer records the quiz only when it passes."""
    answer = _solution_answer()
    with start_lab("00-welcome") as lab:
        wrong = {**answer, "GET /health": {**answer["GET /health"], "who": "admin"}}
        with pytest.raises(WrongAnswer):
            lab.check_answer("classify", wrong)
        assert load() == {}
        lab.check_answer("classify", answer)
    assert list(load()["00-welcome"]) == ["classify"]


def test_doing_an_exercise_again_keeps_its_first_time(progress_file: Path) -> None:
    """A repeat is not a change: the file is not rewritten."""
    record("01-unprotected", "fail-open")
    first = progress_file.read_bytes()
    record("01-unprotected", "fail-open")
    assert progress_file.read_bytes() == first


# -- nothing is ever lost -----------------------------------------------------------------


def test_a_crash_mid_write_keeps_the_old_file(
    progress_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the process dies before the rename, the old file is whole and no temp is left."""
    record("01-unprotected", "read-all-orders")
    before = progress_file.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.warns(ProgressWarning, match="could not save your progress"):
        assert record("01-unprotected", "fail-open") is False
    monkeypatch.undo()
    assert progress_file.read_bytes() == before
    assert sorted(p.name for p in progress_file.parent.iterdir()) == [FILENAME, FILENAME + ".lock"]


@pytest.mark.parametrize(
    "content",
    ['{"version": 1, "lessons": {"01-unprot', "[1, 2, 3]", '{"version": 1, "lessons": {"01": 7}}'],
    ids=["truncated-json", "not-an-object", "wrong-shape"],
)
def test_a_corrupt_file_is_set_aside_with_a_warning(progress_file: Path, content: str) -> None:
    """Never reset silently: the bad file is renamed, both paths are named, progress goes on."""
    progress_file.parent.mkdir()
    progress_file.write_text(content)
    with pytest.warns(ProgressWarning) as caught:
        assert record("01-unprotected", "trusted-header")
    (aside,) = progress_file.parent.glob(FILENAME + ".corrupt-*")
    assert aside.read_text() == content
    message = str(caught[0].message)
    assert str(progress_file) in message and str(aside) in message
    assert list(load()["01-unprotected"]) == ["trusted-header"]


def _record_many(path: str, worker: int, count: int, barrier: object) -> None:
    os.environ[progress.ENV] = path
    barrier.wait()  # type: ignore[attr-defined]
    for n in range(count):
        assert record("02-api-keys", f"worker{worker}-{n}")


def test_two_processes_recording_at_once_both_survive(progress_file: Path) -> None:
    """Two kernels writing at the same moment merge: no exercise of either is lost."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_record_many, args=(str(progress_file), w, 25, barrier))
        for w in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    done = load()["02-api-keys"]
    assert set(done) == {f"worker{w}-{n}" for w in range(2) for n in range(25)}


def test_a_read_only_folder_warns_once_and_the_lab_keeps_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Progress cannot be saved: one warning, and every grader still answers as usual."""
    folder = _unwritable_folder(tmp_path)
    monkeypatch.setenv(progress.ENV, str(folder / FILENAME))
    try:
        with pytest.warns(ProgressWarning) as caught, start_lab("01-unprotected") as lab:
            lab.check_flag("read-all-orders", lab.client.get("/orders").json()["flag"])
            lab.check_flag("internal-export", lab.client.get("/internal/export").json()["flag"])
            assert lab.client.get("/health").status_code == 200
        assert capsys.readouterr().out.count("✅ Correct") == 2
        assert len([w for w in caught if w.category is ProgressWarning]) == 1
        assert str(folder / FILENAME) in str(caught[0].message)
        assert not (folder / FILENAME).exists()
        assert scoreboard().done == 0  # reading still works
    finally:
        (tmp_path / "read-only").chmod(0o755)


# -- where the file lives -----------------------------------------------------------------


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A course folder as make lab and nbgitpuller leave it, under a home folder."""
    monkeypatch.delenv(progress.ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = tmp_path / "home" / "api-auth-course"
    for sub in ("notebooks/data", "solutions", "labapp"):
        (root / sub).mkdir(parents=True)
    return root


@pytest.mark.parametrize("cwd", ["notebooks", "notebooks/data", "solutions", ".", "labapp"])
def test_every_folder_of_the_course_shares_one_file(
    course: Path, monkeypatch: pytest.MonkeyPatch, cwd: str
) -> None:
    """Kernels run in notebooks/ (laptop and JupyterHub); the CLI in the course folder."""
    monkeypatch.chdir(course / cwd)
    assert progress.progress_path() == course.resolve() / FILENAME


def test_a_folder_named_notebooks_gives_its_parent_even_without_siblings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A learner copy cloned elsewhere: its notebooks folder still points one level up."""
    monkeypatch.delenv(progress.ENV)
    (tmp_path / "repo" / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "notebooks")
    assert progress.progress_path() == (tmp_path / "repo").resolve() / FILENAME


def test_a_flat_folder_of_notebooks_keeps_the_file_beside_them(
    course: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No notebooks/ anywhere up to home: the current folder; the walk stops at home."""
    flat = course.parent / "flat-course"
    flat.mkdir()
    (course.parent.parent / "notebooks").mkdir()  # above home: must not be reached
    monkeypatch.chdir(flat)
    assert progress.progress_path() == flat.resolve() / FILENAME


def test_labapp_progress_overrides_the_course_folder(
    course: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """LABAPP_PROGRESS is the file, wherever the kernel runs; empty means unset."""
    monkeypatch.chdir(course / "notebooks")
    elsewhere = tmp_path / "elsewhere" / "mine.json"
    monkeypatch.setenv(progress.ENV, str(elsewhere))
    assert progress.progress_path() == elsewhere
    record("03-passwords", "crack-dump")
    assert list(load(elsewhere)["03-passwords"]) == ["crack-dump"]
    assert not (course / FILENAME).exists()
    monkeypatch.setenv(progress.ENV, "relative.json")
    assert progress.progress_path() == (course / "notebooks").absolute() / "relative.json"
    monkeypatch.setenv(progress.ENV, "")
    assert progress.progress_path() == course.resolve() / FILENAME


# -- the scoreboard and reset -------------------------------------------------------------


def test_the_scoreboard_lists_every_exercise_of_every_lesson(progress_file: Path) -> None:
    """Flags, quizzes and defend, done or not, with counts per lesson and a total."""
    record("00-welcome", "classify")
    record("01-unprotected", "read-all-orders")
    record("01-unprotected", "defend")
    board = scoreboard()
    ids = [lesson.id for lesson in board.lessons]
    assert ids[:2] == ["00-welcome", "01-unprotected"] and len(ids) >= 8
    l01 = board.lessons[1]
    assert [(i.kind, i.name, i.done) for i in l01.items] == [
        ("flag", "read-all-orders", True),
        ("flag", "internal-export", False),
        ("flag", "trusted-header", False),
        ("flag", "fail-open", False),
        ("defend", "defend", True),
    ]
    assert [i.name for i in board.lessons[0].items] == ["classify"]  # no hooks, no defend
    text = str(board)
    assert "✓ flag   read-all-orders" in text and "· flag   internal-export" in text
    assert f"Total: 3/{board.total} exercises done" in text
    page = board._repr_html_()
    assert "<table>" in page and "3/" in page and "2/5" in page


def test_labapp_progress_prints_the_scoreboard(
    progress_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`labapp progress` shows the same scoreboard; --file points elsewhere."""
    record("01-unprotected", "fail-open")
    assert labapp_main(["progress"]) == 0
    out = capsys.readouterr().out
    assert "✓ flag   fail-open" in out and "01-unprotected       1/5" in out
    assert labapp_main(["progress", "--file", str(progress_file.parent / "other.json")]) == 0
    assert "Total: 0/" in capsys.readouterr().out


def test_reset_clears_one_lesson_and_keeps_the_others(
    progress_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--reset takes an id or a number, asks nothing, and touches no other lesson."""
    record("00-welcome", "classify")
    record("01-unprotected", "fail-open")
    record("01-unprotected", "defend")
    assert labapp_main(["progress", "--reset", "01"]) == 0
    assert "Cleared lesson 01-unprotected: 2 exercise(s)" in capsys.readouterr().out
    assert load() == {"00-welcome": load()["00-welcome"]}
    assert reset("00-welcome") == 1
    assert load() == {}


def test_resetting_an_unknown_lesson_lists_the_valid_ids(
    progress_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo is a clear error (exit 2 on the command line), and nothing is written."""
    assert labapp_main(["progress", "--reset", "01-unprotectd"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labapp: there is no lesson '01-unprotectd'")
    assert "'00-welcome', '01-unprotected'" in err
    with pytest.raises(UnknownLesson):
        reset("99")
    assert not progress_file.exists()


# -- hints ------------------------------------------------------------------------------


def test_each_hint_shown_is_recorded_with_the_highest_tier(
    progress_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """lab.hint walks the ladder; the file keeps the highest tier, the board shows it."""
    with start_lab("01-unprotected") as lab:
        lab.hint("fail-open")
        lab.hint("fail-open")
        lab.hint("trusted-header")
    assert progress.hints() == {"01-unprotected": {"fail-open": 2, "trusted-header": 1}}
    assert load() == {}  # a hint is not an exercise done
    assert progress.record_hint("01-unprotected", "fail-open", 1)  # lower: kept at 2
    assert progress.hints()["01-unprotected"]["fail-open"] == 2
    text = str(scoreboard())
    assert "fail-open" in text and "hints 2/3" in text
    assert "hints 2/3" in scoreboard()._repr_html_()
    assert progress.hints_in(progress_file) == {
        "01-unprotected:fail-open": 2,
        "01-unprotected:trusted-header": 1,
    }


def test_the_steps_tier_is_marked_on_the_scoreboard(progress_file: Path) -> None:
    progress.record_hint("04-jwt", "alg-none", 3)
    assert "hints 3/3 (steps)" in str(scoreboard())


def test_reset_clears_a_lessons_hints_too(progress_file: Path) -> None:
    progress.record_hint("01-unprotected", "fail-open", 1)
    progress.record_hint("00-welcome", "classify", 2)
    reset("01-unprotected")
    assert progress.hints() == {"00-welcome": {"classify": 2}}


def test_hints_of_the_wrong_shape_make_the_file_corrupt(progress_file: Path) -> None:
    progress_file.parent.mkdir()
    progress_file.write_text('{"version": 1, "lessons": {}, "hints": {"01": {"x": {"tier": "3"}}}}')
    assert progress.hints_in(progress_file) == {}  # grading reads it and finds none
    with pytest.warns(ProgressWarning):
        assert record("01-unprotected", "fail-open")
    assert list(progress_file.parent.glob(FILENAME + ".corrupt-*"))


def test_hints_in_reads_a_missing_or_unreadable_file_as_none(tmp_path: Path) -> None:
    assert progress.hints_in(tmp_path / "nothing.json") == {}
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe")
    assert progress.hints_in(tmp_path / "bad.json") == {}
