"""The set-up files and the README: every command the README shows does what it says."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
import tomllib

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _name(requirement: str) -> str:
    return re.split(r"[<>=\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject() -> None:
    """conda users get exactly the dependencies pip users get, each with a reason."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    if any("pyjwt[crypto]" in r for r in project["dependencies"]):
        wanted.add("cryptography")  # the [crypto] extra, spelt out for conda
    text = (ROOT / "environment.yml").read_text()
    lines = text.split("dependencies:", 1)[1].splitlines()  # conda's list, then pip's
    listed = {}
    for line in lines:
        match = re.match(r"\s+- ([A-Za-z0-9_.-]+)[^#]*(#.*)?$", line)
        if match and match[1] not in ("python", "pip", "-e"):
            listed[_name(match[1])] = match[2]
    assert set(listed) == wanted
    assert all(listed.values()), "every dependency in environment.yml says why it is there"


def test_pyjwt_is_pinned_past_its_advisories() -> None:
    """pyproject asks for pyjwt 2.15.1 or newer, with the crypto extra.

    Before 2.14 a deeply nested header raised RecursionError, before 2.15.1 a non-finite
    numeric claim raised OverflowError: both escape a validator that catches PyJWTError.
    """
    assert '"pyjwt[crypto]>=2.15.1"' in (ROOT / "pyproject.toml").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run calls `make test`, the command the README gives."""
    assert "make test" in README
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_a_second_make_reinstalls_nothing() -> None:
    """Once .venv is set up, `make test` goes straight to pytest."""
    plan = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "pip install" not in plan and "-m venv" not in plan
    assert "pytest" in plan


def test_the_course_map_lists_every_notebook() -> None:
    """Each notebook in notebooks/ has a row in the README's course map."""
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"| `{path.stem}` |" in README


@pytest.mark.notebook
def test_every_place_that_states_a_lessons_time_agrees() -> None:
    """The title cell, the lesson's minutes, the README course map and the instructor guide
    say the same time for each lesson, and the guide's total is their sum."""
    import nbformat

    from labapp.lessons import all_lessons

    readme = (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "instructor-guide.md").read_text()
    total = 0
    for lesson in all_lessons():
        stem = lesson.notebook.removesuffix(".ipynb")
        title = nbformat.read(ROOT / "solutions" / lesson.notebook, as_version=4).cells[0].source
        assert f"**Time:** about {lesson.minutes} minutes." in title, stem
        for name, text in (("README", readme), ("instructor guide", guide)):
            row = next(line for line in text.splitlines() if line.startswith(f"| `{stem}`"))
            assert f"| {lesson.minutes} min |" in row, f"{name} disagrees on {stem}"
        total += lesson.minutes
    hours, minutes = divmod(total, 60)
    assert f"Total: about {hours} h {minutes} min of learner time." in guide


def test_the_readme_grading_command_fails_an_unfinished_notebook() -> None:
    """`pytest --nbval-lax notebooks/00-....ipynb` fails the exercise and its grader cell."""
    command = re.search(r"\.venv/bin/pytest --nbval-lax (notebooks/\S+\.ipynb)", README)
    assert command, "the README shows the grading command"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-q",
            "-p",
            "no:cacheprovider",
            "notebooks/00-welcome-threat-modeling.ipynb",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert re.search(r"\b2 failed\b", result.stdout), result.stdout[-2000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.notebook
def test_make_lab_starts_jupyterlab_without_a_browser() -> None:
    """`make lab` serves JupyterLab on notebooks/, headless, and as root says --allow-root."""
    port, token = _free_port(), "course-test-token"
    args = f"--port={port} --ServerApp.token={token} --ServerApp.ip=127.0.0.1"
    process = subprocess.Popen(
        ["make", "lab", f"LAB_ARGS={args}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=2
                )
                if response.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.5)
        names = {item["name"] for item in response.json()["content"]}
        assert "01-unprotected-endpoints.ipynb" in names
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    if os.geteuid() == 0:
        assert "Running as root: starting JupyterLab with --allow-root." in output


def test_environment_yml_is_valid_yaml_for_conda() -> None:
    """`conda env create -f environment.yml` gets a well-formed file with a pip section."""
    import yaml  # a dependency of jupyter_events, so always present with jupyterlab

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] and env["channels"] == ["conda-forge"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip[0] == "-e ."


def test_make_check_passes_on_the_repository() -> None:
    """`make check`: generator --check, outputs stripped, ruff; all green, in seconds."""
    result = subprocess.run(["make", "check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exactly what solutions/ makes" in result.stdout


@pytest.mark.notebook
def test_make_bench_prints_the_figures_and_writes_json() -> None:
    """`make bench` measures start, stop, grading, nbval and memory, and saves them."""
    results = ROOT / "benchmarks" / "results.json"
    results.unlink(missing_ok=True)
    # One learner is enough to see the cohort figures work; `make bench` itself grades two.
    # No spinning processes either: they would slow the tests running beside this one.
    env = {**os.environ, "LABAPP_BENCH_LEARNERS": "1", "LABAPP_BENCH_ROUNDS": "0"}
    result = subprocess.run(
        ["make", "bench"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures = ("lab start → first response", "lab.stop()", "grade()", "nbval", "RSS")
    more = ("per learner-course", "projected wall for 300 learners", "busy (", "not caught on")
    for figure in (*figures, *more):
        assert figure in result.stdout
    assert results.exists()


def test_make_notebooks_changes_nothing_on_a_consistent_repository() -> None:
    """`make notebooks` strips solutions/ and regenerates notebooks/: a no-op when in step."""
    paths = sorted((ROOT / "solutions").glob("*.ipynb")) + sorted(
        (ROOT / "notebooks").glob("*.ipynb")
    )
    before = {path: path.read_bytes() for path in paths}
    result = subprocess.run(["make", "notebooks"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote 0 notebook(s)" in result.stdout and "stripped 0 notebook(s)" in result.stdout
    assert {path: path.read_bytes() for path in paths} == before


def test_every_file_the_readme_links_exists() -> None:
    """The instructor, grading and JupyterHub guides the README points to are there."""
    links = re.findall(r"\]\(((?!https?:)[^)#]+)\)", README)
    assert links, "the README links its guides"
    for link in links:
        assert (ROOT / link).is_file(), link
    for guide in sorted((ROOT / "docs").glob("*.md")):
        for link in re.findall(r"\]\(((?!https?:)[^)#]+)\)", guide.read_text()):
            assert (guide.parent / link).is_file(), f"{guide.name}: {link}"
