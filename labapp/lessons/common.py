"""Small pieces several lessons share: bearer identities, the request a hook sees, a wordlist."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import Request

from labapp.engine.spec import LabState

IDENTITY = "identity"


def issue_session_tokens(state: LabState, *, listed: bool = True) -> None:
    """Give every seeded user a bearer token, fresh per lab start, as if already logged in.

    ``listed=False`` keeps them out of ``lab.users`` (and the card): for labs where the
    learner plays an outsider, not these people.
    """
    state.store.executescript("CREATE TABLE sessions (token TEXT PRIMARY KEY, username TEXT);")
    for user in state.store.query("SELECT username, role, display_name FROM users ORDER BY id"):
        token = secrets.token_urlsafe(24)
        state.store.execute("INSERT INTO sessions VALUES (?, ?)", (token, user["username"]))
        state.store.add_secret(token)
        if listed:
            state.users.append({**user, "token": token})


def session_token(state: LabState, username: str) -> str:
    """A seeded user's bearer token, listed or not (graders act as the lab's admin)."""
    row = state.store.one("SELECT token FROM sessions WHERE username = ?", (username,))
    if row is None:
        raise LookupError(f"no session for {username!r}")
    return row["token"]


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def lookup_token(state: LabState, token: str | None) -> dict[str, Any] | None:
    """The user a bearer token belongs to, straight from the store (no outage applies)."""
    if token is None:
        return None
    return state.store.one(
        "SELECT u.id, u.username, u.role FROM sessions s JOIN users u "
        "ON u.username = s.username WHERE s.token = ?",
        (token,),
    )


def identify(state: LabState, request: Request) -> dict[str, Any] | None:
    """Ask the identity service who holds this request's bearer token.

    None when no token (or an unknown one) came. The service is asked only when there is a
    token to ask about, so it raises ``DependencyDown`` during an outage only then.
    """
    token = bearer_token(request)
    if token is None:
        return None
    state.require_up(IDENTITY)
    return lookup_token(state, token)


def challenge(realm: str, *, invalid_token: bool = False) -> dict[str, str]:
    """The WWW-Authenticate header of a 401 (RFC 6750 §3 and §3.1).

    No credentials: the scheme and realm only. A token that was checked and is not valid:
    ``error="invalid_token"`` too, so the client knows to get a new one.
    """
    value = f'Bearer realm="{realm}"'
    if invalid_token:
        value += ', error="invalid_token"'
    return {"WWW-Authenticate": value}


@dataclass
class RequestInfo:
    """What an ``authorize`` hook sees of a request.

    ``headers`` maps lower-case field names to values (a lesson may pass its own mapping).
    ``identify()`` returns the caller's user (a dict with ``username`` and ``role``) or
    None when no valid credentials came; it raises ``DependencyDown`` when it must ask
    the identity service about a token and the service is down.
    """

    method: str
    route: str
    path: str
    headers: Mapping[str, str]
    _identify: Callable[[], dict[str, Any] | None] = field(repr=False)

    def identify(self) -> dict[str, Any] | None:
        return self._identify()


def request_info(
    state: LabState, request: Request, headers: Mapping[str, str] | None = None
) -> RequestInfo:
    """The hook's view of ``request``.

    ``headers``, when given, replaces the plain copy of the request's headers: a lesson may
    pass a mapping that also notes which fields the hook looked at.
    """
    route = request.scope.get("route")
    return RequestInfo(
        method=request.method,
        route=getattr(route, "path", request.url.path),
        path=request.url.path,
        headers={k.lower(): v for k, v in request.headers.items()} if headers is None else headers,
        _identify=lambda: identify(state, request),
    )


def user_token(state: LabState, username: str) -> str:
    return next(u["token"] for u in state.users if u["username"] == username)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def load_wordlist() -> list[str]:
    """The course's own candidate passwords (``labapp/lessons/passwords.txt``), commonest first.

    Lesson 03 cracks a password dump with it and lesson 04 an HS256 key: one list for both,
    so a learner meets the same words twice.
    """
    text = resources.files(__package__).joinpath("passwords.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
