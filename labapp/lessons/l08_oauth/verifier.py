"""What the photos API knows to check a token: the issuer, its own audience, the issuer's keys.

The API sets :data:`CURRENT` for each request before it asks the ``validate_access_token``
hook; the guard carries the request's context into the hook's thread, so the weak default
and the sound version (and a learner's, through ``lab.net``) find the same keys.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jwt


@dataclass(frozen=True)
class Verifier:
    issuer: str
    audience: str  # this API's identifier: what an access token for it carries as aud
    jwks: Callable[[], dict[str, Any]]

    def signing_key(self, token: str) -> Any:
        """The issuer's public key named by the token's ``kid`` (KeyError if it has none)."""
        kid = jwt.get_unverified_header(token).get("kid")
        return jwt.PyJWKSet.from_dict(self.jwks())[kid].key


CURRENT: ContextVar[Verifier] = ContextVar("l08_verifier")


def current() -> Verifier:
    return CURRENT.get()
