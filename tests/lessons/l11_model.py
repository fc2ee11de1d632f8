"""Lesson 11's model answer (until the solution notebook holds it): the course's tests mount it.

A documents API secured with FastAPI's own guardrails: one app-level dependency identifies
every caller (deny by default: a route nobody marked public needs a user or a partner), one
Security dependency checks scopes per route, Pydantic models forbid unknown fields and
response models allow-list the output, ownership lives in the SQL, refresh tokens rotate in
families, security headers on every answer, an audit event for every decision.
"""

import hashlib
import hmac
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, FastAPI, HTTPException, Path, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from pydantic import BaseModel, ConfigDict, Field, field_validator

ISSUER, AUDIENCE = "https://docs.capstone.test", "documents-api"
ACCESS_SECONDS = 15 * 60
HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)  # OWASP's minimum
DUMMY = HASHER.hash("an unknown user costs one hash too")
DocumentId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # SQLite holds 64 bits; ids are small
SCOPES = {  # role -> what its tokens may do
    "customer": {"documents:read", "documents:write"},
    "support": {"documents:read", "documents:read-any"},
    "admin": {"documents:read", "documents:read-any", "documents:write", "users:admin"},
}
PUBLIC: set[Callable[..., Any]] = set()
PARTNER: set[Callable[..., Any]] = set()


def public(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a route as open to anyone (health, login, refresh): everything else is not."""
    PUBLIC.add(endpoint)
    return endpoint


def partner(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a route as called by partners with an API key, not by users."""
    PARTNER.add(endpoint)
    return endpoint


# -- what callers send and get back ---------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a visible 422


class Login(Strict):
    username: Annotated[str, Field(pattern=r"^[a-z][a-z0-9._-]{0,63}$")]
    password: Annotated[str, Field(min_length=1, max_length=256)]

    @field_validator("password")
    @classmethod
    def encodable(cls, value: str) -> str:
        value.encode("utf-8")  # a lone surrogate cannot be hashed: a 422, not a 500
        return value


class RefreshIn(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int = ACCESS_SECONDS


class DocumentIn(Strict):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(max_length=10_000)]


class DocumentOut(BaseModel):  # no internal_note: staff notes never leave in this model
    id: int
    owner: str
    title: str
    body: str


class StaffDocumentOut(DocumentOut):
    internal_note: str


class UserOut(BaseModel):
    username: str
    role: str


class Event(Strict):
    kind: Annotated[str, Field(max_length=64)]
    reference: Annotated[str, Field(max_length=128)]


# -- identity -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    kind: str  # "user", "partner" or "anyone"
    name: str = ""
    role: str = ""
    scopes: frozenset[str] = frozenset()
    token_id: str = ""


def build_app(kit: Any, leave_out: frozenset[str] = frozenset()) -> FastAPI:
    """The whole API, on the lab's kit: its database, its signing key, its audit log."""
    db_path, key, audit = kit.db_path, kit.signing_key, kit.audit

    def connect() -> Iterator[sqlite3.Connection]:
        # One connection per request, autocommit (BEGIN IMMEDIATE where a race matters).
        # FastAPI runs sync dependencies and routes in worker threads, one after another:
        # the connection moves between threads but is never used by two at once.
        db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    Db = Annotated[sqlite3.Connection, Depends(connect)]
    bearer = HTTPBearer(auto_error=False)
    api_key = APIKeyHeader(name="X-API-Key", auto_error=False)

    def denied(status: int, detail: str, **headers: str) -> HTTPException:
        return HTTPException(status, detail, headers=headers or None)

    def user_from(token: str, db: sqlite3.Connection, request: Request) -> Caller:
        try:
            if jwt.get_unverified_header(token).get("typ") != "at+jwt":
                raise jwt.InvalidTokenError("not an access token")
            claims = jwt.decode(
                token,
                key,
                algorithms=["HS256"],  # pinned: never read from the token
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=30,
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
            too_long = claims["exp"] - claims["iat"] > ACCESS_SECONDS
            if too_long and not leave_out & {
                "lifetime",
                "short-lived",
            }:  # PyJWT takes any future exp
                raise jwt.InvalidTokenError("lives longer than this API issues")
        except (jwt.PyJWTError, TypeError):  # TypeError: exp or iat as a string of digits
            audit("token.refused", who=None, reason="invalid", client=request.client.host)
            raise denied(
                401, "invalid token", **{"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from None
        row = db.execute(
            "SELECT u.username, u.role FROM users u WHERE u.username = ? AND u.active = 1 "
            "AND NOT EXISTS (SELECT 1 FROM revoked_jti r WHERE r.jti = ?)",
            (claims["sub"], claims["jti"]),
        ).fetchone()
        if row is None:  # deleted, deactivated, or logged out
            raise denied(
                401, "invalid token", **{"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        return Caller(
            "user", row["username"], row["role"], frozenset(SCOPES[row["role"]]), claims["jti"]
        )

    def partner_from(key_text: str, db: sqlite3.Connection) -> Caller:
        prefix, _, _ = key_text.partition("_")
        row = db.execute(
            "SELECT name, key_hash FROM partners WHERE prefix = ? AND revoked = 0", (prefix,)
        ).fetchone()
        digest = hashlib.sha256(key_text.encode()).hexdigest()
        if row is None or not hmac.compare_digest(row["key_hash"], digest):
            raise denied(401, "invalid API key")
        return Caller("partner", row["name"], "partner", frozenset({"events:write"}))

    async def identify(
        request: Request,
        db: Db,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        key_text: Annotated[str | None, Depends(api_key)],
    ) -> Caller:
        """Who is calling. Runs for every route (the app's own dependency): a route is open only
        if it says so, so a path operation someone adds tomorrow starts closed."""
        route = request.scope.get("route")
        endpoint = getattr(route, "endpoint", None)
        if endpoint in PUBLIC:
            return Caller("anyone")
        if endpoint in PARTNER:
            if not key_text:
                raise denied(401, "an API key is required")
            return partner_from(key_text, db)
        if credentials is None:
            raise denied(401, "a bearer token is required", **{"WWW-Authenticate": "Bearer"})
        return user_from(credentials.credentials, db, request)

    def require(scopes: SecurityScopes, caller: Annotated[Caller, Depends(identify)]) -> Caller:
        """The scopes this route needs, checked against the caller's (RFC 6750 §3.1)."""
        missing = set(scopes.scopes) - caller.scopes
        if "scopes" in leave_out:
            missing = set()
        wanted = scopes.scope_str
        if missing:
            audit("authz.denied", who=caller.name, reason="scope", scopes=sorted(missing))
            raise denied(
                403,
                "insufficient scope",
                **{"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{wanted}"'},
            )
        return caller

    def caller_with(*scopes: str) -> Any:
        return Annotated[Caller, Security(require, scopes=list(scopes))]

    guards = [] if "deny-by-default" in leave_out else [Depends(identify)]
    app = FastAPI(title="Documents API", dependencies=guards)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422 echoes the input back: a password, or a lone surrogate that
        # cannot be encoded, which turns the 422 into a 500. Say where, not what.
        where = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return JSONResponse({"detail": where}, status_code=422)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[..., Any]) -> Response:
        response = await call_next(request)
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def issue(db: sqlite3.Connection, username: str, role: str, family: str) -> Tokens:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": username,
            "iat": now,
            "exp": now + (3600 if "short-lived" in leave_out else ACCESS_SECONDS),
            "jti": uuid.uuid4().hex,
        }
        access = jwt.encode(claims, key, algorithm="HS256", headers={"typ": "at+jwt"})
        refresh = secrets.token_urlsafe(32)
        db.execute(
            "INSERT INTO refresh_tokens (digest, family, username, used) VALUES (?, ?, ?, 0)",
            (hashlib.sha256(refresh.encode()).hexdigest(), family, username),
        )
        return Tokens(access_token=access, refresh_token=refresh)

    @app.get("/health")
    @public
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/login", response_model=Tokens)
    @public
    def login(body: Login, db: Db, request: Request) -> Tokens:
        row = db.execute(
            "SELECT username, role, password_hash FROM users WHERE username = ? AND active = 1",
            (body.username,),
        ).fetchone()
        try:
            HASHER.verify(row["password_hash"] if row else DUMMY, body.password)
        except (VerificationError, InvalidHashError):
            row = None
        if row is None:
            audit("login.failure", who=body.username, client=request.client.host)
            raise denied(401, "wrong username or password")
        audit("login.success", who=row["username"], client=request.client.host)
        return issue(db, row["username"], row["role"], uuid.uuid4().hex)

    @app.post("/refresh", response_model=Tokens)
    @public
    def refresh(body: RefreshIn, db: Db) -> Tokens:
        digest = hashlib.sha256(body.refresh_token.encode()).hexdigest()
        db.execute("BEGIN IMMEDIATE")  # one spender at a time: the race has one winner
        try:
            row = db.execute(
                "SELECT r.family, r.username, r.used, u.role FROM refresh_tokens r "
                "JOIN users u ON u.username = r.username AND u.active = 1 "
                "WHERE r.digest = ? AND r.family NOT IN (SELECT family FROM revoked_families)",
                (digest,),
            ).fetchone()
            if row is None:
                raise denied(401, "invalid refresh token")
            if row["used"]:
                db.execute("INSERT OR IGNORE INTO revoked_families VALUES (?)", (row["family"],))
                audit("refresh.reuse", who=row["username"], family=row["family"])
                raise denied(401, "invalid refresh token")
            if "rotation" not in leave_out:
                db.execute("UPDATE refresh_tokens SET used = 1 WHERE digest = ?", (digest,))
            tokens = issue(db, row["username"], row["role"], row["family"])
            db.execute("COMMIT")
            return tokens
        except BaseException:
            if db.in_transaction:
                db.execute("COMMIT")  # a revoked family stays revoked
            raise

    @app.get("/me", response_model=UserOut)
    def me(caller: caller_with()) -> UserOut:
        return UserOut(username=caller.name, role=caller.role)

    @app.get("/documents", response_model=list[DocumentOut])
    def documents(caller: caller_with("documents:read"), db: Db) -> list[dict]:
        everyone = "documents:read-any" in caller.scopes
        rows = db.execute(
            "SELECT id, owner, title, body FROM documents WHERE (? OR owner = ?) ORDER BY id"
            if "owner-filter" not in leave_out
            else "SELECT id, owner, title, body FROM documents WHERE (? OR ? IS NOT NULL)",
            (everyone, caller.name),
        ).fetchall()
        return [dict(row) for row in rows]

    whole_rows = "response-model" in leave_out

    @app.get("/documents/{document_id}", response_model=None if whole_rows else DocumentOut)
    def document(document_id: DocumentId, caller: caller_with("documents:read"), db: Db) -> Any:
        everyone = "documents:read-any" in caller.scopes
        columns = "*" if whole_rows else "id, owner, title, body"
        row = db.execute(
            f"SELECT {columns} FROM documents WHERE id = ? AND (? OR owner = ?)",  # noqa: S608
            (document_id, everyone, caller.name),
        ).fetchone()
        if row is None:  # not yours and not there look the same
            audit("authz.denied", who=caller.name, reason="not_owner", document=document_id)
            raise denied(404, "no such document")
        return dict(row)

    @app.put("/documents/{document_id}", response_model=DocumentOut)
    def edit(
        document_id: DocumentId, body: DocumentIn, caller: caller_with("documents:write"), db: Db
    ) -> dict:
        if "ascii-titles" in leave_out:  # a file name made from the title, ASCII only
            body.title.encode("ascii")
        cursor = db.execute(
            "UPDATE documents SET title = ?, body = ? WHERE id = ? AND owner = ?",
            (body.title, body.body, document_id, caller.name),
        )
        if cursor.rowcount == 0:
            audit("authz.denied", who=caller.name, reason="not_owner", document=document_id)
            raise denied(404, "no such document")
        return dict(
            db.execute(
                "SELECT id, owner, title, body FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
        )

    @app.get("/admin/users", response_model=list[UserOut])
    def users(caller: caller_with("users:admin"), db: Db) -> list[dict]:
        return [dict(r) for r in db.execute("SELECT username, role FROM users ORDER BY username")]

    @app.post("/partners/events", status_code=202)
    @partner
    def partner_event(body: Event, caller: caller_with("events:write")) -> dict[str, str]:
        audit("partner.event", who=caller.name, event=body.kind)
        return {"accepted": body.reference}

    @app.post("/logout", status_code=204)
    def logout(caller: caller_with(), db: Db, body: RefreshIn | None = None) -> Response:
        if "jti-denylist" not in leave_out:
            db.execute("INSERT OR IGNORE INTO revoked_jti VALUES (?)", (caller.token_id,))
        if body is not None:
            digest = hashlib.sha256(body.refresh_token.encode()).hexdigest()
            db.execute(
                "INSERT OR IGNORE INTO revoked_families SELECT family FROM refresh_tokens "
                "WHERE digest = ? AND username = ?",
                (digest, caller.name),
            )
        audit("logout", who=caller.name)
        return Response(status_code=204)

    return app
