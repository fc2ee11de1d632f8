"""The single-user image's Dockerfile, read rather than built (CI has no container engine)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import tomllib
from packaging.requirements import Requirement  # comes with jupyterlab, a course dependency
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
BASE_IMAGE = "quay.io/jupyter/minimal-notebook"
HUB_EXTRAS = {"nbgitpuller", "jupyter-server-proxy"}
COURSE = "/opt/course"
# pip options that take a value: what follows them is not a package to install.
_VALUED = {"-e", "--editable", "-r", "--requirement", "-c", "--constraint", "-i", "--index-url"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) for each instruction, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if not pending and not line.strip():
            continue
        if line.lstrip().startswith("#"):
            continue  # Docker drops comment lines, even in the middle of a continued one
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    return out


def commands(shell: str) -> list[list[str]]:
    """The simple commands of a RUN line, split at &&, ||, ; and |, each as shell words."""
    lexer = shlex.shlex(shell, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|"):
            out.append([])
        else:
            out[-1].append(token)
    return [words for words in out if words]


@dataclass
class PipInstall:
    step: int  # index of its RUN in instructions()
    options: list[str]
    packages: list[str]
    editable: list[str]


def pip_installs(text: str) -> list[PipInstall]:
    """Every `pip install` of the Dockerfile, in order."""
    found = []
    for step, (keyword, args) in enumerate(instructions(text)):
        if keyword != "RUN":
            continue
        for words in commands(args):
            if words[:4] == ["python", "-m", "pip", "install"]:
                words = words[2:]
            if words[:2] != ["pip", "install"]:
                continue
            install = PipInstall(step, [], [], [])
            rest = iter(words[2:])
            for word in rest:
                if word in ("-e", "--editable"):
                    install.editable.append(next(rest))
                elif word in _VALUED:
                    install.options += [word, next(rest)]
                elif word.startswith("-"):
                    install.options.append(word)
                else:
                    install.packages.append(word)
            found.append(install)
    return found


def dockerfile_requirements(text: str) -> list[str]:
    """The course's dependencies as the Dockerfile installs them: its first `pip install`."""
    installs = pip_installs(text)
    assert installs, "the Dockerfile installs nothing with pip"
    return installs[0].packages


def _key(requirement: str) -> tuple[str, tuple[str, ...], str, str]:
    parsed = Requirement(requirement)
    name = canonicalize_name(parsed.name)
    return name, tuple(sorted(parsed.extras)), str(parsed.specifier), str(parsed.marker or "")


def requirement_drift(installed: list[str], wanted: list[str]) -> dict[str, set[str]]:
    """What `wanted` lists that `installed` lacks, and the reverse, compared as requirements."""
    have = {_key(r): r for r in installed}
    need = {_key(r): r for r in wanted}
    return {
        "missing": {need[k] for k in need.keys() - have.keys()},
        "extra": {have[k] for k in have.keys() - need.keys()},
    }


def _dependency_layer() -> PipInstall:
    return pip_installs(DOCKERFILE)[0]


def _course_install() -> PipInstall:
    found = [i for i in pip_installs(DOCKERFILE) if COURSE in i.editable]
    assert len(found) == 1, f"one `pip install -e {COURSE}`, found {len(found)}"
    return found[0]


def test_the_base_is_minimal_notebook_at_a_pinned_python_tag() -> None:
    """One FROM: the stacks' minimal-notebook (it ships git) at a python-3.x tag, never latest."""
    bases = [args for keyword, args in instructions(DOCKERFILE) if keyword == "FROM"]
    assert len(bases) == 1, bases
    image, _, tag = bases[0].split("@")[0].partition(":")
    assert image == BASE_IMAGE
    assert re.fullmatch(r"python-3\.\d+(\.\d+)?", tag), f"pin a python-3.x tag, not {tag!r}"


def test_the_dependency_layer_lists_exactly_pyprojects_dependencies() -> None:
    """The first pip layer names the same requirement strings as [project].dependencies."""
    drift = requirement_drift(dockerfile_requirements(DOCKERFILE), PROJECT["dependencies"])
    assert drift == {"missing": set(), "extra": set()}, drift


def test_a_dockerfile_that_drifts_from_pyproject_is_reported() -> None:
    """The comparison names a missing requirement, a changed bound and an unlisted extra."""
    made_up = """
FROM quay.io/jupyter/minimal-notebook:python-3.12.11
# a comment between continuation lines, as Docker allows
RUN pip install --no-cache-dir \\
        "jupyterlab>=4.2" \\
    # this one is dropped too
        "FastAPI>=0.100" \\
        requests && \\
    fix-permissions "${CONDA_DIR}"
"""
    wanted = ["jupyterlab>=4.2", "fastapi>=0.122", "pytest>=8"]
    assert dockerfile_requirements(made_up) == ["jupyterlab>=4.2", "FastAPI>=0.100", "requests"]
    drift = requirement_drift(dockerfile_requirements(made_up), wanted)
    assert drift == {
        "missing": {"fastapi>=0.122", "pytest>=8"},
        "extra": {"FastAPI>=0.100", "requests"},
    }
    assert requirement_drift(["PyJWT[crypto] >= 2.13"], ["pyjwt[crypto]>=2.13"]) == {
        "missing": set(),
        "extra": set(),
    }, "spelling differences that pip ignores are not drift"


def test_no_dev_dependency_is_installed() -> None:
    """Neither ruff nor playwright (nor the [dev] extra) goes into the image."""
    dev = {_key(r)[0] for r in PROJECT["optional-dependencies"]["dev"]}
    assert dev >= {"ruff", "playwright"}
    for install in pip_installs(DOCKERFILE):
        names = {_key(p)[0] for p in install.packages}
        assert not names & dev, install
        assert not any("[" in target for target in install.editable), install


def test_the_hub_extras_have_a_layer_of_their_own() -> None:
    """nbgitpuller and jupyter-server-proxy are installed, but not in the dependency layer."""
    later = [i for i in pip_installs(DOCKERFILE)[1:] if not i.editable]
    assert {canonicalize_name(p) for i in later for p in i.packages} == HUB_EXTRAS
    assert all(i.step != _dependency_layer().step for i in later)


def test_the_cohort_repository_and_ref_are_build_arguments_and_fetched() -> None:
    """COURSE_REPO and COURSE_REF are ARGs, declared after the dependency layer, and fetched."""
    steps = instructions(DOCKERFILE)
    declared = {args.split("=")[0]: i for i, (kw, args) in enumerate(steps) if kw == "ARG"}
    assert {"COURSE_REPO", "COURSE_REF"} <= declared.keys()
    # A build argument invalidates the cache from its declaration on: after, so it costs nothing.
    assert min(declared["COURSE_REPO"], declared["COURSE_REF"]) > _dependency_layer().step
    git = [w for kw, args in steps if kw == "RUN" for w in commands(args) if w[0] == "git"]
    assert any("remote" in w and w[-1] == "${COURSE_REPO}" for w in git), git
    assert any("fetch" in w and "--depth" in w and w[-1] == "${COURSE_REF}" for w in git), git
    assert any("checkout" in w and w[-1] == "FETCH_HEAD" for w in git), git


def test_the_course_is_fetched_as_root_and_handed_to_the_notebook_user() -> None:
    """The fetch into /opt/course runs as root and ends with a chown to NB_UID:NB_GID."""
    user = None
    for keyword, args in instructions(DOCKERFILE):
        if keyword == "USER":
            user = args
        elif keyword == "RUN" and "${COURSE_REF}" in args:
            assert user == "root", "/opt belongs to root"
            last = commands(args)[-1]
            assert last[:2] == ["chown", "-R"] and last[2:] == ["${NB_UID}:${NB_GID}", COURSE]
            return
    raise AssertionError("no RUN fetches ${COURSE_REF}")


def test_the_course_is_installed_without_deps_after_everything_else() -> None:
    """`pip install --no-deps -e /opt/course` comes after the dependencies, extras and fetch."""
    course = _course_install()
    assert "--no-deps" in course.options and not course.packages
    fetched = max(
        i
        for i, (keyword, args) in enumerate(instructions(DOCKERFILE))
        if f"git -C {COURSE}" in args
    )
    others = [i.step for i in pip_installs(DOCKERFILE) if COURSE not in i.editable]
    assert course.step > max(others) and course.step > fetched


def test_the_image_ends_as_the_notebook_user() -> None:
    """The last USER is the notebook user, and no pip install runs as root (files in conda)."""
    users = [args for kw, args in instructions(DOCKERFILE) if kw == "USER"]
    assert users and users[-1] in ("${NB_UID}", "$NB_UID"), users
    user = "${NB_UID}"  # what the stacks' images start as
    for step, (kw, args) in enumerate(instructions(DOCKERFILE)):
        if kw == "USER":
            user = args
        if step in {i.step for i in pip_installs(DOCKERFILE)}:
            assert user not in ("root", "0"), f"pip install as root: {args[:60]}"


def test_the_jupyterhub_guide_builds_this_file() -> None:
    """docs/jupyterhub.md points to the Dockerfile and shows its build arguments."""
    guide = (ROOT / "docs" / "jupyterhub.md").read_text()
    assert "../Dockerfile" in guide and "tests/test_dockerfile.py" in guide
    assert "--build-arg COURSE_REPO=" in guide and "--build-arg COURSE_REF=" in guide
