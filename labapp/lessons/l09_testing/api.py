"""The notes API, built sound (``lab.url``) or with one regression (a mutant).

The sound build is what the learner's tests must pass against: JWT bearer tokens checked
through one dependency (signature, expiry, issuer, audience, a live account), roles read
per request (customer, support, admin), ownership in every query, scopes per route,
refresh tokens that are single-use and revoke their family on reuse (RFC 9700 §4.14.2),
CORS for one origin, and a public ``/health``. ``mutant`` names the one place a build
differs (see :mod:`mutants`); each ``if mutant == ...`` below is a regression of the kinds
the lesson names, written the way such a bug is usually written.
"""

# No `from __future__ import annotations`: FastAPI reads the local Caller and Admin aliases.
import hashlib
import re
import secrets
from typing import Annotated, Any

import jwt
from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel, Field

from labapp.engine.handlers import install_handlers
from labapp.engine.store import Store
from labapp.lessons.common import bearer_token, challenge
from labapp.lessons.l09_testing import notes
from labapp.lessons.l09_testing.mutants import SOUND, STAGING

REALM = "notes"
READS_ANY_NOTE = ("support", "admin")
INT64_MAX = 2**63 - 1
NoteId = Annotated[int, Path(ge=1, le=INT64_MAX)]


class Login(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=200)


class Refresh(BaseModel):
    refresh_token: str = Field(max_length=200)


class NewNote(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=5000)


class NoteChange(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=5000)


def unauthorized(detail: str = "missing or invalid access token") -> HTTPException:
    return HTTPException(401, detail, headers=challenge(REALM, invalid_token=True))


def forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)


def not_found() -> HTTPException:
    # The same answer for "no such note" and "not yours": a 403 would confirm it exists.
    return HTTPException(404, "no such note")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def build_app(store: Store, key: bytes, mutant: str = SOUND) -> FastAPI:
    """The notes API over ``store``, signed with ``key``; ``mutant`` names its one bug."""
    app = FastAPI(title="Notes API", version="1.0")
    if mutant == "cors-credentials":
        app.add_middleware(  # "let the new front-end domains in": every origin, reflected
            CORSMiddleware,
            allow_origin_regex=".*",
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )
    else:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[notes.ALLOWED_ORIGIN],
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )

    def current_user(request: Request) -> dict[str, Any]:
        token = bearer_token(request)
        if token is None:
            raise HTTPException(401, "missing access token", headers=challenge(REALM))
        if mutant == "token-crash":
            # "Check the denylist before spending time on the signature": on the raw text.
            hashlib.sha256(token.encode("ascii"))
        options: dict[str, Any] = {"require": ["exp", "iat", "sub", "aud", "iss"]}
        if mutant == "no-exp":
            options["verify_exp"] = False
        if mutant == "no-aud":
            options["verify_aud"] = False
        if mutant == "no-sig":
            options.update(verify_signature=False, verify_exp=True, verify_aud=True)
            options.update(verify_iss=True)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[notes.ALGORITHM],
                audience=notes.AUDIENCE,
                issuer=notes.ISSUER,
                options=options,
            )
        except jwt.InvalidTokenError:
            raise unauthorized() from None
        sub, scope = claims.get("sub"), claims.get("scope", "")
        if not isinstance(sub, str) or not isinstance(scope, str):
            raise unauthorized()
        user = store.one(
            "SELECT u.username, u.role, a.active FROM users u "
            "JOIN accounts a ON a.username = u.username WHERE u.username = ?",
            (sub,),
        )
        if user is None or (not user["active"] and mutant != "deleted-user"):
            raise unauthorized()
        return {"username": sub, "role": user["role"], "scopes": set(scope.split())}

    Caller = Annotated[dict[str, Any], Depends(current_user)]

    def need_scope(user: dict[str, Any], scope: str) -> None:
        if scope not in user["scopes"]:
            raise forbidden(f"this token lacks the {scope} scope")

    def issue(username: str, family: str | None = None) -> dict[str, Any]:
        access = jwt.encode(notes.claims_for(username), key, algorithm=notes.ALGORITHM)
        refresh = secrets.token_urlsafe(32)
        store.execute(
            "INSERT INTO refresh (hash, username, family) VALUES (?, ?, ?)",
            (_hash(refresh), username, family or secrets.token_hex(8)),
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": notes.ACCESS_SECONDS,
            "refresh_token": refresh,
        }

    def note_row(note_id: int) -> dict[str, Any] | None:
        return store.one("SELECT id, owner, title, body FROM notes WHERE id = ?", (note_id,))

    def visible(user: dict[str, Any], note: dict[str, Any] | None) -> bool:
        if note is None:
            return False
        if mutant == "bola-read":
            return True
        return note["owner"] == user["username"] or user["role"] in READS_ANY_NOTE

    @app.get("/health", summary="Liveness (public)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/login", summary="Sign in: an access token and a refresh token")
    def login(form: Login) -> dict[str, Any]:
        account = store.one(
            "SELECT password_hash, active FROM accounts WHERE username = ?", (form.username,)
        )
        if mutant == "login-enum":
            if account is None:
                raise HTTPException(401, "no such user")
            if not notes.password_matches(account["password_hash"], form.password):
                raise HTTPException(401, "wrong password")
        # One answer for every failure, and a hash computed either way (lesson 03).
        stored = account["password_hash"] if account else notes.password_hash("no such user")
        matches = notes.password_matches(stored, form.password)
        if account is None or not account["active"] or not matches:
            raise HTTPException(401, "invalid username or password")
        return issue(form.username)

    @app.post("/refresh", summary="Trade a refresh token for new tokens (single use)")
    def refresh(form: Refresh) -> dict[str, Any]:
        row = store.one(
            "SELECT r.hash, r.username, r.family, r.used, r.revoked, a.active FROM refresh r "
            "JOIN accounts a ON a.username = r.username WHERE r.hash = ?",
            (_hash(form.refresh_token),),
        )
        if row is None or row["revoked"] or not row["active"]:
            raise unauthorized("invalid refresh token")
        if row["used"] and mutant != "refresh-replay":
            if mutant != "family-kept":
                # Reuse means two parties hold the family: revoke all of it (RFC 9700 §4.14.2).
                store.execute("UPDATE refresh SET revoked = 1 WHERE family = ?", (row["family"],))
            raise unauthorized("refresh token reused: signed out everywhere")
        store.execute("UPDATE refresh SET used = 1 WHERE hash = ?", (row["hash"],))
        return issue(row["username"], row["family"])

    @app.get("/me", summary="Who the token belongs to")
    def me(user: Caller) -> dict[str, Any]:
        profile = {"username": user["username"], "role": user["role"]}
        if mutant == "me-leak":  # "return the whole account row, the client picks fields"
            row = store.one(
                "SELECT password_hash FROM accounts WHERE username = ?", (user["username"],)
            )
            profile.update(row or {})
        return profile

    def own_notes(user: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        if mutant == "list-filter":
            every = "SELECT id, owner, title, body FROM notes ORDER BY id LIMIT ?"
            return store.query(every, (limit,))
        return store.query(
            "SELECT id, owner, title, body FROM notes WHERE owner = ? ORDER BY id LIMIT ?",
            (user["username"], limit),
        )

    def matching(found: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
        if not q:
            return found
        if mutant == STAGING:  # "search got regular expressions" on staging
            return [note for note in found if re.search(q, note["title"], re.IGNORECASE)]
        return [note for note in found if q.casefold() in note["title"].casefold()]

    @app.get("/notes", summary="Your notes, optionally those whose title contains q")
    def list_notes(
        user: Caller,
        q: Annotated[str, Query(max_length=100)] = "",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> list[dict[str, Any]]:
        need_scope(user, "notes:read")
        return matching(own_notes(user, limit), q)

    @app.post("/notes", status_code=201, summary="Write a note")
    def create_note(user: Caller, note: NewNote) -> dict[str, Any]:
        need_scope(user, "notes:write")
        note_id = store.execute(
            "INSERT INTO notes (owner, title, body) VALUES (?, ?, ?)",
            (user["username"], note.title, note.body),
        )
        return {"id": note_id, "owner": user["username"], "title": note.title, "body": note.body}

    @app.get("/notes/{note_id}", summary="One note (yours; support and admin read any)")
    def read_note(user: Caller, note_id: NoteId) -> dict[str, Any]:
        need_scope(user, "notes:read")
        note = note_row(note_id)
        if not visible(user, note):
            raise not_found()
        return note  # type: ignore[return-value]

    @app.patch("/notes/{note_id}", summary="Edit your note")
    def edit_note(
        user: Caller, note_id: NoteId, change: Annotated[NoteChange, Body()]
    ) -> dict[str, Any]:
        if mutant != "scope-patch":
            need_scope(user, "notes:write")
        fields = change.model_dump(exclude_none=True)
        if mutant == "check-after-write":  # the update moved above the checks in a refactor
            _update(store, note_id, fields)
        note = note_row(note_id)
        if not visible(user, note):
            raise not_found()
        if note["owner"] != user["username"]:  # type: ignore[index]
            raise forbidden("only the owner edits a note")
        _update(store, note_id, fields)
        return note_row(note_id)  # type: ignore[return-value]

    @app.delete("/notes/{note_id}", status_code=204, summary="Delete a note (owner or admin)")
    def delete_note(user: Caller, note_id: NoteId) -> Response:
        need_scope(user, "notes:write")
        note = note_row(note_id)
        if not visible(user, note):
            raise not_found()
        deleters = ("admin", "support") if mutant == "support-delete" else ("admin",)
        if note["owner"] != user["username"] and user["role"] not in deleters:  # type: ignore[index]
            raise forbidden("only the owner or an admin deletes a note")
        store.execute("DELETE FROM notes WHERE id = ?", (note_id,))
        return Response(status_code=204)

    if mutant == "unauth-route":

        @app.get("/export", summary="Export your notes")
        def export_unprotected() -> dict[str, Any]:
            return {"notes": store.query("SELECT id, owner, title, body FROM notes ORDER BY id")}

    else:

        @app.get("/export", summary="Export your notes")
        def export(user: Caller) -> dict[str, Any]:
            need_scope(user, "notes:read")
            return {"notes": own_notes(user, INT64_MAX)}

    admins = ("admin", "support") if mutant == "role-widened" else ("admin",)

    def admin_only(user: Caller) -> dict[str, Any]:
        if user["role"] not in admins:
            raise forbidden("admins only")
        return user

    Admin = Annotated[dict[str, Any], Depends(admin_only)]

    @app.get("/admin/users", summary="Every account (admin)")
    def list_users(user: Admin) -> list[dict[str, Any]]:
        return store.query(
            "SELECT u.username, u.role, a.active FROM users u "
            "JOIN accounts a ON a.username = u.username ORDER BY u.id"
        )

    @app.delete("/admin/users/{username}", status_code=204, summary="Delete an account (admin)")
    def delete_user(user: Admin, username: Annotated[str, Path(max_length=64)]) -> Response:
        if store.one("SELECT 1 AS found FROM accounts WHERE username = ?", (username,)) is None:
            raise HTTPException(404, "no such user")
        store.execute("UPDATE accounts SET active = 0 WHERE username = ?", (username,))
        store.execute("UPDATE refresh SET revoked = 1 WHERE username = ?", (username,))
        return Response(status_code=204)

    return install_handlers(app)


def _update(store: Store, note_id: int, fields: dict[str, Any]) -> None:
    for name in ("title", "body"):  # a fixed list: a field name never comes from the client
        if name in fields:
            store.execute(f"UPDATE notes SET {name} = ? WHERE id = ?", (fields[name], note_id))
