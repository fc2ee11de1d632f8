"""Every attack's hint ladder: a nudge, the technique with its reference, then the steps.

The third tier must be enough on its own: its code, run on a fresh lab with nothing but
``lab`` defined, performs the attack for real and passes the exercise's grader. And the
learner notebook must not already hold that recipe (discovery: goal and clue, no payload).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from labapp.engine.lab import TIERS, start
from labapp.lessons import all_lessons
from tests.conftest import ROOT

LADDERS = [(lesson, name) for lesson in all_lessons() for name in lesson.ladders()]
IDS = [f"{lesson.id}:{name}" for lesson, name in LADDERS]

# What a technique hint cites: a standard, a guide, or a catalogue of weaknesses.
REFERENCE = re.compile(r"\b(RFC \d+|OWASP|ASVS|CWE-\d+|NIST|PortSwigger|CAPEC-\d+)")
CODE = re.compile(r"```python\n(.*?)```", re.S)


def steps_code(text: str) -> str:
    found = CODE.findall(text)
    assert len(found) == 1, "the steps hint must hold exactly one ```python block"
    return found[0]


def learner_text(lesson) -> str:
    nb = nbformat.read(ROOT / "notebooks" / lesson.notebook, as_version=4)
    return "\n".join(cell.source for cell in nb.cells)


@pytest.mark.parametrize(("lesson", "name"), LADDERS, ids=IDS)
def test_each_ladder_is_nudge_technique_steps(lesson, name) -> None:
    hints = lesson.all_hints()[name]
    assert len(hints) == len(TIERS), f"{name}: {len(hints)} hints, not {TIERS}"
    nudge, technique, steps = hints
    assert "```" not in nudge and "```" not in technique, "code belongs in the steps only"
    assert REFERENCE.search(technique), f"{name}: the technique hint cites no reference"
    assert steps_code(steps).strip()


def grader_cell(lesson, name: str) -> str:
    """The learner notebook's locked grader cell of this exercise."""
    nb = nbformat.read(ROOT / "notebooks" / lesson.notebook, as_version=4)
    calls = (
        f'lab.check_flag("{name}"',
        f'lab.check_answer("{name}"',
        f"lab.grade_{name.replace('-', '_')}(",
    )
    (cell,) = [
        c.source
        for c in nb.cells
        if "grader" in c.metadata.get("tags", []) and any(call in c.source for call in calls)
    ]
    return cell


@pytest.mark.parametrize(("lesson", "name"), LADDERS, ids=IDS)
def test_the_steps_alone_pass_the_exercise(lesson, name) -> None:
    """Tier 3's code, pasted into the exercise cell of a fresh lab, makes the notebook's own
    grader cell pass: it performs the attack for real and leaves the flag (or answer) in the
    variable the grader reads."""
    done: list[str] = []
    lab = start(lesson, record=lambda lesson_id, exercise: done.append(exercise))
    try:
        namespace = {"lab": lab}
        code = compile(steps_code(lesson.all_hints()[name][2]), f"<steps {name}>", "exec")
        exec(code, namespace)  # noqa: S102 - course code, run as a learner would paste it
        done.clear()
        grader = compile(grader_cell(lesson, name), f"<grader {name}>", "exec")
        exec(grader, namespace)  # noqa: S102 - the notebook's own grader cell
    finally:
        lab.stop()
    assert name in done, f"the grader cell of {name!r} did not pass after its steps"


def _recipe_lines(code: str) -> list[str]:
    """The lines of a recipe that give it away (not imports, prints or the grader call)."""
    lines = []
    for line in code.splitlines():
        line = line.strip()
        if len(line) < 30 or line.startswith(("import ", "from ", "print(", "#", "lab.check_")):
            continue
        lines.append(line)
    return lines


@pytest.mark.parametrize(("lesson", "name"), LADDERS, ids=IDS)
def test_the_learner_notebook_does_not_give_the_recipe(lesson, name) -> None:
    text = learner_text(lesson)
    given = [
        line for line in _recipe_lines(steps_code(lesson.all_hints()[name][2])) if line in text
    ]
    assert given == [], f"the learner notebook already holds {name!r}'s steps: {given}"


def test_hints_name_their_tier(capsys) -> None:
    lesson, name = LADDERS[0]
    lab = start(lesson)
    try:
        for tier in TIERS:
            lab.hint(name)
            assert f"({tier}) for {name!r}" in capsys.readouterr().out
    finally:
        lab.stop()


def test_a_recipe_line_is_found_in_a_notebook_that_gives_it_away(tmp_path: Path) -> None:
    """The give-away check can fail: a notebook that quotes the steps is caught."""
    code = 'token = forge(header={"alg": "none"}, claims={"role": "admin"})\nprint(token)\n'
    assert _recipe_lines(code) == [
        'token = forge(header={"alg": "none"}, claims={"role": "admin"})'
    ]
    assert _recipe_lines("import httpx\nlab.check_flag('x', flag)\n") == []
