"""Lesson 00: welcome, and threat modeling. A small bookshop API that is protected properly.

Nothing to break here yet: the learner explores the lab, reads its audit log, and
classifies every route (the asset it exposes, whether it changes state, who should reach
it). That inventory is the first step of the course checklist: know the asset
(OWASP API Security Top 10 2023, API9 Improper Inventory Management).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from labapp.engine.errors import DependencyDown
from labapp.engine.spec import LabState
from labapp.lessons.common import (
    bearer_token,
    challenge,
    identify,
    issue_session_tokens,
)

ASSETS = ("catalogue", "orders", "accounts", "operations")
AUDIENCES = ("anyone", "customer", "admin", "service")

# The lab's truth: route -> (asset, changes_state, who should reach it).
TRUTH: dict[str, tuple[str, bool, str]] = {
    "GET /health": ("operations", False, "anyone"),
    "GET /metrics": ("operations", False, "service"),
    "GET /books": ("catalogue", False, "anyone"),
    "GET /books/{book_id}": ("catalogue", False, "anyone"),
    "POST /admin/books": ("catalogue", True, "admin"),
    "GET /account": ("accounts", False, "customer"),
    "PATCH /account": ("accounts", True, "customer"),
    "DELETE /admin/users/{user_id}": ("accounts", True, "admin"),
    "POST /cart/items": ("orders", True, "customer"),
    "GET /orders": ("orders", False, "customer"),
    "POST /orders": ("orders", True, "customer"),
}
BOOKS = [
    {"id": 1, "title": "The Pragmatic Programmer", "price_cents": 4200},
    {"id": 2, "title": "Designing Data-Intensive Applications", "price_cents": 4800},
    {"id": 3, "title": "Security Engineering", "price_cents": 6500},
]


class Item(BaseModel):
    book_id: int
    quantity: int = 1


class AccountPatch(BaseModel):
    display_name: str


class NewBook(BaseModel):
    title: str
    price_cents: int


def seed(state: LabState) -> None:
    state.store.executescript(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, owner TEXT, book_id INTEGER);"
        "INSERT INTO orders (owner, book_id) VALUES ('alice', 1), ('bob', 3);"
    )
    issue_session_tokens(state)


def create_app(state: LabState) -> FastAPI:
    store = state.store

    async def policy(request: Request) -> dict[str, Any] | None:
        """Deny by default: the route's audience from TRUTH decides (lesson 01 builds this)."""
        route = request.scope["route"].path
        action = f"{request.method} {route}"
        audience = TRUTH[action][2]
        try:
            user = identify(state, request)
        except DependencyDown:
            user = None
        actor = user["username"] if user else "anonymous"
        if audience == "anyone":
            store.audit(actor, action, request.url.path, "allow", "public route")
            return user
        if user is None:
            store.audit(actor, action, request.url.path, "deny", "no valid credentials")
            invalid = bearer_token(request) is not None
            raise HTTPException(
                401, "authentication required", headers=challenge("bookshop", invalid_token=invalid)
            )
        allowed = {"customer": {"customer", "admin"}, "admin": {"admin"}, "service": {"service"}}
        if user["role"] not in allowed[audience]:
            reason = f"role {user['role']} may not reach a route for {audience}"
            store.audit(actor, action, request.url.path, "deny", reason)
            raise HTTPException(403, "not allowed")
        store.audit(actor, action, request.url.path, "allow", f"role {user['role']}")
        return user

    app = FastAPI(title="Lesson 00 bookshop API", dependencies=[Depends(policy)])

    def who(request: Request) -> str:
        user = identify(state, request)
        return user["username"] if user else "anonymous"

    @app.get("/health", summary="Is the service up?")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", summary="Counters for the monitoring system")
    def metrics() -> dict[str, int]:
        return {"audit_events": len(store.query("SELECT id FROM audit"))}

    @app.get("/books", summary="The catalogue")
    def books() -> list[dict[str, Any]]:
        return BOOKS

    @app.get("/books/{book_id}", summary="One book")
    def book(book_id: int) -> dict[str, Any]:
        for item in BOOKS:
            if item["id"] == book_id:
                return item
        raise HTTPException(404, "no such book")

    @app.post("/admin/books", status_code=201, summary="Add a book to the catalogue")
    def add_book(new: NewBook) -> dict[str, Any]:
        return {"id": len(BOOKS) + 1, **new.model_dump()}

    @app.get("/account", summary="Your account")
    def account(request: Request) -> dict[str, Any]:
        return (
            store.one(
                "SELECT username, display_name, role FROM users WHERE username = ?", (who(request),)
            )
            or {}
        )

    @app.patch("/account", summary="Change your display name")
    def patch_account(patch: AccountPatch, request: Request) -> dict[str, str]:
        store.execute(
            "UPDATE users SET display_name = ? WHERE username = ?",
            (patch.display_name, who(request)),
        )
        return {"display_name": patch.display_name}

    @app.delete("/admin/users/{user_id}", summary="Close an account")
    def close_account(user_id: int) -> dict[str, int]:
        return {"closed": user_id}

    @app.post("/cart/items", status_code=201, summary="Put a book in your cart")
    def add_to_cart(item: Item) -> dict[str, int]:
        return {"book_id": item.book_id, "quantity": item.quantity}

    @app.get("/orders", summary="Your orders")
    def orders(request: Request) -> list[dict[str, Any]]:
        return store.query("SELECT * FROM orders WHERE owner = ?", (who(request),))

    @app.post("/orders", status_code=201, summary="Check out your cart")
    def checkout(request: Request) -> dict[str, Any]:
        return {
            "id": store.execute(
                "INSERT INTO orders (owner, book_id) VALUES (?, 1)", (who(request),)
            )
        }

    return app
