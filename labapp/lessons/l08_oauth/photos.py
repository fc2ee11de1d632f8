"""The photos API: the resource server, which accepts the authorization server's tokens.

Every route asks the ``validate_access_token`` hook for the token's claims (or None) with
the scope the route needs, and serves the photos of the claims' ``sub``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request

from labapp.engine.spec import LabState
from labapp.lessons.common import bearer_token
from labapp.lessons.l08_oauth import verifier
from labapp.lessons.l08_oauth.verifier import Verifier

PHOTOS = {
    "alice": [
        {"id": 1, "title": "Lighthouse at dawn"},
        {"id": 2, "title": "Grandma's 90th"},
    ],
    "bob": [{"id": 3, "title": "Passport scan"}],
}


def _challenge(scope: str, error: str | None) -> dict[str, str]:
    value = f'Bearer realm="photos", scope="{scope}"'
    return {"WWW-Authenticate": value + (f', error="{error}"' if error else "")}


def create_photos_app(state: LabState, known: Verifier) -> FastAPI:
    store = state.store
    app = FastAPI(title="Lesson 08 photos API")
    albums = {owner: list(items) for owner, items in PHOTOS.items()}

    async def claims_for(request: Request, scope: str) -> dict[str, Any]:
        token = bearer_token(request)
        action = f"{request.method} {request.scope['path']}"
        if token is None:
            raise HTTPException(401, "a bearer access token is required", _challenge(scope, None))
        verifier.CURRENT.set(known)  # goes with the request's context into the hook's thread
        claims = await state.call("validate_access_token", token, scope)
        if claims is None:
            store.audit("anonymous", action, "photos", "deny", "access token refused")
            raise HTTPException(401, "invalid access token", _challenge(scope, "invalid_token"))
        subject = str(claims.get("sub", ""))
        store.audit(subject or "anonymous", action, "photos", "allow", f"token for {scope}")
        return claims

    @app.get("/photos", summary="Your photos (scope photos:read)")
    async def list_photos(request: Request) -> dict[str, Any]:
        claims = await claims_for(request, "photos:read")
        subject = str(claims.get("sub", ""))
        return {"owner": subject, "photos": albums.get(subject, [])}

    @app.post("/photos", summary="Add a photo (scope photos:write)")
    async def add_photo(request: Request, title: str = "Untitled") -> dict[str, Any]:
        claims = await claims_for(request, "photos:write")
        subject = str(claims.get("sub", ""))
        album = albums.setdefault(subject, [])
        photo = {"id": 100 + sum(len(a) for a in albums.values()), "title": title[:80]}
        album.append(photo)
        return {"owner": subject, "photo": photo}

    return app
