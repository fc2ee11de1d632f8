"""Authlib's framework-neutral authorization server, adapted to Starlette/FastAPI.

Authlib's server core is synchronous: it reads ``request.form``, ``request.payload.data`` and
``request.headers`` as plain attributes and calls the grants' methods without ``await``.
Starlette reads a body with ``await request.form()``. So a route reads the body on the event
loop (:func:`snapshot`), then runs Authlib's entry point in a worker thread
(``run_in_threadpool``); nothing of Authlib's ever blocks the server's loop.

Authlib was kept over oauthlib for its PKCE (RFC 7636), OpenID Connect code flow, RFC 9068
JWT access tokens, RFC 7009/7662 endpoints and RFC 9207 ``iss`` parts; the price is this
adapter and a hand-written ``/userinfo`` (Authlib's is Flask-shaped).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from starlette.datastructures import FormData, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

FORM = "application/x-www-form-urlencoded"


class _Payload(OAuth2Payload):
    """Query and form parameters together (form values win), as Authlib's Django side does."""

    def __init__(self, query: QueryParams, form: FormData | None) -> None:
        data: dict[str, str] = dict(query.items())
        lists: defaultdict[str, list[Any]] = defaultdict(list)
        for key, value in query.multi_items():
            lists[key].append(value)
        if form is not None:
            data.update((k, v) for k, v in form.items() if isinstance(v, str))
            for key, value in form.multi_items():
                lists[key].append(value)
        self._data = data
        self._datalist = lists  # validate_no_multiple_request_parameter reads it

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[Any]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """A request whose body was read on the loop: safe to hand to a worker thread."""

    def __init__(self, request: Request, form: FormData | None) -> None:
        super().__init__(request.method, str(request.url), headers=request.headers)
        self.payload = _Payload(request.query_params, form)
        self._args = request.query_params
        self._formdata = form if form is not None else FormData()

    @property
    def args(self) -> QueryParams:
        return self._args

    @property
    def form(self) -> FormData:  # grants read code, code_verifier, refresh_token here
        return self._formdata


async def read_form(request: Request) -> FormData | None:
    """An urlencoded POST body as FormData, or None for any other request.

    Parsed here with the standard library: Starlette's ``request.form()`` needs
    python-multipart, a dependency for multipart uploads the lab never takes.
    """
    if request.method != "POST" or not request.headers.get("content-type", "").startswith(FORM):
        return None
    body = (await request.body()).decode("utf-8", "replace")
    try:
        return FormData(parse_qsl(body, keep_blank_values=True, max_num_fields=100))
    except ValueError as exc:  # more than 100 fields: a client's mistake, not a 500
        raise HTTPException(400, "too many form fields") from exc


async def snapshot(request: Request) -> StarletteOAuth2Request:
    """Read the form body on the event loop and return a request Authlib can use anywhere."""
    return StarletteOAuth2Request(request, await read_form(request))


class RedirectAwareResponse(Response):
    """A Response with a settable ``location``: RFC 9207's extension rewrites it to add iss."""

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    @location.setter
    def location(self, value: str) -> None:
        self.headers["location"] = value


class StarletteAuthorizationServer(AuthorizationServer):
    """The Starlette half of Authlib's contract; the lab's half is in the subclass."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        raise TypeError("pass the request built by `await snapshot(request)`")

    def create_json_request(self, request: Any) -> Any:  # only RFC 7591/7592 use it
        raise NotImplementedError("dynamic client registration is not part of the lab")

    def handle_response(self, status: int, body: Any, headers: Any) -> RedirectAwareResponse:
        headers = dict(headers or [])
        if isinstance(body, dict):
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        return RedirectAwareResponse(body, status_code=status, headers=headers)


def bridge(
    loop: asyncio.AbstractEventLoop, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any
) -> Any:
    """From Authlib code in a worker thread, await ``fn(*args)`` on the server's loop.

    For the guarded learner hooks (``state.call``). Never call it on the loop's own thread:
    ``.result()`` would wait for a loop that is waiting for it.
    """
    return asyncio.run_coroutine_threadsafe(fn(*args), loop).result()
