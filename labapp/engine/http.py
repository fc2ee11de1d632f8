"""HTTP clients for labs: bounded timeouts, no keep-alive, cheap to create."""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(5.0, connect=2.0)


@functools.cache
def default_tls() -> ssl.SSLContext:
    # httpx builds a fresh SSL context (loading the system CA bundle, ~18 ms) for every
    # client, even one that only speaks plain HTTP to loopback. Build it once.
    return ssl.create_default_context()


def lab_client(base_url: str, **options: Any) -> httpx.Client:
    """A client for a lab.

    No keep-alive: after a 500 uvicorn closes the connection, and a pooled client would
    then fail the *next*, unrelated request with ReadError and blame the wrong thing.
    """
    options.setdefault("verify", default_tls())
    return httpx.Client(
        base_url=base_url,
        timeout=TIMEOUT,
        limits=httpx.Limits(max_keepalive_connections=0),
        **options,
    )
