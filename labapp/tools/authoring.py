"""solutions/ -> notebooks/: make the learner copy of every solved notebook.

solutions/ is the single source of truth. For each notebook there, the learner copy has:
every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region replaced by ``# YOUR CODE HERE``
and ``raise NotImplementedError()`` (nbgrader's convention), outputs and execution counts
cleared, cell ids kept, grader cells locked, and it is validated with nbformat.
``check`` reports any difference instead of writing, so the copy can never drift.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from labapp.engine.errors import LabError

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
PLACEHOLDER = ("# YOUR CODE HERE", "raise NotImplementedError()")
LOCKED_TAGS = ("grader",)
_VOLATILE_CELL_KEYS = ("execution", "collapsed", "scrolled", "jp-MarkdownHeadingCollapsed")


class AuthoringError(LabError, ValueError):
    """Raised for a solution notebook the generator cannot turn into a learner copy."""


def strip_solution(source: str, where: str = "cell") -> str:
    """Replace each solution region by the placeholder, at the region's indentation."""
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise AuthoringError(f"{where}: {BEGIN} inside another solution region")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + text for text in PLACEHOLDER]
        elif marker == END:
            if not inside:
                raise AuthoringError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise AuthoringError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(out)


def clear_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for key in _VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def learner_copy(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    nb = clear_outputs(solution)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source = strip_solution(cell.source, f"{name} cell {index}")
        elif BEGIN in cell.source:
            raise AuthoringError(f"{name} cell {index}: solution markers belong in code cells")
        if any(tag in cell.metadata.get("tags", []) for tag in LOCKED_TAGS):
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
    nbformat.validate(nb)
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


@dataclass
class Plan:
    """What the generator would write: learner path -> text, and stray learner notebooks."""

    outputs: dict[Path, str]
    strays: list[Path]


def plan(solutions: Path, notebooks: Path) -> Plan:
    if not solutions.is_dir():
        raise AuthoringError(f"no {solutions}/ folder here: run this from the course's root")
    outputs = {}
    for source in sorted(solutions.glob("*.ipynb")):
        nb = nbformat.read(source, as_version=4)
        outputs[notebooks / source.name] = dumps(learner_copy(nb, source.name))
    strays = [p for p in sorted(notebooks.glob("*.ipynb")) if p not in outputs]
    return Plan(outputs, strays)


def generate(solutions: Path, notebooks: Path) -> list[Path]:
    """Write the learner copies; return the paths that changed."""
    notebooks.mkdir(parents=True, exist_ok=True)
    changed = []
    for path, text in plan(solutions, notebooks).outputs.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def check(solutions: Path, notebooks: Path) -> list[str]:
    """Every way notebooks/ differs from what :func:`generate` would write."""
    result = plan(solutions, notebooks)
    problems = [f"{p}: no solution notebook makes this file" for p in result.strays]
    for path, text in result.outputs.items():
        if not path.exists():
            problems.append(f"{path}: missing (run `make notebooks`)")
        elif path.read_text() != text:
            problems.append(f"{path}: differs from its solution (run `make notebooks`)")
    return problems


def unstripped(paths: list[Path]) -> list[str]:
    """Notebooks that carry outputs or execution counts (they must be committed clean)."""
    problems = []
    for path in paths:
        clean = dumps(clear_outputs(_read(path)))
        if path.read_text() != clean:
            problems.append(f"{path}: has outputs or run metadata (run `labapp strip {path}`)")
    return problems


def _read(path: Path) -> nbformat.NotebookNode:
    if not path.is_file():
        raise AuthoringError(f"{path}: no such notebook")
    return nbformat.read(path, as_version=4)


def strip(paths: list[Path]) -> list[Path]:
    """Clear outputs in place; return the paths that changed."""
    changed = []
    for path in paths:
        text = dumps(clear_outputs(_read(path)))
        if path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def solution_namespace(path: Path, defines: str, **given: Any) -> dict[str, Any]:
    """Run the cell of a solution notebook that defines ``defines()``; return its namespace.

    Tests and benchmarks use the very code the solution notebook shows, so they cannot
    drift apart. Names the cell takes from earlier cells come in ``given``.
    """
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and f"def {defines}(" in cell.source:
            namespace: dict[str, Any] = dict(given)
            # dont_inherit: this module's `from __future__ import annotations` must not turn
            # the cell's annotations into strings (Pydantic models in a cell need them real).
            code = compile(cell.source, f"{path.name}:{defines}", "exec", dont_inherit=True)
            exec(code, namespace)  # noqa: S102
            return namespace
    raise AuthoringError(f"no cell of {path.name} defines {defines}()")


def solution_hooks(path: Path, hooks: list[str], **given: Any) -> dict[str, Any]:
    """Every hook in ``hooks`` as the solution notebook at ``path`` defines it.

    Each hook's cell runs once (a cell defining several hooks gives them all). Benchmarks and
    the fuzz tests plug these in, so they judge the course's own answer.
    """
    found: dict[str, Any] = {}
    for hook in hooks:
        if hook not in found:
            namespace = solution_namespace(path, hook, **given)
            found.update({name: namespace[name] for name in hooks if name in namespace})
    return found
