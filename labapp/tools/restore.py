"""The canonical learner release, and a learner's notebook with its grader cells put back.

``labapp grade`` (labapp/tools/cohort.py) restores the setup cell and every grader cell of each
submitted notebook from the release before running it, so a learner who edited, deleted or
re-tagged a grader gains nothing, and the feedback says which cells were restored. It also
lists the learner's own lines that change the lab or the course's code (``tampering``):
everything runs in the learner's kernel, so such a line can fake any grader.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4.nbbase import random_cell_id

from labapp.engine.errors import GradingError

PROTECTED_TAGS = ("grader", "setup")
# lab.check_flag("name", ...), lab.check_answer("name", ...), lab.grade() (the defense) and
# lab.grade_<name>() (a lesson's own grader of exercise <name>, e.g. lesson 09's grade_tests).
_EXERCISE = re.compile(
    r"""lab\.(check_flag|check_answer|grade(?:_\w+)?)\(\s*(?:["']([^"']+)["'])?"""
)


def _exercise(call: str, name: str) -> str:
    """The exercise a grader call grades: ``grade`` is the defense, ``grade_x`` exercise x."""
    if call == "grade":
        return "defend"
    return call.removeprefix("grade_").replace("_", "-") if call.startswith("grade_") else name


_LESSON = re.compile(r"""start_lab\(\s*["']([^"']+)["']""")


# -- the canonical release --------------------------------------------------------------


@dataclass
class Canonical:
    """One notebook of the release: its exercises and the cells that must not change."""

    name: str
    lesson: str
    nb: Any
    exercises: dict[str, int]  # exercise -> index of its grader cell in nb.cells
    labels: dict[int, str]  # protected cell index -> how the feedback names it

    @property
    def columns(self) -> list[str]:
        return [f"{self.lesson}:{exercise}" for exercise in self.exercises]


def _tags(cell: Any) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else []


def _protected(cell: Any) -> str | None:
    return next((tag for tag in PROTECTED_TAGS if tag in _tags(cell)), None)


def load_canonical(path: Path) -> Canonical:
    nb = nbformat.read(path, as_version=4)
    exercises: dict[str, int] = {}
    labels: dict[int, str] = {}
    lesson = path.stem
    for index, cell in enumerate(nb.cells):
        tag = _protected(cell)
        if tag == "setup":
            labels[index] = "the setup cell"
            found = _LESSON.search(cell.source)
            lesson = found[1] if found else lesson
        elif tag == "grader":
            names = []
            for call, name in _EXERCISE.findall(cell.source):
                name = _exercise(call, name)
                if name and name not in exercises:
                    exercises[name] = index
                    names.append(name)
            shown = ", ".join(repr(n) for n in names) or repr(cell.source.split("\n")[0])
            labels[index] = f"grader cell for {shown}"
    return Canonical(path.name, lesson, nb, exercises, labels)


def load_release(release: Path) -> dict[str, Canonical]:
    if not release.is_dir():
        raise GradingError(f"{release}: no such release folder (give --release DIR)")
    canon = {p.name: load_canonical(p) for p in sorted(release.glob("*.ipynb"))}
    if not canon:
        raise GradingError(f"{release}: no notebooks in this release folder")
    return canon


# -- restoring the grader cells ---------------------------------------------------------


def _changes(learner: Any, canonical: Any) -> str:
    edited = learner.get("cell_type") != canonical.cell_type or (
        _source(learner) != canonical.source
    )
    retagged = sorted(_tags(learner)) != sorted(_tags(canonical))
    return " and ".join(w for w, on in (("edited", edited), ("re-tagged", retagged)) if on)


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def restore(learner: Any, canon: Canonical) -> tuple[Any, list[str], dict[int, Any]]:
    """Put the canonical setup and grader cells back into a learner's notebook.

    Returns the restored notebook (a copy, outputs cleared), one note per cell that was
    restored, and canonical cell index -> the restored cell object.
    """
    nb = copy.deepcopy(learner)
    cells: list[Any] = list(nb.cells)
    canonical_ids = {c.get("id") for c in canon.nb.cells if c.get("id")}
    by_id = {}
    for cell in cells:
        by_id.setdefault(cell.get("id"), cell)
    # Fallback for cells whose id changed (or a notebook saved without ids): the learner's
    # cells that carry the tag and an id the release does not know, in order.
    spare = {
        tag: [c for c in cells if tag in _tags(c) and c.get("id") not in canonical_ids]
        for tag in PROTECTED_TAGS
    }
    notes: list[str] = []
    placed: dict[int, Any] = {}
    for index, wanted in enumerate(canon.nb.cells):
        tag = _protected(wanted)
        if tag is None:
            continue
        fresh = copy.deepcopy(wanted)
        found = by_id.get(wanted.get("id")) if wanted.get("id") else None
        if found is None:
            # Only a cell that does the same job: a stray copy of another grader must not
            # be paired with this one (its place and its note would both be wrong).
            # Failing that, one that grades nothing recognisable any more (edited to `pass`):
            # it stands where the grader stood.
            same = [c for c in spare[tag] if _does(c) == _does(wanted)]
            same = same or [c for c in spare[tag] if not _does(c)]
            if same:
                found = same[0]
                spare[tag].remove(found)
        if found is not None:
            change = _changes(found, wanted)
            cells[next(i for i, c in enumerate(cells) if c is found)] = fresh
        else:
            change = "deleted"
            cells.insert(_insertion_point(cells, canon, index, placed), fresh)
        placed[index] = fresh
        if change:
            notes.append(f"Restored {canon.labels[index]}: it had been {change}")
    seen: set[str] = set()
    for cell in cells:  # unique ids, and ids on every cell (nbformat 4.5)
        if not cell.get("id") or cell["id"] in seen:
            cell["id"] = random_cell_id()
        seen.add(cell["id"])
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.cells = cells
    nb.nbformat, nb.nbformat_minor = 4, max(int(nb.get("nbformat_minor", 5)), 5)
    return nb, notes, placed


def _does(cell: Any) -> tuple[str, ...]:
    """What a protected cell does: the exercises it grades, or the lab it starts."""
    source = _source(cell)
    graded = tuple(_exercise(call, name) for call, name in _EXERCISE.findall(source))
    return graded or tuple(_LESSON.findall(source))


# Cells that change the lab or the course's code from inside the notebook: everything runs
# in the learner's kernel, so such a cell can make any grader pass. Flagged, not failed.
_TAMPERING = re.compile(
    r"""\blab\s*\.\s*\w+\s*(?:=(?!=)|\+=)   # lab.grade = ..., lab.check_flag = ...
    |\bsetattr\s*\(                             # setattr(lab, ...), setattr(Lab, ...)
    |\bLab\s*\.\s*\w+\s*=(?!=)                # Lab.grade = ...
    |\blabapp(?:\.\w+)+\s*=(?!=)               # labapp.engine.lab.Lab = ...
    |\bsys\s*\.\s*modules\b                   # swapping modules
    |\b(?:unittest\.)?mock\b                    # mock.patch
    """,
    re.VERBOSE,
)


def tampering(learner: Any) -> list[str]:
    """The learner's own code cells that assign to the lab or the course's code."""
    found = []
    for number, cell in enumerate(c for c in learner.cells if c.get("cell_type") == "code"):
        if _protected(cell):
            continue
        for line in _source(cell).splitlines():
            if _TAMPERING.search(line.split("#", 1)[0]):
                found.append(f"code cell {number + 1}: {line.strip()[:100]}")
    return found


def _insertion_point(cells: list[Any], canon: Canonical, index: int, placed: dict) -> int:
    """After the nearest earlier canonical cell the learner still has, else the same index."""
    ids = {c.get("id"): i for i, c in enumerate(cells) if c.get("id")}
    for before in range(index - 1, -1, -1):
        if before in placed:
            return next(i for i, c in enumerate(cells) if c is placed[before]) + 1
        cell_id = canon.nb.cells[before].get("id")
        if cell_id in ids:
            return ids[cell_id] + 1
    return min(index, len(cells))
