"""Ask the learner's ``authorize`` about routes the shop has not shipped yet.

"Deny by default" is a promise about tomorrow's routes, which no HTTP request can reach
today: a gate that lists today's routes as protected, allowlists ``/products`` whatever the
method, or treats every path under ``/products`` as public passes every request the lab can
serve. So this row calls the hook itself, as the gate would (same guard, same deadline, a
decision must be True or False), with requests for routes that do not exist yet. Each must
be refused (OWASP Authorization Cheat Sheet, "deny by default"; ASVS 5.0 V8).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx

from labapp.engine.grading import Observed
from labapp.engine.guard import HookFailed, HookTimeout
from labapp.lessons.common import RequestInfo, auth, lookup_token, user_token
from labapp.lessons.l01_unprotected.headers import WatchedHeaders

# (method, route, path, who): nothing here is public, and no role covers the signed-in ones.
FUTURE = (
    ("POST", "/products", "/products", None),
    ("DELETE", "/products/{product_id}", "/products/2", None),
    ("PUT", "/health", "/health", None),
    ("GET", "/products/{product_id}/reviews", "/products/2/reviews", None),
    ("GET", "/healthz/details", "/healthz/details", None),
    ("GET", "/reports/sales", "/reports/sales", None),
    ("PATCH", "/orders/{order_id}", "/orders/1", None),
    ("GET", "/admin/audit", "/admin/audit", "alice"),
    ("POST", "/internal/reindex", "/internal/reindex", "bob"),
    ("GET", "/admin/users/{user_id}", "/admin/users/1", "svc-frontend"),
)


class ProbeFailed(Exception):
    """The hook raised, hung or returned a non-bool when asked about a route not shipped yet."""


def decide(lab: Any, info: RequestInfo) -> Any:
    """The hook's decision on ``info``, through the same guard and type check as the gate."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(lab.state.call("authorize", info))
        except BaseException as exc:  # noqa: BLE001 - handed to the row below
            outcome["error"] = exc

    # A thread of its own: a notebook cell already runs inside an event loop.
    thread = threading.Thread(target=run, name="lab-probe-authorize", daemon=True)
    thread.start()
    thread.join(lab.guard.deadline + 5)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def attack_future_routes(lab: Any, http: httpx.Client) -> Observed:
    for method, route, path, username in FUTURE:
        headers = auth(user_token(lab.state, username)) if username else {}
        user = lookup_token(lab.state, user_token(lab.state, username)) if username else None
        info = RequestInfo(
            method=method,
            route=route,
            path=path,
            headers=WatchedHeaders(headers.items()),
            _identify=lambda user=user: user,
        )
        who = f"as {username}" if username else "with no token (req.identify() gives None)"
        try:
            allowed = decide(lab, info) is True
        except (HookFailed, HookTimeout) as exc:  # the row fails, saying where
            raise ProbeFailed(f"authorize() failed on {method} {route} {who}") from exc
        if allowed:
            return Observed(True, None, f"authorize() allowed {method} {route} {who}")
    return Observed(False, None, f"{len(FUTURE)} requests for routes not shipped yet refused")
