# The JupyterHub single-user image for one cohort, and the course image for grading it.
#
#   docker build \
#     --build-arg COURSE_REPO=https://github.com/ORG/api-auth-course-release \
#     --build-arg COURSE_REF=cohort-2026-11 \
#     -t registry.example.org/api-auth-course:2026.11 .
#
# docs/jupyterhub.md says how to use it. The course's CI has no container engine, so it never
# builds this file: tests/test_dockerfile.py reads it instead (same dependencies as
# pyproject.toml, the cohort's ref, no dev tools, not root at the end).

# minimal-notebook rather than base-notebook because it ships git, which the fetch below and
# nbgitpuller need. A full Python version tag: the stacks moved on to Python 3.13, so this tag
# no longer moves. Pin a date tag or a digest if you need the very same bytes every build.
FROM quay.io/jupyter/minimal-notebook:python-3.12.11

# The course's runtime dependencies: the same strings as [project].dependencies in
# pyproject.toml (tests/test_dockerfile.py compares the two). They come before the course
# arguments, so this layer is reused by every cohort's build until the list changes.
# fix-permissions is the stacks' way to keep the conda folder writable by the notebook user.
RUN pip install --no-cache-dir \
        "jupyterlab>=4.2" \
        "fastapi>=0.122" \
        "uvicorn>=0.54" \
        "httpx>=0.28" \
        "pyjwt[crypto]>=2.15.1" \
        "argon2-cffi>=23.1" \
        "matplotlib>=3.8" \
        "trustme>=1.2" \
        "authlib>=1.9.10,<1.10" \
        "httpx2" \
        "nbformat>=5.10" \
        "nbclient>=0.10" \
        "nbval>=0.11" \
        "pytest>=8" \
        "ipytest>=0.14.2" \
        "hypothesis>=6.100" \
        "pyotp>=2.9" \
        "schemathesis>=4.0" && \
    fix-permissions "${CONDA_DIR}" && \
    fix-permissions "/home/${NB_USER}"

# What the hub needs and the course does not: nbgitpuller behind the learners' links,
# jupyter-server-proxy for a lab's /docs page.
RUN pip install --no-cache-dir nbgitpuller jupyter-server-proxy && \
    fix-permissions "${CONDA_DIR}" && \
    fix-permissions "/home/${NB_USER}"

# The learner release repository and the branch, tag or full commit of it for this cohort:
# the same ref as the nbgitpuller link, so the package here and the notebooks learners pull
# agree. Declared only now, so a new ref rebuilds the layers below and nothing above.
ARG COURSE_REPO
ARG COURSE_REF

# /opt belongs to root, so the fetch runs as root and hands the folder to the notebook user.
# init + fetch of exactly one ref works for a branch, a tag or a full commit SHA alike, and
# the depth of 1 keeps the history out of the image.
USER root
RUN : "${COURSE_REPO:?pass --build-arg COURSE_REPO=<the learner release repository>}" && \
    : "${COURSE_REF:?pass --build-arg COURSE_REF=<a branch, tag or commit of it>}" && \
    git init --quiet /opt/course && \
    git -C /opt/course remote add origin "${COURSE_REPO}" && \
    git -C /opt/course fetch --quiet --depth 1 origin "${COURSE_REF}" && \
    git -C /opt/course checkout --quiet FETCH_HEAD && \
    chown -R "${NB_UID}:${NB_GID}" /opt/course
USER ${NB_UID}

# The course itself, editable: `labapp` on PATH, and the package keeps finding the release
# notebooks next to itself (/opt/course/notebooks), the default release of `labapp grade`.
# --no-deps: its dependencies are the layer above. The check after it fails the build when
# the release at COURSE_REF asks for something that layer does not install.
RUN pip install --no-cache-dir --no-deps -e /opt/course && \
    python -c 'import sys, importlib.metadata as md; \
from packaging.requirements import Requirement; from packaging.utils import canonicalize_name; \
have = {canonicalize_name(d.metadata["Name"]): d.version for d in md.distributions() \
if d.metadata["Name"]}; \
wanted = [Requirement(r) for r in md.requires("labapp") or []]; \
missing = [str(r) for r in wanted if r.marker is None and \
(canonicalize_name(r.name) not in have or have[canonicalize_name(r.name)] not in r.specifier)]; \
sys.exit("COURSE_REF needs what this image lacks: " + ", ".join(missing) if missing else None)' && \
    fix-permissions "${CONDA_DIR}" && \
    fix-permissions "/home/${NB_USER}"
