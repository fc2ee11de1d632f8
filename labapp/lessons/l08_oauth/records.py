"""What the authorization server remembers: users, clients, codes and tokens.

In memory for now, one :class:`Records` per server, under one lock: a code is claimed and a
token revoked atomically, so two parallel redemptions of one code cannot both pass (the
race RFC 6749 §4.1.2's "only once" is about). Moving this to the lab's SQLite store is a
later step; nothing here is a secret the audit log may see.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin

# How a security decision is made: ``decide(name, *args)`` runs the lab's hook of that name
# (or, outside a lab, whatever decisions the server was made with).
Decide = Callable[..., Any]


def unregistered(name: str, *args: Any) -> Any:
    """A client not yet registered with an authorization server has no one to decide."""
    raise RuntimeError(f"{name}: this client is not registered with an authorization server")


ACCESS_TOKEN_SECONDS = 300
CODE_SECONDS = 60


@dataclass
class User:
    id: str
    name: str
    email: str
    password: str = field(repr=False)

    def get_user_id(self) -> str:
        return self.id


@dataclass
class Client(ClientMixin):
    """A registered client. ``auth_method`` "none" marks a public client (RFC 6749 §2.1)."""

    client_id: str
    client_secret: str | None = field(repr=False)
    redirect_uris: list[str]
    scope: str
    grant_types: list[str]
    response_types: list[str]
    auth_method: str  # "none" | "client_secret_basic" | "client_secret_post"
    may_introspect: bool = False  # a resource server (RFC 7662 §4: only callers we know)
    decide: Decide = field(default=unregistered, repr=False, compare=False)

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # None, always: a request must name its redirect_uri (RFC 9700 §2.1 wants it exact).
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return self.decide("allowed_scope", self.scope, scope or "", None)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return self.decide("check_redirect_uri", list(self.redirect_uris), redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        if self.client_secret is None or not isinstance(client_secret, str):
            return False
        return secrets.compare_digest(self.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # One method per client at every endpoint: a confidential client never gets in as
        # "none", a public one never with a secret it should not have.
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return self.decide("check_response_type", list(self.response_types), response_type)

    def check_grant_type(self, grant_type: str) -> bool:
        return self.decide("check_grant_type", list(self.grant_types), grant_type)


@dataclass
class AuthCode(AuthorizationCodeMixin):
    code: str = field(repr=False)
    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    expires_at: float
    used: bool = False

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time


@dataclass
class Token(TokenMixin):
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    client_id: str
    user_id: str | None
    scope: str
    issued_at: int
    expires_in: int
    from_code: str | None = field(default=None, repr=False)
    family: str = ""  # every token rotated from one login shares it
    revoked: bool = False
    refresh_used: bool = False

    def check_client(self, client: ClientMixin) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def expires_at(self) -> int:
        return self.issued_at + self.expires_in

    def is_expired(self) -> bool:
        return self.expires_at() < time.time()

    def is_revoked(self) -> bool:
        return self.revoked


class Records:
    """Users, clients, codes and tokens of one authorization server."""

    def __init__(self, users: list[User], clients: list[Client], decide: Decide) -> None:
        self.lock = threading.Lock()
        self.decide = decide
        self.users = {u.id: u for u in users}
        self.clients: dict[str, Client] = {}
        self.register(clients)
        self.codes: dict[str, AuthCode] = {}
        self.tokens: list[Token] = []
        self.nonces: set[tuple[str, str]] = set()  # (client_id, nonce) seen at /authorize

    def register(self, clients: list[Client]) -> None:
        """Register clients (a lab does it once its client app's URL is known)."""
        for client in clients:
            client.decide = self.decide
            self.clients[client.client_id] = client

    def login(self, username: str, password: str) -> User | None:
        user = self.users.get(username)
        if user is None or not secrets.compare_digest(user.password.encode(), password.encode()):
            return None
        return user

    def claim_code(self, code: str, client_id: str) -> AuthCode | None:
        """The code if this client may redeem it now, marked used in the same step.

        Marking is atomic (under the lock), so of two parallel redemptions only one sees an
        unused code. Whether a used code may be redeemed again is ``code_single_use``'s call,
        made outside the lock (a hook may take its time); when it says no, the tokens the
        first redemption issued are revoked (RFC 6749 §4.1.2) and the answer is None, so
        Authlib says invalid_grant.
        """
        with self.lock:
            item = self.codes.get(code)
            if item is None or item.client_id != client_id or item.expires_at < time.time():
                return None
            already_used, item.used = item.used, True
        if self.decide("code_single_use", already_used):
            return item
        with self.lock:
            for token in self.tokens:
                if token.from_code == code:
                    token.revoked = True
        return None

    def find_token(self, value: str) -> Token | None:
        with self.lock:
            for token in self.tokens:
                if value in (token.access_token, token.refresh_token):
                    return token
        return None

    def take_refresh_token(self, value: str) -> Token | None:
        """The live token record this refresh token belongs to (rotation: usable once).

        Reuse of a rotated refresh token revokes every token of its family, the newest
        included (RFC 9700 §4.14.2: the legitimate client and the thief cannot both go on).
        """
        with self.lock:
            for token in self.tokens:
                if token.refresh_token != value:
                    continue
                if token.refresh_used:
                    for other in self.tokens:
                        if other.family == token.family:
                            other.revoked = True
                    return None
                if token.revoked:
                    return None
                return token
        return None
