"""`labapp release`: the learners' repository holds the course without a line of its solutions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labapp.lessons import get_lesson
from labapp.tools import authoring
from labapp.tools.cli import main as labapp_main
from tests.conftest import ROOT

EXPECTED_TOP = {
    "notebooks",
    "labapp",
    "pyproject.toml",
    "environment.yml",
    "Makefile",
    "README.md",
    ".gitignore",
}
MIN_LINE = 25  # shorter solution lines are too common to prove anything
IMPORT = re.compile(r"(import|from) [\w.]+")  # `import concurrent.futures` gives nothing away
# Solution lines the engine itself contains, each reviewed. All but tls.py are generic lines
# an answer shares with a weak default, a battery or a hint the learner is shown anyway.
_TLS_SERVER = "context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)"
_TLS_CHAIN = "context.load_cert_chain(files.cert, files.key)"
_TLS_12 = "context.minimum_version = ssl.TLSVersion.TLSv1_2"
# Ordinary FastAPI lines that the capstone's model answer (a whole app) shares with the labs'
# own apps: they prove nothing about where an answer came from, wherever they appear.
COMMON_LINES = {
    '@app.post("/logout", status_code=204)',
    "def health() -> dict[str, str]:",
    "response = await call_next(request)",
    "return Response(status_code=204)",
    '"exp": now + ACCESS_SECONDS,',
}
KNOWN_LEAKS = {
    # The engine's own sound server context, which start_lab(..., tls=True) uses: the same
    # three lines lesson 07 asks for. Learners have the engine's source anyway; the exercise
    # is to write them knowing why, and its grader judges behaviour, not where code came from.
    "labapp/engine/tls.py": {_TLS_SERVER, _TLS_CHAIN, _TLS_12},
    # Lesson 07's weak default contexts: the answer minus its TLS 1.2 floor.
    "labapp/lessons/l07_tls/network.py": {_TLS_SERVER, _TLS_CHAIN},
    "labapp/lessons/l07_tls/app.py": {_TLS_SERVER, _TLS_CHAIN},
    # The weak failure_response's throttle message, which the answer keeps.
    "labapp/lessons/l03_passwords/app.py": {
        'return 429, "too many failed logins; try again later"'
    },
    # A generic check on a JSON body.
    "labapp/lessons/l04_jwt/replay.py": {'if "flag" in response.json():'},
    # The weak rotate's lookup, which the answer keeps.
    "labapp/lessons/l05_refresh/weak.py": {'if record is None or record["revoked"]:'},
    # The capstone's baseline is unprotected but never answers 5xx: its 422 handler (which
    # echoes nothing) is the model answer's too.
    "labapp/lessons/l11_capstone/baseline.py": {
        "@app.exception_handler(RequestValidationError)",
        "async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:",
    },
}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("release") / "learners"
    assert labapp_main(["release", str(folder)]) == 0
    return folder


def _release_texts(out: Path) -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8", errors="replace")
        for path in out.rglob("*")
        if path.is_file()
    }


def _split(source: str) -> tuple[list[str], list[str]]:
    """One cell's lines: the stripped ones between the solution markers, and the others."""
    inside: list[str] = []
    outside: list[str] = []
    region = False
    for line in source.split("\n"):
        marker = line.strip()
        if marker in (authoring.BEGIN, authoring.END):
            region = marker == authoring.BEGIN
        elif region:
            inside.append(marker)
        else:
            outside.append(line)
    return inside, outside


def _region(source: str) -> list[str]:
    """The stripped lines between the solution markers of one cell."""
    return _split(source)[0]


def _solution_lines() -> tuple[set[str], str]:
    """Lines inside solution regions of solutions/*.ipynb, and all the text outside them."""
    inside: set[str] = set()
    outside: list[str] = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            answer, rest = _split(cell.source)
            inside.update(answer)
            outside.extend(rest)
    return inside, "\n".join(outside)


def test_the_release_holds_exactly_what_learners_need(out: Path) -> None:
    assert {p.name for p in out.iterdir()} == EXPECTED_TOP
    repo_notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == repo_notebooks
    assert not list(out.rglob("__pycache__")) and not list(out.rglob("*.pyc"))
    for left_out in ("solutions", "tests", "benchmarks", ".ci", "docs"):
        assert not (out / left_out).exists()
    package = {
        p.relative_to(ROOT / "labapp")
        for p in (ROOT / "labapp").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert {p.relative_to(out / "labapp") for p in (out / "labapp").rglob("*")} >= package
    assert (out / "labapp" / "py.typed").is_file()
    assert list((out / "labapp" / "lessons").glob("*.txt"))


def _recipe_lines() -> str:
    """Every attack's steps hint, as one text: the recipe ships on purpose, one
    ``lab.hint(name)`` away (the third tier), so an attack answer may share its lines."""
    from tests.lessons.test_hints import LADDERS, steps_code

    return "\n".join(steps_code(lesson.all_hints()[name][2]) for lesson, name in LADDERS)


def test_the_recipe_exemption_covers_attacks_only() -> None:
    """No defend answer is exempt: the steps hints hold none of a defend cell's lines."""
    recipes = _recipe_lines()
    defended = 0
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        # A defend answer is a hook the grader cells plug in with lab.defend(); a hook a quiz
        # grades (lesson 10's assess_risk, by lab.check_answer) has a ladder of its own.
        graders = "\n".join(c.source for c in cells if "grader" in c.metadata.get("tags", []))
        hooks = [
            hook.name
            for hook in get_lesson(path.stem).hooks
            if "lab.defend(" in graders and f"{hook.name}=" in graders
        ]
        for cell in cells:
            answer = _region(cell.source)
            if not answer or not any(f"def {hook}(" in cell.source for hook in hooks):
                continue  # not a defend answer
            defended += 1
            shared = {line for line in answer if len(line) >= MIN_LINE and line in recipes}
            assert not shared, f"{path.name}: a defend answer is in a steps hint: {shared}"
    assert defended >= 7, "every lesson with hooks has a defend answer to look at"


def test_no_solution_text_reaches_the_release(out: Path) -> None:
    """No telling line of any solution region, nor any solution marker, is in the release.

    Telling: at least MIN_LINE characters, not an import, and not found anywhere outside the
    solution regions (a learner copy shows that text anyway).
    """
    inside, outside = _solution_lines()
    recipes = _recipe_lines()
    telling = {
        line
        for line in inside
        if len(line) >= MIN_LINE
        and line not in outside
        and not IMPORT.match(line)
        and line not in recipes
    }
    assert len(telling) > 50, "the check must have solution lines to look for"
    texts = _release_texts(out)
    for path, text in texts.items():
        # No marker line anywhere; in notebooks, not even the words. (labapp/tools/authoring.py,
        # the generator, names the markers in quotes: that is not a solution region.)
        markers = {authoring.BEGIN, authoring.END}
        assert not markers & {line.strip() for line in text.splitlines()}, path
        if path.suffix == ".ipynb":
            assert not any(marker in text for marker in markers), path
        known = KNOWN_LEAKS.get(path.relative_to(out).as_posix(), set())
        found = {line for line in telling - known - COMMON_LINES if line in text}
        assert not found, f"solution lines in {path}: {sorted(found)}"


def test_every_known_leak_is_still_where_the_list_says() -> None:
    """The list of reviewed leaks stays honest: an entry that no longer matches is removed."""
    for path, lines in KNOWN_LEAKS.items():
        text = (ROOT / path).read_text(encoding="utf-8")
        assert all(line in text for line in lines), path


def test_the_release_notebooks_are_the_repository_notebooks(out: Path) -> None:
    """Byte for byte, and still exactly what solutions/ generates (`labapp notebooks --check`)."""
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        assert (out / "notebooks" / path.name).read_bytes() == path.read_bytes()
    assert authoring.check(ROOT / "solutions", out / "notebooks") == []


def test_the_released_package_imports_and_lists_its_lessons(out: Path) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import labapp; print(labapp.__file__); "
        "from labapp.tools.cli import main; main(['lessons'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, *lessons = result.stdout.splitlines()
    assert Path(first).resolve().is_relative_to(out.resolve())
    assert any(line.startswith("01-unprotected") for line in lessons)


def test_the_release_makefile_grades_the_learners_notebooks(out: Path) -> None:
    """`make test` runs nbval on notebooks/; no target needs solutions/ or benchmarks/."""
    text = (out / "Makefile").read_text()
    test_rule = re.search(r"^test:.*\n((?:\t.*\n)+)", text, re.M)
    assert test_rule and test_rule[1] == "\t$(BIN)/python -m pytest --nbval-lax notebooks\n"
    for gone in ("solutions", "benchmarks", "bench.py"):
        assert gone not in text
    assert re.search(r"^\.PHONY: lab test clean$", text, re.M)
    assert "lab:" in text and "$(STAMP): pyproject.toml" in text
    plan = subprocess.run(
        ["make", "-n", "test"], cwd=out, capture_output=True, text=True, check=True
    ).stdout
    assert "-m pytest --nbval-lax notebooks" in plan
    # The repository's own Makefile is untouched.
    assert "--dist loadscope tests solutions" in (ROOT / "Makefile").read_text()


def test_a_non_empty_out_needs_force_and_keeps_what_is_not_ours(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "learners"
    (folder / ".git").mkdir(parents=True)
    (folder / "notebooks").mkdir()
    (folder / "notebooks" / "stale.ipynb").write_text("{}")
    assert labapp_main(["release", str(folder)]) == 2
    assert "not empty (pass --force" in capsys.readouterr().err
    assert labapp_main(["release", str(folder), "--force"]) == 0
    assert "left alone (not part of a release): .git" in capsys.readouterr().out
    assert (folder / ".git").is_dir()
    assert not (folder / "notebooks" / "stale.ipynb").exists()


def test_out_inside_the_source_tree_is_refused(capsys) -> None:
    inside = ROOT / "release-refused-by-test"
    assert labapp_main(["release", str(inside)]) == 2
    assert "outside the course's source tree" in capsys.readouterr().err
    assert not inside.exists()
    assert labapp_main(["release", str(ROOT.parent), "--force"]) == 2


def test_the_release_readme_is_for_learners(out: Path) -> None:
    """No instructors' section, no solutions/, and every file it links is in the release."""
    readme = (out / "README.md").read_text()
    assert "## For instructors" not in readme and "solutions/" not in readme
    assert "## For contributors" not in readme and "tests/" not in readme
    assert "grades your notebooks" in readme
    for link in re.findall(r"\]\(((?!https?:)[^)#]+)\)", readme):
        assert (out / link).exists(), link
    pyproject = (out / "pyproject.toml").read_text()
    assert "testpaths" not in pyproject and "xfail_strict" not in pyproject
    assert "--nbval-cell-timeout" in pyproject  # grading keeps its cell timeout
    for course_only in ("playwright", "schemathesis"):
        assert course_only not in pyproject + (out / "environment.yml").read_text()
    assert 'dev = ["ruff>=' in pyproject
