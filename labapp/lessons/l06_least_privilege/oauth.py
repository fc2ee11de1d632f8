"""Lesson 06's token endpoint: an OAuth 2.0 Token Exchange that narrows a session's scopes.

A client (a reporting script, a mobile app) trades the user's session token for an access
token that may do less (RFC 8693 §2.1). The request is a form body
(``application/x-www-form-urlencoded`` in UTF-8, RFC 8693 §2.1, RFC 6749 Appendix B);
unrecognised parameters are ignored and defined ones may not repeat (RFC 6749 §3.2).
Errors are the JSON of RFC 6749 §5.2 with 400: ``invalid_request`` for a malformed request
or a subject token that is not a valid session (RFC 8693 §2.2.2), ``unsupported_grant_type``,
and ``invalid_scope`` for a scope that is malformed, unknown, missing (this server has no
default scope, RFC 6749 §3.3) or of which nothing may be granted.

Which scopes the new token gets is the learner's ``grant_scopes`` hook; the weak default
grants what was asked (scope escalation).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import JSONResponse

from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import LabState
from labapp.lessons.l06_least_privilege.inputs import field_names, shown_name
from labapp.lessons.l06_least_privilege.policy import (
    ACCESS_TOKEN_TYPE,
    ALL_SCOPES,
    ROLE_SCOPES,
    TOKEN_EXCHANGE,
    TOKEN_LIFETIME,
)

FORM = "application/x-www-form-urlencoded"
DEFINED = ("grant_type", "subject_token", "subject_token_type", "scope", "requested_token_type")
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3: scope-token
# RFC 6749 §5.1: a response that carries a token must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """A refusal the client reads as RFC 6749 §5.2 JSON: an error code and a description."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=400, headers=NO_STORE)


def form_params(content_type: str, raw: bytes) -> dict[str, str]:
    """The request's parameters, or ``invalid_request`` saying what is wrong with them."""
    if content_type.split(";")[0].strip().lower() != FORM:
        raise OAuthError("invalid_request", f"send the parameters as a form body ({FORM})")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the form body could not be read") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if not value:  # RFC 6749 §3.2: a parameter without a value counts as omitted
            continue
        if name in params and name in DEFINED:
            raise OAuthError("invalid_request", f"the {name} parameter is repeated")
        params.setdefault(name, value)  # anything not defined here is ignored
    return params


def requested_scopes(params: dict[str, str]) -> set[str]:
    scope = params.get("scope")
    if scope is None:
        raise OAuthError(
            "invalid_scope", "no scope requested, and this server has no default scope"
        )
    tokens = scope.split(" ")
    if not all(SCOPE_TOKEN.fullmatch(token) for token in tokens):
        raise OAuthError("invalid_scope", "scope must be scope names separated by single spaces")
    unknown = sorted(set(tokens) - ALL_SCOPES)
    if unknown:
        raise OAuthError("invalid_scope", f"unknown scope {shown_name(unknown[0])}")
    return set(tokens)


def install(app: Any, state: LabState) -> None:
    """Add ``POST /oauth/token`` to the lab's app."""
    store = state.store

    def session_user(token: str) -> dict[str, Any] | None:
        return store.one(
            "SELECT u.id, u.username, u.role FROM sessions s JOIN users u "
            "ON u.username = s.username WHERE s.token = ?",
            (token,),
        )

    async def exchange(request: Request) -> dict[str, Any]:
        """The new token's answer, or :class:`OAuthError` (a 400 the client can act on)."""
        params = form_params(request.headers.get("content-type", ""), await request.body())
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type != TOKEN_EXCHANGE:
            raise OAuthError("unsupported_grant_type", f"this endpoint grants {TOKEN_EXCHANGE}")
        subject = params.get("subject_token")
        if subject is None:
            raise OAuthError("invalid_request", "subject_token (your session token) is required")
        if params.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise OAuthError("invalid_request", f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
        user = session_user(subject)
        if user is None:  # RFC 8693 §2.2.2: an invalid subject token is invalid_request
            raise OAuthError("invalid_request", "subject_token is not a valid session")
        request.state.actor = user["username"]
        requested = requested_scopes(params)
        allowed = set(ROLE_SCOPES.get(user["role"], ()))
        granted = field_names(
            state, "grant_scopes", await state.call("grant_scopes", requested, allowed)
        )
        granted &= ALL_SCOPES  # a scope nobody defined means nothing
        if not granted:
            raise OAuthError("invalid_scope", "none of the requested scopes may be granted")
        access = secrets.token_urlsafe(24)
        store.add_secret(access)
        store.execute(
            "INSERT INTO access_tokens VALUES (?, ?, ?, ?)",
            (access, user["username"], " ".join(sorted(granted)), time.time() + TOKEN_LIFETIME),
        )
        answer: dict[str, Any] = {
            "access_token": access,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": " ".join(sorted(granted)),  # RFC 6749 §3.3: say what was granted
        }
        if granted - set(ROLE_SCOPES.get(user["role"], ())):
            answer["flag"] = state.flag("scope-escalation")
        return answer

    @app.post("/oauth/token", summary="Exchange your session for a narrower token (RFC 8693)")
    async def token(request: Request) -> JSONResponse:
        request.state.actor = "anonymous"
        try:
            answer = await exchange(request)
        except OAuthError as refused:
            reason = f"{refused.error}: {refused.description}"
            store.audit(request.state.actor, "POST /oauth/token", "token", "deny", reason)
            return refused.response()
        except (HookFailed, HookTimeout) as exc:
            store.audit(request.state.actor, "POST /oauth/token", "token", "error", str(exc))
            raise
        reason = f"granted {answer['scope']}"
        store.audit(request.state.actor, "POST /oauth/token", "token", "allow", reason)
        return JSONResponse(answer, headers=NO_STORE)
