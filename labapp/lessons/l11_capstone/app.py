"""Lesson 11: the capstone. The lab serves the learner's own FastAPI app.

``create_app`` returns a small front app that forwards every request to the app mounted with
``lab.mount(build_app)``; until then, to the unprotected baseline (``baseline.py``). The
front keeps the engine's error handlers and the course's TLS; the learner's app its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from labapp.engine.spec import LabState
from labapp.lessons.l11_capstone.mount import Holder, Tools

__all__ = ["Tools", "create_app", "seed"]


def seed(state: LabState) -> None:
    state.holder = Holder(state.workdir)  # type: ignore[attr-defined]  (create_app serves it)
    known = state.holder.secrets
    state.store.add_secret(*known.values())
    state.users.extend(
        {"username": name, "password": known[name]} for name in ("alice", "bob", "sam", "ada")
    )


def create_app(state: LabState) -> FastAPI:
    holder: Holder = state.holder  # type: ignore[attr-defined]
    front = FastAPI(title="Lesson 11: your app goes here", openapi_url=None, docs_url=None)
    front.state.holder = holder

    front.add_middleware(_Dispatch, holder=holder)

    @front.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def nothing_mounted(path: str) -> JSONResponse:
        # Only reached if no app is held at all (never after seed): a 4xx, never a 5xx.
        return JSONResponse(
            {"detail": "no app is mounted yet: run lab.mount(build_app)"}, status_code=404
        )

    return front


class _Dispatch:
    """ASGI middleware: the mounted app answers every HTTP request, when there is one."""

    def __init__(self, app: Any, holder: Holder) -> None:
        self.app, self.holder = app, holder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        target = self.holder.app if scope["type"] == "http" and self.holder.app else self.app
        await target(scope, receive, send)
