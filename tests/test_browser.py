"""The course in a real browser: JupyterLab, headless, driven by Playwright in Debian's chromium.

The browser is the system's (`apt-get install chromium`; CI's .ci/run does), never one that
`playwright install` downloads. Without chromium or the playwright package these tests skip
and say why. Deselect them with `-m "not browser"`. LABAPP_CHROMIUM=/path/to/chromium picks
another binary (a missing path makes the tests skip, which is how to check the skip).

JupyterLab serves a temporary folder holding copies of the notebooks, so whatever the browser
saves never lands in the repository. Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
NOTEBOOK = "01-unprotected-endpoints.ipynb"
STDERR = "application/vnd.jupyter.stderr"  # how JupyterLab marks a rendered traceback
WAIT_MS = 60_000  # every wait in the browser: generous, bounded, then a clear failure
SKIP_NO_CHROMIUM = (
    "Debian's chromium is not installed: apt-get install chromium (CI's .ci/run does)"
)

# Settings JupyterLab reads from the (temporary) user settings folder. No first-run news
# prompt or update check, no toasts over the screenshots, and every cell kept in the DOM:
# by default JupyterLab 4 only renders the cells near the viewport.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def _chromium() -> str:
    """Debian's chromium (or LABAPP_CHROMIUM), or a skip that says how to get it."""
    path = os.environ.get("LABAPP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(f"{SKIP_NO_CHROMIUM} [looked for {path}]")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: its base URL, token and the folder it serves."""

    url: str
    token: str
    root: Path
    log: Path

    def open_url(self, path: str, workspace: str) -> str:
        # A workspace per test, so one test's open tabs never reappear in the next.
        return f"{self.url}/lab/workspaces/{workspace}/tree/{path}?token={self.token}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def chromium_path() -> str:
    pytest.importorskip(
        "playwright.sync_api",
        reason="the playwright package is not installed: pip install -e '.[dev]'",
    )
    return _chromium()


@pytest.fixture(scope="module")
def jupyterlab(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """`jupyter lab` on a random loopback port with a random token, stopped whatever happens."""
    jupyter = Path(sys.executable).with_name("jupyter")  # .venv/bin/jupyter under `make test`
    base = tmp_path_factory.mktemp("jupyterlab")
    root, settings = base / "root", base / "user-settings"
    root.mkdir()
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        str(jupyter),
        "lab",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    # The developer's own Jupyter config (a password, another root) stays out of the test.
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
    }
    log = base / "jupyterlab.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"jupyter lab exited:\n{lab.log_tail()}"
            assert time.monotonic() < deadline, f"jupyter lab silent for 60 s:\n{lab.log_tail()}"
            try:
                if httpx.get(f"{lab.url}/api/status?token={token}", timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        yield lab
    finally:
        _stop(process, lab)


def _stop(process: subprocess.Popen[bytes], lab: Lab) -> None:
    """Shut the kernels down, then the server's process group; kill it if it lingers."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        auth = {"Authorization": f"token {lab.token}"}
        for kernel in httpx.get(f"{lab.url}/api/kernels", headers=auth, timeout=5).json():
            httpx.delete(f"{lab.url}/api/kernels/{kernel['id']}", headers=auth, timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        context.close()


@contextlib.contextmanager
def _screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=ARTIFACTS / f"{name}-failure.png", full_page=True)
        raise


def _copy(lab: Lab, folder: str) -> str:
    """Copy <folder>/01-....ipynb into the served folder; return its path there."""
    (lab.root / folder).mkdir(exist_ok=True)
    shutil.copy(ROOT / folder / NOTEBOOK, lab.root / folder / NOTEBOOK)
    return f"{folder}/{NOTEBOOK}"


def _wait_until(
    page: Any,
    condition: Callable[[], bool],
    what: str,
    timeout_ms: int,
    detail: Callable[[], object] = lambda: "",
) -> None:
    """Poll ``condition`` until true; on timeout fail naming ``what`` and the ``detail`` then."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout_ms // 1000} s for {what} {detail()}"
        page.wait_for_timeout(250)


def _kernel_status(page: Any) -> str | None:
    return page.locator(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator").get_attribute(
        "data-status"
    )


def _prompts(page: Any) -> list[str]:
    """The input prompt of every code cell, in order: "[ ]:", "[*]:" or "[7]:"."""
    return page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()


def _ran(prompt: str) -> bool:
    return re.fullmatch(r"\[\d+\]:", prompt.strip()) is not None


def _open_notebook(page: Any, lab: Lab, path: str, workspace: str, code_cells: int) -> None:
    """Open the notebook and wait for every code cell to render and the kernel to be idle."""
    page.goto(lab.open_url(path, workspace))
    page.locator(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator").wait_for()
    _wait_until(
        page,
        lambda: len(_prompts(page)) == code_cells,
        f"JupyterLab to render all {code_cells} code cells of {path}",
        WAIT_MS,
    )
    _wait_until(page, lambda: _kernel_status(page) == "idle", "the kernel to start", WAIT_MS)


def _run_menu(page: Any, command: str) -> None:
    """Run → the menu entry for a JupyterLab command, e.g. runmenu:run-all."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def _run_all(page: Any) -> None:
    """Run → Run All Cells, clicked again while no cell has started: on a loaded CI machine
    a click landed before the kernel was ready and nothing ran (every prompt stayed [ ])."""
    for _ in range(3):
        _run_menu(page, "runmenu:run-all")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if any(prompt != "[ ]:" for prompt in _prompts(page)):
                return
            page.wait_for_timeout(250)


def _code_cells(path: Path) -> list[Any]:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_a_solution_notebook_runs_clean_in_jupyterlab(jupyterlab: Lab, page: Any) -> None:
    """Run → Run All Cells, save: the saved file has every code cell run and no error."""
    path = _copy(jupyterlab, "solutions")
    saved = jupyterlab.root / path
    count = len(_code_cells(saved))
    with _screenshot_on_failure(page, "solution-run-all"):
        _open_notebook(page, jupyterlab, path, "solution", count)
        _run_all(page)
        _wait_until(
            page,
            lambda: all(_ran(p) for p in _prompts(page)) and _kernel_status(page) == "idle",
            "every code cell to show an execution count with the kernel idle",
            WAIT_MS,
            lambda: f"(prompts: {_prompts(page)}, kernel: {_kernel_status(page)})",
        )
        page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first.click()
        page.keyboard.press("Control+s")
        _wait_until(
            page,
            lambda: all(c.execution_count for c in _code_cells(saved)),
            f"JupyterLab to save {path} with its outputs",
            WAIT_MS,
        )
    cells = _code_cells(saved)
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    errors = [
        (c.source.splitlines()[0], o.ename, o.evalue)
        for c in cells
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []
    assert not any(c.execution_count for c in _code_cells(ROOT / "solutions" / NOTEBOOK))


def test_an_untouched_learner_notebook_shows_its_grader_failing(jupyterlab: Lab, page: Any) -> None:
    """Run from the top to the first grader cell: its error is rendered in the page."""
    path = _copy(jupyterlab, "notebooks")
    nb = nbformat.read(jupyterlab.root / path, as_version=4)
    grader = next(i for i, c in enumerate(nb.cells) if "grader" in c.metadata.get("tags", []))
    code_cells = sum(c.cell_type == "code" for c in nb.cells)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(grader)
    before = [i for i, c in enumerate(nb.cells[:grader]) if c.cell_type == "code"]
    with _screenshot_on_failure(page, "learner-grader"):
        _open_notebook(page, jupyterlab, path, "learner", code_cells)
        assert cell.locator(".jp-InputArea-editor").inner_text().startswith("# Grader")
        # JupyterLab stops a batch at its first error (here the exercise's
        # NotImplementedError), so run everything above the grader, then the grader alone,
        # as a learner does.
        cell.locator(".jp-InputPrompt").click()
        _run_menu(page, "notebook:run-all-above")
        _wait_until(
            page,
            lambda: (
                all(_ran(p) for p in _prompts(page)[: len(before)])
                and _kernel_status(page) == "idle"
            ),
            f"the {len(before)} code cells above the grader to run",
            WAIT_MS,
            lambda: f"(prompts: {_prompts(page)}, kernel: {_kernel_status(page)})",
        )
        cell.locator(".jp-InputPrompt").click()
        _run_menu(page, "notebook:run-cell")
        error = cell.locator(f'.jp-OutputArea-output[data-mime-type="{STDERR}"]')
        error.wait_for()
        _wait_until(page, lambda: _kernel_status(page) == "idle", "the grader to finish", WAIT_MS)
        report = error.inner_text()
        cell.scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        cell.screenshot(path=ARTIFACTS / "grader-report.png")
        assert "NameError" in report and "flag_orders" in report, report
        # The exercise above it failed too, and said so in the page.
        exercise = page.locator(".jp-Notebook .jp-Cell").nth(grader - 1)
        assert "NotImplementedError" in exercise.locator(".jp-OutputArea").inner_text()
