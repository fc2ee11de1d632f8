"""The package's shape: engine, course tools and one folder per lesson, imports one way.

Read from the source with ``ast``, so an import hidden in a function counts too. The rules
(docs in labapp/__init__.py and labapp/lessons/__init__.py):

- the engine imports nothing but the engine;
- the course tools use the engine and the lesson catalogue, never a lesson's internals;
- a lesson imports the engine, ``lessons.common`` and its own modules, one way:
  ``__init__`` -> battery -> app -> helpers; never another lesson;
- no import cycle anywhere.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import labapp

PACKAGE = Path(labapp.__file__).resolve().parent
LESSONS = PACKAGE / "lessons"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported labapp module, dotted
    line: int
    typing_only: bool  # under ``if TYPE_CHECKING:``: never runs


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(base: str, name: str) -> str:
    """``from base import name``: the module ``base.name`` if it is one, else ``base``."""
    return f"{base}.{name}" if f"{base}.{name}" in MODULES else base


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                typing_lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [_resolve(base, alias.name) for alias in node.names]
        for target in targets:
            if target == "labapp" or target.startswith("labapp."):
                typing_only = node.lineno in typing_lines
                found.append(Import(module, target, node.lineno, typing_only))
    return found


ALL_IMPORTS = [found for module in MODULES for found in imports_of(module)]


def _where(found: Import) -> str:
    return f"{found.source} (line {found.line}) imports {found.target}"


def test_the_package_is_an_engine_the_course_tools_and_the_lessons() -> None:
    """The top of labapp/ names the three parts and the glue, and nothing else."""
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert folders == {"engine", "lessons", "tools"}
    assert modules == {"__init__.py", "__main__.py", "start.py"}


def test_every_lesson_is_a_folder_with_its_app_and_battery() -> None:
    """lessons/ holds lNN_name/ packages, the shared common.py and its wordlist: no flat files."""
    flat = sorted(
        p.name
        for p in LESSONS.iterdir()
        if p.is_file() and p.name not in {"__init__.py", "common.py", "passwords.txt"}
    )
    assert flat == []
    folders = sorted(p for p in LESSONS.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert [p.name[:4] for p in folders] == [f"l{n:02d}_" for n in range(len(folders))]
    for folder in folders:
        for required in ("__init__.py", "app.py", "battery.py"):
            assert (folder / required).is_file(), f"{folder.name} has no {required}"


@pytest.mark.parametrize(
    "init", sorted(LESSONS.glob("l*/__init__.py")), ids=lambda p: p.parent.name
)
def test_a_lesson_init_declares_its_lesson_and_nothing_else(init: Path) -> None:
    """A lesson's __init__.py is a docstring, imports and ``LESSON = Lesson(...)``: no code."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    others = [
        ast.unparse(node)[:60]
        for node in body
        if not isinstance(node, ast.Import | ast.ImportFrom)
        and not (
            isinstance(node, ast.Assign)
            and [ast.unparse(t) for t in node.targets] == ["LESSON"]
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "Lesson"
        )
    ]
    assert others == []


def engine_breaches(imports: list[Import]) -> list[str]:
    """Everything under labapp.engine imports only labapp.engine (type hints included)."""
    return [
        _where(i)
        for i in imports
        if i.source.startswith("labapp.engine") and not i.target.startswith("labapp.engine")
    ]


def tools_breaches(imports: list[Import]) -> list[str]:
    """labapp.tools may ask labapp.lessons for lessons, not import lesson packages or start."""
    return [
        _where(i)
        for i in imports
        if i.source.startswith("labapp.tools")
        and (i.target.startswith("labapp.lessons.") or i.target == "labapp.start")
    ]


def test_the_engine_imports_no_lesson_and_no_course_tool() -> None:
    """Everything under labapp.engine imports only labapp.engine (type hints included)."""
    assert engine_breaches(ALL_IMPORTS) == []


def test_the_course_tools_use_the_catalogue_never_a_lessons_internals() -> None:
    """labapp.tools may ask labapp.lessons for lessons, not import lesson packages or start."""
    assert tools_breaches(ALL_IMPORTS) == []


def _lesson_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["labapp", "lessons"] else None


def _rank(module: str) -> int:
    """__init__ (the lesson) 3, battery 2, app 1, a helper 0."""
    last = module.split(".")
    if len(last) == 3:
        return 3
    return {"battery": 2, "app": 1}.get(last[3], 0)


def lesson_breaches(imports: list[Import]) -> list[str]:
    """No lesson imports another lesson, a course tool, or the glue that starts labs."""
    wrong = []
    for i in imports:
        lesson = _lesson_of(i.source)
        if lesson is None and i.source not in ("labapp.lessons", "labapp.lessons.common"):
            continue
        allowed = i.target.startswith("labapp.engine") or i.target == "labapp.lessons.common"
        if lesson is not None:
            allowed = allowed or _lesson_of(i.target) == lesson
        if not allowed:
            wrong.append(_where(i))
    return wrong


def direction_breaches(imports: list[Import]) -> list[str]:
    """An app never imports its battery, a helper never its app or battery (no way back)."""
    wrong = []
    for i in imports:
        lesson = _lesson_of(i.source)
        if lesson is None or _lesson_of(i.target) != lesson:
            continue
        source, target = _rank(i.source), _rank(i.target)
        if target > source or (target == source and source > 0):
            wrong.append(_where(i))
    return wrong


def test_lessons_import_the_engine_common_and_their_own_modules_only() -> None:
    """No lesson imports another lesson, a course tool, or the glue that starts labs."""
    assert lesson_breaches(ALL_IMPORTS) == []


def test_inside_a_lesson_imports_flow_from_battery_to_app_to_helpers() -> None:
    """An app never imports its battery, a helper never its app or battery (no way back)."""
    assert direction_breaches(ALL_IMPORTS) == []


@pytest.mark.parametrize(
    ("rule", "source", "target"),
    [
        (engine_breaches, "labapp.engine.lab", "labapp.lessons"),
        (engine_breaches, "labapp.engine.lab", "labapp.tools.progress"),
        (tools_breaches, "labapp.tools.progress", "labapp.lessons.l03_passwords.app"),
        (tools_breaches, "labapp.tools.cli", "labapp.start"),
        (lesson_breaches, "labapp.lessons.l04_jwt.app", "labapp.lessons.l03_passwords.app"),
        (lesson_breaches, "labapp.lessons.l00_welcome.app", "labapp.tools.progress"),
        (lesson_breaches, "labapp.lessons.common", "labapp.lessons.l01_unprotected.app"),
        (
            direction_breaches,
            "labapp.lessons.l03_passwords.app",
            "labapp.lessons.l03_passwords.battery",
        ),
        (direction_breaches, "labapp.lessons.l07_tls.network", "labapp.lessons.l07_tls.app"),
        (direction_breaches, "labapp.lessons.l07_tls.battery", "labapp.lessons.l07_tls"),
        (direction_breaches, "labapp.lessons.l07_tls.app", "labapp.lessons.l07_tls.app"),
    ],
)
def test_each_rule_reports_an_import_that_breaks_it(rule, source: str, target: str) -> None:
    """The rules can fail: an import that breaks one is named by it."""
    bad = Import(source, target, 1, typing_only=False)
    assert rule([bad]) == [_where(bad)]


def test_no_app_imports_its_battery() -> None:
    """The rule the layout exists for, said plainly (also covered by the rank test)."""
    for app in sorted(LESSONS.glob("l*/app.py")):
        module = module_name(app)
        battery = module.rpartition(".")[0] + ".battery"
        assert battery not in {i.target for i in imports_of(module)}, module


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_there_is_no_import_cycle() -> None:
    """Imports that run (at the top or inside a function) form no cycle anywhere in labapp."""
    edges: dict[str, set[str]] = {}
    for i in ALL_IMPORTS:
        if not i.typing_only and i.target != i.source:
            edges.setdefault(i.source, set()).add(i.target)
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: two modules importing each other are reported."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_the_import_reader_sees_imports_inside_functions_and_type_checking() -> None:
    """The reader counts lazy imports and marks TYPE_CHECKING ones (so the rules can bite)."""
    found = imports_of("labapp.engine.card")
    assert [(i.target, i.typing_only) for i in found] == [("labapp.engine.lab", True)]
    lazy = [i for i in imports_of("labapp.engine.lab") if i.target == "labapp.engine.registry"]
    assert lazy and not lazy[0].typing_only
