"""Serving the learner's app: ``lab.mount(build_app)`` builds it with the lab's kit."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labapp.engine.errors import BadHook
from labapp.engine.guard import check_signature
from labapp.lessons.l11_capstone import baseline
from labapp.lessons.l11_capstone.kit import Kit, seed

if TYPE_CHECKING:
    from labapp.engine.lab import Lab

DATABASE = "capstone.sqlite3"


class Holder:
    """The lab's kit and the app mounted on it (None until ``lab.mount``)."""

    def __init__(self, workdir: Path) -> None:
        self.kit = Kit(workdir / DATABASE, secrets.token_bytes(32))
        self.secrets = seed(self.kit.db_path)
        # The API as it arrives, unprotected, until lab.mount(build_app) replaces it: you can
        # explore and attack it first.
        self.app: Any = baseline.build_app(self.kit)


class Tools:
    """The capstone's own tools on the lab: ``lab.mount(build_app)`` and ``lab.kit``."""

    exports = ("mount", "kit")

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.holder: Holder = lab.server.app.state.holder

    @property
    def kit(self) -> Kit:
        return self.holder.kit

    def mount(self, build_app: Callable[[Kit], Any]) -> None:
        """Build your app with the lab's kit and serve it as the lab (over HTTPS)."""
        __tracebackhide__ = True
        problem = check_signature("build_app", build_app, ("kit",))
        if problem:
            raise BadHook(problem)
        try:
            app = build_app(self.holder.kit)
        except Exception as exc:
            raise BadHook(
                f"build_app(kit) raised {type(exc).__name__}: {exc}; nothing was mounted"
            ) from exc
        if not callable(app):
            raise BadHook(
                f"build_app(kit) returned {type(app).__name__}; it must return the FastAPI app"
            )
        self.holder.app = app
        print(f"Mounted: {self.lab.url} now serves your app. Next: lab.grade()")

    def stop(self) -> None:
        """Nothing runs beside the lab's own server."""
