"""The ``labapp`` command: notebooks, lessons, a learner's progress, a cohort's grades."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labapp.engine.errors import LabError
from labapp.lessons import all_lessons
from labapp.tools import authoring, cohort, progress, release


def _notebooks(args: argparse.Namespace) -> int:
    solutions, notebooks = Path(args.solutions), Path(args.out)
    if args.check:
        problems = authoring.check(solutions, notebooks)
        for problem in problems:
            print(problem)
        if not problems:
            print(f"{notebooks}/ is exactly what {solutions}/ makes.")
        return 1 if problems else 0
    changed = authoring.generate(solutions, notebooks)
    print(f"wrote {len(changed)} notebook(s)" + "".join(f"\n  {p}" for p in changed))
    return 0


def _strip(args: argparse.Namespace) -> int:
    paths = [p for arg in args.paths for p in _ipynbs(Path(arg))]
    if args.check:
        problems = authoring.unstripped(paths)
        for problem in problems:
            print(problem)
        if not problems:
            print(f"{len(paths)} notebook(s) are free of outputs.")
        return 1 if problems else 0
    changed = authoring.strip(paths)
    print(f"stripped {len(changed)} notebook(s)")
    return 0


def _lessons(args: argparse.Namespace) -> int:
    for lesson in all_lessons():
        print(f"{lesson.id:18} {lesson.notebook:40} {lesson.minutes} min")
    return 0


def _ipynbs(path: Path) -> list[Path]:
    return sorted(path.glob("*.ipynb")) if path.is_dir() else [path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labapp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("notebooks", help="write notebooks/ from solutions/")
    gen.add_argument("--check", action="store_true", help="only report differences")
    gen.add_argument("--solutions", default="solutions")
    gen.add_argument("--out", default="notebooks")
    gen.set_defaults(run=_notebooks)

    strip = commands.add_parser("strip", help="clear outputs of notebooks")
    strip.add_argument("--check", action="store_true", help="only report notebooks with outputs")
    strip.add_argument("paths", nargs="+")
    strip.set_defaults(run=_strip)

    lessons = commands.add_parser("lessons", help="list the lessons")
    lessons.set_defaults(run=_lessons)

    progress.register(commands)
    cohort.register(commands)
    release.register(commands)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except LabError as exc:
        print(f"labapp: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
