"""Progress that survives: every flag captured, quiz answered and defense passed, on disk.

Where the file lives
--------------------
One file per course folder, shared by every notebook: ``.labapp-progress.json``.

- ``LABAPP_PROGRESS`` (a file path; relative paths are taken from the current folder), when
  set and not empty, is the file. Instructors, tests and odd setups use it.
- Otherwise the **course folder** is found by walking up from the current folder (a kernel's
  current folder is its notebook's folder): the first folder that is named ``notebooks``
  gives its parent, the first folder that has a ``notebooks/`` subfolder is itself. The walk
  stops at the home folder. If nothing matches, the current folder is the course folder.

So ``make lab`` (JupyterLab on ``notebooks/``) and JupyterHub with nbgitpuller (the course in
``~/<repo>/``, kernels in ``~/<repo>/notebooks/``) both write ``<course>/.labapp-progress.json``,
the same file for every notebook, and so do the ``labapp`` command run from the course folder
and a grading run of ``solutions/``. A flat folder of notebooks (no ``notebooks/`` subfolder)
keeps the file next to them.

What it holds
-------------
``{"version": 1, "lessons": {"01-unprotected": {"read-all-orders": {"done_at": "<UTC ISO>"}}}}``:
an exercise is a flag name, a quiz id, or ``"defend"`` (a passing ``lab.grade()``);
``done_at`` is the first time it was done (until the lesson is reset). Hints shown with
``lab.hint(name)`` are kept beside them, the highest tier seen per exercise:
``"hints": {"04-jwt": {"alg-none": {"tier": 2, "at": "<UTC ISO>"}}}`` (tier 3 of an attack is
its steps: the recipe). Files without ``"hints"`` are valid; it appears with the first hint.

How it is written
-----------------
Each change is a read-modify-write under an exclusive ``fcntl.flock`` on
``.labapp-progress.json.lock`` (so two kernels merge their progress, never overwrite each
other's), written to a temp file in the same folder, flushed, fsynced and ``os.replace``-d
over the old file (a crash mid-write leaves the old file whole). A file that is not valid
progress is renamed ``.labapp-progress.json.corrupt-<UTC timestamp>`` with a warning naming
both paths, never silently reset. Recording never breaks the lab: if the file cannot be
written, it warns once and the lab carries on.

Learners see it with ``scoreboard()`` in a notebook or ``labapp progress`` in a terminal,
and clear a lesson with ``reset("01-unprotected")`` or ``labapp progress --reset 01``.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labapp.engine.errors import LabError
from labapp.engine.spec import DEFEND
from labapp.lessons import all_lessons, get_lesson

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, writes are still atomic
    fcntl = None  # type: ignore[assignment]

FILENAME = ".labapp-progress.json"
ENV = "LABAPP_PROGRESS"
VERSION = 1

_thread_lock = threading.Lock()  # flock is per open file; this also orders our own threads
_warned: set[tuple[str, str]] = set()


class ProgressWarning(UserWarning):
    """Progress could not be read or saved; the lab itself keeps working."""


class CorruptProgress(ValueError):
    """The progress file is not valid progress (bad JSON or the wrong shape)."""


# -- where ------------------------------------------------------------------------------


def course_folder(start: str | os.PathLike[str] | None = None) -> Path:
    """The course folder that holds the progress file (see the module docstring)."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    try:
        home: Path | None = Path.home().resolve()
    except (RuntimeError, KeyError):  # no home folder known
        home = None
    for folder in (here, *here.parents):
        if folder.name == "notebooks":
            return folder.parent
        if (folder / "notebooks").is_dir():
            return folder
        if folder == home:
            break
    return here


def progress_path(start: str | os.PathLike[str] | None = None) -> Path:
    """The progress file: ``$LABAPP_PROGRESS`` if set, else the course folder's file."""
    override = os.environ.get(ENV, "").strip()
    if override:
        return Path(override).expanduser().absolute()
    return course_folder(start) / FILENAME


# -- reading and writing ----------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _empty() -> dict[str, Any]:
    return {"version": VERSION, "lessons": {}}


def _validate(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CorruptProgress(f"expected a JSON object, found {type(data).__name__}")
    if data.get("version") != VERSION:
        raise CorruptProgress(f"expected version {VERSION}, found {data.get('version')!r}")
    lessons = data.get("lessons")
    if not isinstance(lessons, dict):
        raise CorruptProgress("'lessons' is not an object")
    for lesson, done in lessons.items():
        if not isinstance(done, dict):
            raise CorruptProgress(f"lesson {lesson!r} is not an object")
        for exercise, entry in done.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("done_at"), str):
                raise CorruptProgress(f"{lesson} {exercise!r} has no 'done_at' time")
    hints = data.get("hints", {})
    if not isinstance(hints, dict) or not all(
        isinstance(seen, dict)
        and all(isinstance(e, dict) and type(e.get("tier")) is int for e in seen.values())
        for seen in hints.values()
    ):
        raise CorruptProgress("'hints' is not an object of {lesson: {exercise: {tier}}}")
    return data


def _parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CorruptProgress(f"not valid JSON ({exc})") from None
    return _validate(data)


def _warn(message: str, key: tuple[str, str] | None = None) -> None:
    """Warn (once per key); never raise, even where warnings are turned into errors."""
    if key is not None:
        if key in _warned:
            return
        _warned.add(key)
    try:
        warnings.warn(message, ProgressWarning, stacklevel=4)
    except Exception:  # a warnings filter set to "error" must not break the lab
        with contextlib.suppress(Exception):
            print(f"Warning: {message}", file=sys.stderr)


def _set_aside(path: Path, reason: str) -> Path:
    """Rename a corrupt file out of the way, keep it, and say so."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    _warn(
        f"labapp: your progress file {path} could not be read ({reason}). It was set aside "
        f"as {aside}, untouched, and a new progress file was started at {path}. "
        "Exercises you complete again are recorded in the new file."
    )
    return aside


def _read(path: Path, *, set_aside: bool) -> dict[str, Any]:
    """The file's progress (empty if there is none); a corrupt file is set aside or skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty()
    except UnicodeDecodeError:
        text = "\ufffd"  # not UTF-8: corrupt
    try:
        return _parse(text)
    except CorruptProgress as exc:
        if set_aside:
            _set_aside(path, str(exc))
        else:
            _warn(f"labapp: your progress file {path} could not be read ({exc}); showing none")
        return _empty()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (its ``.lock`` file) for a read-modify-write."""
    with _thread_lock:
        if fcntl is None:  # pragma: no cover
            yield
            return
        lock = path.with_name(path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: temp file in the same folder, fsync, then replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _update(path: Path, change: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Read-modify-write under the lock; ``change`` edits the data and says if it changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        data = _read(path, set_aside=True)
        if change(data):
            _write(path, data)
    return data


def _read_locked(target: Path) -> dict[str, Any]:
    try:
        with _locked(target):
            return _read(target, set_aside=True)
    except OSError:  # no lock (a read-only folder): atomic writes make a plain read safe
        return _read(target, set_aside=False)


def _save(change: Callable[[dict[str, Any]], bool], path: str | os.PathLike[str] | None) -> bool:
    """Apply ``change`` to the progress file. Never raises: warns once if it cannot save."""
    target = Path(path) if path is not None else None
    try:
        _update(target or progress_path(), change)
        return True
    except Exception as exc:  # recording must never break the lab
        where = str(target) if target is not None else f"${ENV} / course folder"
        _warn(
            f"labapp: could not save your progress to {where} "
            f"({type(exc).__name__}: {exc}). Your exercises still pass in this notebook, "
            f"but will not be remembered after a restart. Point {ENV} at a writable file "
            "to keep them.",
            key=(where, "write"),
        )
        return False


def load(path: str | os.PathLike[str] | None = None) -> dict[str, dict[str, dict[str, str]]]:
    """Every lesson's done exercises: ``{lesson_id: {exercise: {"done_at": iso}}}``."""
    target = Path(path) if path is not None else progress_path()
    return _read_locked(target)["lessons"]


def record(lesson_id: str, exercise: str, *, path: str | os.PathLike[str] | None = None) -> bool:
    """Mark ``exercise`` of ``lesson_id`` done. Never raises: warns once if it cannot save."""

    def mark(data: dict[str, Any]) -> bool:
        done = data["lessons"].setdefault(lesson_id, {})
        if exercise in done:
            return False
        done[exercise] = {"done_at": _now()}
        return True

    return _save(mark, path)


def hints(path: str | os.PathLike[str] | None = None) -> dict[str, dict[str, int]]:
    """The highest hint tier seen per exercise: ``{lesson_id: {exercise: tier}}``."""
    target = Path(path) if path is not None else progress_path()
    return {
        lesson: {exercise: entry["tier"] for exercise, entry in seen.items()}
        for lesson, seen in _read_locked(target).get("hints", {}).items()
    }


def hints_in(path: Path) -> dict[str, int]:
    """The hints a progress file records, as ``{"04-jwt:alg-none": tier}``, read-only.

    For grading: a missing, unreadable or corrupt file has none, and is never set aside.
    """
    try:
        data = _parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, CorruptProgress):
        return {}
    return {
        f"{lesson}:{exercise}": entry["tier"]
        for lesson, seen in data.get("hints", {}).items()
        for exercise, entry in seen.items()
    }


def record_hint(
    lesson_id: str, exercise: str, tier: int, *, path: str | os.PathLike[str] | None = None
) -> bool:
    """Note that hint ``tier`` of ``exercise`` was shown. Never raises (warns once)."""

    def mark(data: dict[str, Any]) -> bool:
        seen = data.setdefault("hints", {}).setdefault(lesson_id, {})
        if seen.get(exercise, {}).get("tier", 0) >= tier:
            return False
        seen[exercise] = {"tier": tier, "at": _now()}
        return True

    return _save(mark, path)


def reset(lesson_id: str, *, path: str | os.PathLike[str] | None = None) -> int:
    """Clear one lesson's progress (``"01-unprotected"``, ``"01"`` or its notebook name).

    Returns how many exercises were cleared (their hints are cleared too). An unknown
    lesson raises UnknownLesson, which lists the valid ids.
    """
    lesson = get_lesson(lesson_id)
    target = Path(path) if path is not None else progress_path()
    cleared = 0

    def clear(data: dict[str, Any]) -> bool:
        nonlocal cleared
        cleared = len(data["lessons"].pop(lesson.id, {}))
        hinted = data.get("hints", {}).pop(lesson.id, None)
        return cleared > 0 or bool(hinted)

    _update(target, clear)
    print(f"Cleared lesson {lesson.id}: {cleared} exercise(s) marked not done in {target}.")
    return cleared


# -- the scoreboard ---------------------------------------------------------------------


def exercises(lesson: Any) -> list[tuple[str, str]]:
    """(kind, name) of every exercise of a lesson: its flags, quizzes, and defend."""
    found = [("flag", name) for name in lesson.flag_names]
    found += [("quiz", quiz.id) for quiz in lesson.quizzes]
    if lesson.hooks:
        found.append(("defend", DEFEND))
    return found


@dataclass(frozen=True)
class Item:
    kind: str
    name: str
    done_at: str | None
    hints: int = 0  # the highest hint tier seen
    ladder: int = 0  # how many hints the exercise has

    def hints_text(self) -> str:
        if not self.hints:
            return ""
        recipe = " (steps)" if self.ladder == 3 and self.hints == 3 else ""
        return f"hints {self.hints}/{self.ladder}{recipe}"

    @property
    def done(self) -> bool:
        return self.done_at is not None

    def when(self) -> str:
        if self.done_at is None:
            return ""
        try:
            moment = datetime.fromisoformat(self.done_at).astimezone()
        except ValueError:
            return self.done_at
        return moment.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class LessonScore:
    id: str
    title: str
    items: tuple[Item, ...]

    @property
    def done(self) -> int:
        return sum(item.done for item in self.items)


@dataclass(frozen=True)
class Scoreboard:
    """Every exercise of every lesson, done (✓) or not (·); HTML in JupyterLab, text elsewhere."""

    path: Path
    lessons: tuple[LessonScore, ...]

    @property
    def done(self) -> int:
        return sum(lesson.done for lesson in self.lessons)

    @property
    def total(self) -> int:
        return sum(len(lesson.items) for lesson in self.lessons)

    def __str__(self) -> str:
        lines = [f"Progress ({self.path})"]
        for lesson in self.lessons:
            lines.append(f"{lesson.id:20} {lesson.done}/{len(lesson.items)}  {lesson.title}")
            for item in lesson.items:
                mark = "✓" if item.done else "·"
                line = f"  {mark} {item.kind:6} {item.name:24} {item.when():16} {item.hints_text()}"
                lines.append(line.rstrip())
        lines.append(f"Total: {self.done}/{self.total} exercises done")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        rows = []
        for lesson in self.lessons:
            rows.append(
                f"<tr><th colspan='4' style='text-align:left'>{e(lesson.title)} "
                f"<code>{e(lesson.id)}</code>: {lesson.done}/{len(lesson.items)}</th></tr>"
            )
            for item in lesson.items:
                mark = "✓" if item.done else "·"
                colour = "#1a7f37" if item.done else "#888"
                rows.append(
                    f"<tr><td style='color:{colour};text-align:center'>{mark}</td>"
                    f"<td>{e(item.kind)}</td><td><code>{e(item.name)}</code></td>"
                    f"<td>{e(item.when())}</td><td>{e(item.hints_text())}</td></tr>"
                )
        return (
            f"<div><p><b>Your progress: {self.done}/{self.total} exercises done</b> "
            f"<small>(saved in <code>{e(str(self.path))}</code>)</small></p>"
            "<table><thead><tr><th></th><th>kind</th><th>exercise</th><th>done at</th>"
            "<th>hints used</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
        )


def scoreboard(path: str | os.PathLike[str] | None = None) -> Scoreboard:
    """The scoreboard of the course, read from the progress file."""
    target = Path(path) if path is not None else progress_path()
    done = load(target)
    seen = hints(target)
    scores = []
    for lesson in all_lessons():
        mine = done.get(lesson.id, {})
        tiers = seen.get(lesson.id, {})
        ladders = lesson.all_hints()
        items = tuple(
            Item(
                kind,
                name,
                mine[name]["done_at"] if name in mine else None,
                tiers.get(name, 0),
                len(ladders.get(name, ())),
            )
            for kind, name in exercises(lesson)
        )
        scores.append(LessonScore(lesson.id, lesson.title, items))
    return Scoreboard(target.absolute(), tuple(scores))


# -- the `labapp progress` command ------------------------------------------------------


def _run(args: Any) -> int:
    path = Path(args.file) if args.file else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ProgressWarning)
            if args.reset:
                reset(args.reset, path=path)
            else:
                print(scoreboard(path))
    except (LabError, OSError) as exc:
        print(f"labapp: {exc}", file=sys.stderr)
        return 2
    finally:  # a set-aside corrupt file, said as a line, not as a Python warning
        for warning in caught:
            message = str(warning.message)
            print(
                message if message.startswith("labapp:") else f"labapp: {message}", file=sys.stderr
            )
    return 0


def register(commands: Any) -> None:
    """Add ``labapp progress`` to the subcommands of ``labapp.tools.cli.main``."""
    command = commands.add_parser(
        "progress",
        help="show the exercises you have done, or reset a lesson",
        description="Show every exercise of every lesson, done (✓) or not (·). "
        f"The progress file is ${ENV} if set, else {FILENAME} in the course folder.",
    )
    command.add_argument(
        "--reset", metavar="LESSON_ID", help="clear one lesson's progress, e.g. 01-unprotected"
    )
    command.add_argument(
        "--file",
        metavar="PATH",
        help=f"the progress file (default: ${ENV} or {FILENAME} in the course folder)",
    )
    command.set_defaults(run=_run)
