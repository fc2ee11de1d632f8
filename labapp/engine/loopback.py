"""The one address a lab ever listens on, and the check that refuses any other."""

from __future__ import annotations

from labapp.engine.errors import NotLoopback

LOOPBACK = "127.0.0.1"
# The name HTTPS labs are reached by, and the one name their certificates carry: certificates
# name hosts, not addresses. It must resolve to LOOPBACK (it does in every /etc/hosts).
LAB_HOST = "localhost"


def require_loopback(host: str) -> None:
    """Refuse any address but 127.0.0.1: labs are weak on purpose."""
    if host != LOOPBACK:
        raise NotLoopback(
            f"lab servers listen on {LOOPBACK} only, not {host!r}: they are weak on "
            "purpose and must never be reachable from another machine"
        )
