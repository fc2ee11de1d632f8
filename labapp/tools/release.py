"""``labapp release OUT/``: what learners get, ready to push to the repository nbgitpuller pulls.

The release holds ``notebooks/`` (the learner copies), the ``labapp/`` package (without
``__pycache__``), ``pyproject.toml``, ``environment.yml``, ``Makefile``, ``README.md`` and
``.gitignore``. Never ``solutions/``, ``tests/``, ``benchmarks/``, ``.ci/`` or ``docs/``:
nbgitpuller hands learners the whole repository.

The release has no solutions/ and no tests/, so its Makefile is rewritten on the way out:
``make test`` grades the learner's own notebooks (``pytest --nbval-lax notebooks``), and
the instructor targets whose recipes need what the release leaves out (``check``,
``notebooks``, ``bench``) are dropped. The repository's Makefile is never edited.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from labapp.engine.errors import LabError

SOURCE = Path(__file__).resolve().parents[2]  # the course: labapp/tools/release.py
FILES = ("pyproject.toml", "environment.yml", "Makefile", "README.md", ".gitignore")
FOLDERS = ("notebooks", "labapp")
LEFT_OUT = ("solutions", "tests", "benchmarks", ".ci", "docs")
TEST_RECIPE = "\t$(BIN)/python -m pytest --nbval-lax notebooks"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".ipynb_checkpoints")
_RULE = re.compile(r"^([A-Za-z0-9_.$()/-][^:=\t]*):(?!=)")


class ReleaseError(LabError, ValueError):
    """A release that would land in the wrong place or over something."""


def release_makefile(text: str) -> str:
    """The repository's Makefile as learners need it.

    The ``test`` recipe becomes ``pytest --nbval-lax notebooks``; a rule whose recipe names
    something the release leaves out (solutions/, benchmarks/...) is dropped, and so is its
    name in ``.PHONY``.
    """
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines():
        match = _RULE.match(line)
        if match and not line.startswith("\t"):
            blocks.append((match[1].strip(), [line]))
        elif line.startswith("\t") or (blocks[-1][0] is not None and line.strip()):
            blocks[-1][1].append(line)
        else:
            blocks.append((None, [line]))
    dropped = set()
    kept: list[tuple[str | None, list[str]]] = []
    for target, lines in blocks:
        recipe = [line for line in lines[1:] if line.startswith("\t")]
        if target == "test":
            if not recipe:
                raise ReleaseError("the Makefile's test target has no recipe to rewrite")
            at = lines.index(recipe[0])
            lines = [*lines[:at], TEST_RECIPE, *[line for line in lines[at:] if line not in recipe]]
        elif target and any(_needs_left_out(line) for line in recipe):
            dropped.add(target)
            continue
        kept.append((target, lines))
    out = []
    for target, lines in kept:
        if target == ".PHONY":
            names = lines[0].split(":", 1)[1].split()
            lines = [".PHONY: " + " ".join(n for n in names if n not in dropped), *lines[1:]]
        out += lines
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n") + "\n"


def release_readme(text: str) -> str:
    """The README without its instructors' and contributors' sections (solutions/, docs/,
    the course's tests and layout)."""
    for section in ("For instructors", "For contributors"):
        pattern = rf"\n## {section}[^\n]*\n.*?(?=\n## |\Z)"
        text = re.sub(pattern, "\n", text, flags=re.DOTALL)
    return text.replace(
        "make test    # creates .venv if missing, runs the whole test suite",
        "make test    # creates .venv if missing, grades your notebooks (re-runs each one)",
    )


# What only the course's own suite uses (a browser test, the fuzzer, parallel workers):
# learners would only download them.
COURSE_ONLY = ("playwright", "schemathesis", "pytest-xdist")


def release_pyproject(text: str) -> str:
    """Settings for the course's own suite are dropped: pytest's tests/ and strict xfail,
    and the COURSE_ONLY packages."""
    dropped = ("testpaths = ", "xfail_strict = ")
    kept = "".join(line for line in text.splitlines(True) if not line.startswith(dropped))
    for name in COURSE_ONLY:
        kept = re.sub(rf',\s*"{name}[^"]*"', "", kept)
    return kept


def release_environment(text: str) -> str:
    lines = text.splitlines(True)
    return "".join(line for line in lines if not any(name in line for name in COURSE_ONLY))


def _needs_left_out(line: str) -> bool:
    return any(re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", line) for name in LEFT_OUT)


def build(out: Path, force: bool = False, source: Path = SOURCE) -> list[Path]:
    """Write the learner release into ``out``; return the files written, relative to it."""
    source, target = source.resolve(), out.resolve()
    if target.is_relative_to(source) or source.is_relative_to(target):
        raise ReleaseError(
            f"{out}: the release must go outside the course's source tree {source}/ "
            "(and must not contain it)"
        )
    if target.exists() and not target.is_dir():
        raise ReleaseError(f"{out}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ReleaseError(f"{out}: not empty (pass --force to replace the release in it)")
    for name in (*FOLDERS, *FILES):
        if not (source / name).exists():
            raise ReleaseError(f"{source / name}: missing, cannot make a release without it")
    notebooks = sorted((source / "notebooks").glob("*.ipynb"))
    if not notebooks:
        raise ReleaseError(f"{source / 'notebooks'}: no learner notebooks (run `make notebooks`)")

    target.mkdir(parents=True, exist_ok=True)
    for name in (*FOLDERS, *FILES):  # --force: replace what a release holds, nothing else
        old = target / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.exists() or old.is_symlink():
            old.unlink()
    (target / "notebooks").mkdir()
    for path in notebooks:
        shutil.copy2(path, target / "notebooks" / path.name)
    shutil.copytree(source / "labapp", target / "labapp", ignore=_IGNORED)
    for name in FILES:
        shutil.copy2(source / name, target / name)
    makefile = target / "Makefile"
    makefile.write_text(release_makefile(makefile.read_text()))
    readme = target / "README.md"
    readme.write_text(release_readme(readme.read_text()))
    pyproject = target / "pyproject.toml"
    pyproject.write_text(release_pyproject(pyproject.read_text()))
    environment = target / "environment.yml"
    environment.write_text(release_environment(environment.read_text()))
    return sorted(p.relative_to(target) for p in target.rglob("*") if _ours(p, target))


def _ours(path: Path, root: Path) -> bool:
    first = path.relative_to(root).parts[0]
    return path.is_file() and first in (*FOLDERS, *FILES)


def _release(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        written = build(out, force=args.force)
    except LabError as exc:
        print(f"labapp: {exc}", file=sys.stderr)
        return 2
    others = sorted(p.name for p in out.iterdir() if p.name not in (*FOLDERS, *FILES))
    print(f"wrote the learner release to {out}/: {len(written)} files")
    if others:
        print("left alone (not part of a release): " + ", ".join(others))
    return 0


def register(commands: Any) -> None:
    """Add ``labapp release`` to the subparsers of ``labapp.tools.cli.main``."""
    release = commands.add_parser(
        "release", help="write what learners get (no solutions/, no tests/) into OUT"
    )
    release.add_argument("out", metavar="OUT")
    release.add_argument(
        "--force", action="store_true", help="write into a non-empty OUT, replacing a release"
    )
    release.set_defaults(run=_release)
