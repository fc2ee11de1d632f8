"""LabServer: a real uvicorn server on a loopback socket, in a daemon thread.

Why a thread: a notebook kernel already runs an event loop, so ``uvicorn.run`` cannot be
called there, and serving on the kernel's own loop would deadlock the synchronous httpx
calls a learner makes from a cell. So the server gets its own loop in its own thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import ssl
import threading
import time
from typing import Any

import uvicorn

from labapp.engine.errors import LabStartError
from labapp.engine.loopback import LAB_HOST, LOOPBACK, require_loopback
from labapp.engine.tls import TLSProtocol

_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class _ThreadRouter(logging.Handler):
    """Send each uvicorn log record to the buffer of the lab whose thread emitted it.

    uvicorn's loggers are process-wide. Without this, a server's log lines would land in
    whichever notebook cell happens to run next; with it, each lab keeps its own lines and
    the grader's report shows them.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.buffers: dict[int, collections.deque[str]] = {}
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        buffer = self.buffers.get(record.thread or 0)
        if buffer is not None:
            buffer.append(self.format(record))


_router = _ThreadRouter()


def _quiet_uvicorn_loggers() -> None:
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [_router] if name == "uvicorn" else []
        logger.setLevel(logging.INFO)
        logger.propagate = name != "uvicorn"  # children reach "uvicorn", never the root


class _Server(uvicorn.Server):
    """uvicorn polls its exit flag every 100 ms; this one can also be woken at once."""

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):  # on_tick refreshes the Date header, etc.
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def wake_to_exit(self) -> None:
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                self._loop.call_soon_threadsafe(self._wake.set)


class LabServer:
    """Serve an ASGI app on 127.0.0.1 at a free port until :meth:`stop` is called."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = LOOPBACK,
        log_lines: int = 500,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        require_loopback(host)
        self.app = app
        self.ssl_context = ssl_context  # serve HTTPS with it (see labapp.engine.tls)
        self.log: collections.deque[str] = collections.deque(maxlen=log_lines)
        self.port: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None  # ours until the server has closed it

    @property
    def url(self) -> str:
        # Over HTTPS, by name: a certificate names a host, not an address (the socket is on
        # 127.0.0.1 all the same; localhost resolves there).
        if self.ssl_context is not None:
            return f"https://{LAB_HOST}:{self.port}"
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0, *, port: int = 0) -> None:
        """Start serving; raise :class:`LabStartError` instead of hanging if that fails."""
        _quiet_uvicorn_loggers()
        # Pre-binding the socket gives us the port before the thread starts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            sock.close()
            raise LabStartError(f"could not bind a loopback port: {exc}") from exc
        self.port = sock.getsockname()[1]
        tls: dict[str, Any] = {}
        if self.ssl_context is not None:
            context = self.ssl_context
            tls = {"ssl_context_factory": lambda config, default: context, "http": TLSProtocol}
        config = uvicorn.Config(
            self.app,
            log_config=None,
            # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default, and every lab
            # client *is* 127.0.0.1. Lessons that teach header trust do it visibly.
            proxy_headers=False,
            lifespan="off",
            ws="none",
            **{"http": "h11", **tls},
            # A hung request must never make stop() hang.
            timeout_graceful_shutdown=1,
            timeout_keep_alive=2,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name=f"lab-server-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._cleanup(sock)
                tail = "\n".join(list(self.log)[-10:]) or "(no log lines)"
                raise LabStartError(f"the lab server exited during start-up. Its log:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                self._cleanup(sock)
                raise LabStartError(f"the lab server did not start within {timeout:.0f} s")
            time.sleep(0.001)
        self._sock = sock

    def _serve(self, sock: socket.socket) -> None:
        ident = threading.get_ident()
        _router.buffers[ident] = self.log
        try:
            assert self._server is not None
            self._server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a failed start lands here
            self.log.append(f"ERROR server thread ended: {exc!r}")
        finally:
            _router.buffers.pop(ident, None)

    @staticmethod
    def _cleanup(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.close()

    def restart(self, ssl_context: ssl.SSLContext | None) -> None:
        """Serve again on the same port with another TLS context (a changed server setting)."""
        port = self.port
        self.stop()
        self.ssl_context = ssl_context
        self.start(port=port or 0)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        if self._server is not None:
            self._server.wake_to_exit()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._sock is not None:
            self._cleanup(self._sock)
            self._sock = None
