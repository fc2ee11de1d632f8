"""The error answers every lab app gives, whatever its lesson."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from labapp.engine.guard import HookFailed, HookTimeout


def install_handlers(app: FastAPI) -> FastAPI:
    """The error answers every lab app gives: a hook's crash or hang named, input never echoed."""

    async def hook_failed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=500)

    async def hook_timeout(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=504)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own handler echoes the input back: that can be a password, and an
        # unencodable one (a lone surrogate) turns the 422 into a bare 500.
        errors = [
            {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", ""))}
            for error in getattr(exc, "errors", list)()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's `int` takes any size; SQLite (and datetime, and struct) do not. A number
        # no row can hold is the client's mistake: a 422, not a 500.
        detail = [{"loc": [], "msg": "a number in the request is out of range"}]
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(HookFailed, hook_failed)
    app.add_exception_handler(OverflowError, out_of_range)
    app.add_exception_handler(HookTimeout, hook_timeout)
    app.add_exception_handler(RequestValidationError, invalid_request)
    return app
