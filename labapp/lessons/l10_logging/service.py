"""The state of lesson 10's login + API service: accounts, tokens, history, and its log.

Kept in memory, one :class:`Service` per lab and one per replayed day, so a grade replays
hundreds of requests in about a second. The log is a real JSON Lines file in the lab's
folder; the service also keeps each request's lines, so a grader can find what one request
wrote.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pyotp

from labapp.lessons.l10_logging.people import HASHER, ZONE_OF, country

ACCESS_SECONDS = 15 * 60  # short-lived access tokens (lesson 05)
ISSUER, AUDIENCE = "https://login.lab10.test", "orders-api"
WINDOW = 3600.0  # the risk context counts failures over the last hour
TOTP_STEP = 30  # seconds: pyotp's default, RFC 6238's recommended time step
DUMMY_HASH = HASHER.hash("no such user: the same work as a real check")


class Clock:
    """The service's time. Real time, unless a replay sets it: a day replays in a second."""

    def __init__(self) -> None:
        self._fixed: float | None = None

    def now(self) -> float:
        return time.time() if self._fixed is None else self._fixed

    def set(self, at: float) -> None:
        self._fixed = at


def iso(at: float) -> str:
    """ISO 8601 in UTC, to the millisecond: the ``time`` of every event."""
    stamp = datetime.fromtimestamp(at, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass
class Account:
    username: str
    role: str
    password_hash: str
    country: str
    totp_secret: str
    mfa_required: bool = False
    known_devices: set[str] = field(default_factory=set)
    known_addresses: set[str] = field(default_factory=set)


@dataclass
class Refresh:
    username: str
    family: str
    used: bool = False


class Service:
    """Accounts, tokens, failure history and the log of one running service."""

    def __init__(self, accounts: list[Account], clock: Clock, log_path: Path) -> None:
        self.accounts = {account.username: account for account in accounts}
        self.clock = clock
        self.key = secrets.token_bytes(32)
        self.orders: dict[int, str] = {}  # order id -> owner
        for number, name in enumerate(sorted(self.accounts), start=1):
            self.orders[100 + 2 * number] = name
            self.orders[101 + 2 * number] = name
        self._refresh: dict[str, Refresh] = {}  # sha256 of the token -> its record
        self._revoked: set[str] = set()  # families
        self._failures: deque[tuple[float, str, str]] = deque()  # (when, username, client)
        self.log_path = log_path
        self.lines: list[str] = []
        self.by_request: dict[str, list[str]] = {}
        self.asked: dict[str, int] = {}  # request id -> events the service asked to log
        self.stamps: dict[str, str] = {}  # request id -> the time its events happened
        self._write = threading.Lock()

    # -- passwords, second factor -------------------------------------------------------

    def check_password(self, username: str, password: str) -> Account | None:
        account = self.accounts.get(username)
        try:  # an unknown user costs the same hash as a known one (lesson 03)
            HASHER.verify(account.password_hash if account else DUMMY_HASH, password)
        except Exception:  # argon2's VerifyMismatchError, InvalidHashError...
            return None
        return account

    def check_totp(self, account: Account, code: str) -> bool:
        return pyotp.TOTP(account.totp_secret).verify(code, for_time=self.clock.now())

    def totp_now(self, username: str) -> str:
        """The code the user's authenticator app shows now (graders and replays only)."""
        return pyotp.TOTP(self.accounts[username].totp_secret).at(self.clock.now())

    def with_code(self, username: str, send: Callable[[str], Any]) -> Any:
        """``send(code)`` with the user's current TOTP code, and again with the next one if
        a 30-second step began between reading the code and checking it (on real time a
        grader can straddle the boundary; a replay's clock stands still)."""
        step = int(self.clock.now() // TOTP_STEP)
        answer = send(self.totp_now(username))
        if answer.status_code == 401 and int(self.clock.now() // TOTP_STEP) != step:
            answer = send(self.totp_now(username))
        return answer

    # -- tokens ------------------------------------------------------------------------

    def issue(self, account: Account, family: str | None = None) -> dict[str, str]:
        now = self.clock.now()
        jti = uuid.uuid4().hex
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": account.username,
            "role": account.role,
            "iat": int(now),
            "exp": int(now) + ACCESS_SECONDS,
            "jti": jti,
        }
        refresh = secrets.token_urlsafe(32)
        family = family or uuid.uuid4().hex[:16]
        self._refresh[_digest(refresh)] = Refresh(account.username, family)
        return {
            "access_token": jwt.encode(claims, self.key, algorithm="HS256"),
            "refresh_token": refresh,
            "token_id": jti,
            "family": family,
        }

    def check_access(self, token: str) -> tuple[Account | None, str]:
        """The account a bearer token speaks for, or None and why not."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                # exp is checked below against the service's clock, which a replay sets
                options={"require": ["exp", "sub", "jti"], "verify_exp": False},
            )
        except jwt.InvalidSignatureError:
            return None, "bad_signature"
        except jwt.InvalidAudienceError:
            return None, "wrong_audience"
        except jwt.PyJWTError:
            return None, "malformed"
        if not isinstance(claims["exp"], int) or claims["exp"] <= self.clock.now():
            return None, "expired"
        account = self.accounts.get(claims["sub"])
        return (account, "valid") if account else (None, "unknown_user")

    def use_refresh(self, token: str) -> tuple[Refresh | None, str]:
        """Spend a refresh token: (its record, "ok"), or why it was refused."""
        record = self._refresh.get(_digest(token))
        if record is None:
            return None, "unknown_refresh"
        if record.family in self._revoked:
            return record, "revoked_family"
        if record.used:  # a second use: one of the two holders is not the user
            self._revoked.add(record.family)
            return record, "reused"
        record.used = True
        return record, "ok"

    def revoke(self, token: str) -> Refresh | None:
        record = self._refresh.get(_digest(token))
        if record is not None:
            self._revoked.add(record.family)
        return record

    def expired_token(self, username: str) -> str:
        """An access token of ``username`` that expired a minute ago (graders only)."""
        account = self.accounts[username]
        past = self.clock.now() - ACCESS_SECONDS - 60
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": account.username, "role": account.role}
        claims |= {"iat": int(past), "exp": int(past) + ACCESS_SECONDS, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.key, algorithm="HS256")

    # -- history and the risk context ---------------------------------------------------

    def failed(self, username: str, client: str) -> None:
        self._failures.append((self.clock.now(), username, client))

    def context(self, account: Account, client: str, device: str | None, agent: str) -> dict:
        """What ``assess_risk`` is told about a login whose password was right."""
        now = self.clock.now()
        while self._failures and self._failures[0][0] < now - WINDOW:
            self._failures.popleft()
        offset = ZONE_OF.get(account.country, 0)
        return {
            "username": account.username,
            "client": client,
            "country": country(client),
            "home_country": account.country,
            "device_known": device is not None and device in account.known_devices,
            "new_address": client not in account.known_addresses,
            "local_hour": datetime.fromtimestamp(now + offset * 3600, UTC).hour,
            "failures_user": sum(1 for _, who, _ in self._failures if who == account.username),
            "failures_client": sum(1 for _, _, where in self._failures if where == client),
            "user_agent": agent,
        }

    def remember(self, account: Account, client: str, device: str) -> None:
        account.known_devices.add(device)
        account.known_addresses.add(client)

    # -- the log ------------------------------------------------------------------------

    def ask(self, request_id: str) -> None:
        self.asked[request_id] = self.asked.get(request_id, 0) + 1

    def write(self, line: str, request_id: str) -> None:
        """Append one line the audit hook returned to the JSON Lines file, as returned."""
        line = line.removesuffix("\n")  # the service adds the newline itself
        with self._write:
            with self.log_path.open("a", encoding="utf-8", errors="backslashreplace") as out:
                out.write(line + "\n")
            self.lines.append(line)
            self.by_request.setdefault(request_id, []).append(line)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "backslashreplace")).hexdigest()
