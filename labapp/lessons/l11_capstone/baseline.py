"""The capstone's starting point: the documents API as it arrives, with no protection.

The notebook shows this source in cells for the learner to secure; the course's tests mount
it as the "weak" app every attack must get through. Everything it does wrong is on purpose
and typical: tokens decoded without a pinned algorithm or an audience, a role read from the
token, the API key compared as it is stored (in plain text), whole rows returned, any field
written, no owner in any query, refresh tokens that never rotate, no headers, no events.
"""

import hashlib
import secrets
import time
import uuid
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Body, FastAPI, Header, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

DocumentId = Annotated[int, Path(ge=-(2**63), le=2**63 - 1)]  # what SQLite can hold
HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


def build_app(kit: Any) -> FastAPI:
    app = FastAPI(title="Documents API (unprotected)")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Unprotected, not broken: a malformed request gets a 422 that does not echo it.
        return JSONResponse({"detail": "malformed request"}, status_code=422)

    def text(value: Any) -> str:
        return str(value).encode("utf-8", "replace").decode()  # whatever came, as text

    def claims_of(request: Request) -> dict[str, Any]:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        try:  # "we only issue HS256 anyway": the header's alg is taken as it comes
            header = jwt.get_unverified_header(token)
            return jwt.decode(
                token,
                kit.signing_key,
                algorithms=[header.get("alg", "HS256")],
                options={"verify_aud": False},
            )
        except jwt.PyJWTError:
            raise HTTPException(401, "invalid token") from None

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/login")
    def login(body: Annotated[dict, Body()]) -> dict[str, Any]:
        db = kit.connect()
        row = db.execute(
            "SELECT username, role, password_hash FROM users WHERE username = ?",
            (text(body.get("username")),),
        ).fetchone()
        if row is None:
            raise HTTPException(404, "no such user")
        try:
            HASHER.verify(row["password_hash"], text(body.get("password")))
        except (InvalidHashError, VerificationError):
            raise HTTPException(401, "wrong password") from None
        now = int(time.time())
        claims = {"sub": row["username"], "role": row["role"], "iat": now, "jti": uuid.uuid4().hex}
        refresh = secrets.token_urlsafe(24)
        db.execute(
            "INSERT INTO refresh_tokens (digest, family, username) VALUES (?, ?, ?)",
            (hashlib.sha256(refresh.encode()).hexdigest(), uuid.uuid4().hex, row["username"]),
        )
        return {
            "access_token": jwt.encode(claims, kit.signing_key, algorithm="HS256"),
            "refresh_token": refresh,
        }

    @app.post("/refresh")
    def refresh(body: Annotated[dict, Body()]) -> dict[str, Any]:
        digest = hashlib.sha256(str(body.get("refresh_token")).encode()).hexdigest()
        row = (
            kit.connect()
            .execute(
                "SELECT r.username, u.role FROM refresh_tokens r JOIN users u USING (username) "
                "WHERE r.digest = ?",
                (digest,),
            )
            .fetchone()
        )
        if row is None:
            raise HTTPException(401, "invalid refresh token")
        claims = {"sub": row["username"], "role": row["role"], "iat": int(time.time())}
        return {"access_token": jwt.encode(claims, kit.signing_key, algorithm="HS256")}

    @app.get("/me")
    def me(request: Request) -> dict[str, Any]:
        claims = claims_of(request)
        row = (
            kit.connect()
            .execute("SELECT * FROM users WHERE username = ?", (str(claims.get("sub")),))
            .fetchone()
        )
        if row is None:
            raise HTTPException(404, "no such user")
        return dict(row)

    @app.get("/documents")
    def documents() -> list[dict[str, Any]]:
        return [dict(row) for row in kit.connect().execute("SELECT * FROM documents")]

    @app.get("/documents/{document_id}")
    def document(document_id: DocumentId, request: Request) -> dict[str, Any]:
        claims_of(request)
        row = (
            kit.connect().execute("SELECT * FROM documents WHERE id = ?", (document_id,)).fetchone()
        )
        if row is None:
            raise HTTPException(404, "no such document")
        return dict(row)

    @app.put("/documents/{document_id}")
    def edit(
        document_id: DocumentId, request: Request, body: Annotated[dict, Body()]
    ) -> dict[str, Any]:
        claims_of(request)
        db = kit.connect()
        for name, value in body.items():  # every field the client sends, owner included
            if name in ("title", "body", "owner", "internal_note"):
                db.execute(
                    f"UPDATE documents SET {name} = ? WHERE id = ?", (text(value), document_id)
                )
        row = db.execute("SELECT * FROM documents WHERE id = ?", (document_id,)).fetchone()
        if row is None:
            raise HTTPException(404, "no such document")
        return dict(row)

    @app.get("/admin/users")
    def users(request: Request) -> list[dict[str, Any]]:
        if claims_of(request).get("role") not in ("admin", "support", None):
            raise HTTPException(403, "admins only")
        return [dict(row) for row in kit.connect().execute("SELECT * FROM users")]

    @app.post("/partners/events")
    def partner_event(
        body: Annotated[dict, Body()], x_api_key: Annotated[str, Header()] = ""
    ) -> dict[str, Any]:
        prefix = x_api_key.partition("_")[0]
        row = (
            kit.connect()
            .execute("SELECT name FROM partners WHERE prefix = ?", (prefix,))
            .fetchone()
        )
        if row is None:  # the prefix is enough: "the rest is checked by the partner's VPN"
            raise HTTPException(401, "unknown partner")
        return {"accepted": body.get("reference")}

    @app.post("/logout")
    def logout() -> dict[str, str]:
        return {"status": "logged out"}  # nothing is revoked: the tokens live on

    return app
