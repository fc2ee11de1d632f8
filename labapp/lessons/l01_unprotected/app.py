"""Lesson 01: unprotected endpoints. An orders API that protects almost nothing.

The weak ``authorize`` hook protects only what it remembers (``/admin``), trusts headers
any client can send, and fails open when the identity service is down. The defense is a
deny-by-default policy (OWASP API Security Top 10 2023: API5 Broken Function Level
Authorization, API2 Broken Authentication; OWASP ASVS 5 V8 Authorization).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from pydantic import BaseModel, Field

from labapp.engine.errors import DependencyDown
from labapp.engine.guard import HookFailed, HookTimeout
from labapp.engine.spec import Hook, LabState
from labapp.lessons.common import (
    IDENTITY,
    RequestInfo,
    bearer_token,
    challenge,
    identify,
    issue_session_tokens,
    lookup_token,
    request_info,
)
from labapp.lessons.l01_unprotected.headers import HeaderReads, WatchedHeaders

REALM = "orders"
PRODUCTS = [
    {"id": 1, "name": "Mechanical keyboard", "price_cents": 8900},
    {"id": 2, "name": "USB-C cable", "price_cents": 1200},
    {"id": 3, "name": "Laptop stand", "price_cents": 3400},
]
ORDERS = [  # (id, owner, product_id, quantity, shipping_address)
    (1, "alice", 1, 1, "12 Rue des Lilas, Lyon"),
    (2, "alice", 2, 3, "12 Rue des Lilas, Lyon"),
    (3, "bob", 3, 1, "4 Marina Road, Lagos"),
]
# SQLite integers are 64-bit: a larger id must be a 422, not an OverflowError (a 500).
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def spoofed_internal(headers: Any) -> bool:
    """The shop's idea of an internal call: headers its gateway adds (and any client can)."""
    return headers.get("x-internal", "").lower() == "true" or headers.get(
        "x-forwarded-for", ""
    ).startswith("127.")


def weak_authorize(req: RequestInfo) -> bool:
    """WEAK on purpose: invites the trusted-header, fail-open and open-by-default attacks."""
    # "Our gateway marks calls from inside the network": but any client can send the mark.
    if spoofed_internal(req.headers):
        return True
    try:
        user = req.identify()
    except DependencyDown:
        return True  # "don't lock customers out during an outage": fail open
    if req.route.startswith("/admin"):
        return user is not None and user["role"] == "admin"
    return True  # everything else is open: "only our frontend knows these URLs"


AUTHORIZE = Hook(
    "authorize",
    ("req",),
    "authorize(req) -> bool: may this request proceed? True or False; anything else is a 500.",
    weak_authorize,
    returns=bool,
)


class NewOrder(BaseModel):
    product_id: int = Field(ge=1, le=MAX_ID)
    quantity: int = Field(1, ge=1, le=1000)


def seed(state: LabState) -> None:
    state.store.executescript(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, owner TEXT, product_id INTEGER, "
        "quantity INTEGER, shipping_address TEXT);"
    )
    state.store.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ORDERS)
    issue_session_tokens(state)


def create_app(state: LabState) -> FastAPI:
    store = state.store
    reads = HeaderReads()  # what the hook looked at among the headers, for the grader

    async def gate(request: Request) -> None:
        """Every request goes through the authorize hook: True lets it through, False denies."""
        headers = WatchedHeaders(request.headers.items(), reads if reads.active else None)
        info = request_info(state, request, headers)
        action = f"{info.method} {info.route}"
        try:
            allowed: bool = await state.call("authorize", info)  # a bool: Hook(returns=bool)
        except (HookFailed, HookTimeout) as exc:
            store.audit("?", action, info.path, "error", str(exc))
            raise
        token = bearer_token(request)
        user = caller(request)
        who = f"role {user['role']}" if user else ("a token" if token else "no credentials")
        if token and IDENTITY in state.outages:
            who += ", identity service down"
        decision, verdict = ("allow", "allowed") if allowed else ("deny", "denied")
        actor = user["username"] if user else "anonymous"
        store.audit(actor, action, info.path, decision, f"authorize() {verdict} ({who})")
        if allowed:
            return
        if user is None:  # no identity established: 401 (RFC 9110 §15.5.2)
            checked = token is not None and IDENTITY not in state.outages
            raise HTTPException(
                401, "authentication required", headers=challenge(REALM, invalid_token=checked)
            )
        raise HTTPException(403, "not allowed")  # known, and not allowed: 403 (§15.5.4)

    def caller(request: Request) -> dict[str, Any] | None:
        """The identity the handlers act on; unknown while the identity service is down."""
        try:
            return identify(state, request)
        except DependencyDown:
            return None

    def really(request: Request) -> dict[str, Any] | None:
        """Who actually holds the token, outage or not: flags go only to real exploits."""
        return lookup_token(state, bearer_token(request))

    app = FastAPI(title="Lesson 01 orders API", dependencies=[Depends(gate)])
    app.state.header_reads = reads

    @app.get("/health", summary="Is the service up?")
    def health() -> dict[str, Any]:
        return {"status": "ok", "identity_service": "down" if IDENTITY in state.outages else "up"}

    @app.get("/products", summary="The public catalogue")
    def products() -> list[dict[str, Any]]:
        return PRODUCTS

    @app.get("/products/{product_id}", summary="One product")
    def product(product_id: Id) -> dict[str, Any]:
        for item in PRODUCTS:
            if item["id"] == product_id:
                return item
        raise HTTPException(404, "no such product")

    @app.get("/me", summary="The signed-in user")
    def me(request: Request) -> dict[str, Any]:
        return caller(request) or {"username": None}

    @app.get("/orders", summary="Your orders")
    def orders(request: Request) -> dict[str, Any]:
        user = caller(request)
        if user is None:  # "the frontend always sends a token", so this never happens...
            rows = store.query("SELECT * FROM orders ORDER BY id")
            result: dict[str, Any] = {"orders": rows}
            if really(request) is None:
                result["flag"] = state.flag("read-all-orders")
            return result
        rows = store.query("SELECT * FROM orders WHERE owner = ? ORDER BY id", (user["username"],))
        return {"orders": rows}

    @app.post("/orders", status_code=201, summary="Place an order")
    def place_order(order: NewOrder, request: Request) -> dict[str, Any]:
        user = caller(request)
        owner = user["username"] if user else "anonymous"
        new_id = store.execute(
            "INSERT INTO orders (owner, product_id, quantity, shipping_address) "
            "VALUES (?, ?, ?, '')",
            (owner, order.product_id, order.quantity),
        )
        return {"id": new_id, "owner": owner}

    @app.get("/orders/{order_id}", summary="One of your orders")
    def order(order_id: Id, request: Request) -> dict[str, Any]:
        user = caller(request)
        row = store.one("SELECT * FROM orders WHERE id = ?", (order_id,))
        if row is None or (user is not None and row["owner"] != user["username"]):
            raise HTTPException(404, "no such order")
        return row

    @app.get(
        "/internal/export",
        summary="Customer export",
        description="Internal: only our frontend's service account calls this.",
    )
    def export(request: Request) -> dict[str, Any]:
        rows = store.query(
            "SELECT u.username, u.display_name, o.id AS order_id, o.shipping_address "
            "FROM users u JOIN orders o ON o.owner = u.username ORDER BY o.id"
        )
        result: dict[str, Any] = {"customers": rows}
        if (really(request) or {}).get("role") not in ("admin", "service"):
            result["flag"] = state.flag("internal-export")
        return result

    @app.get(
        "/admin/users",
        summary="Admin: every account",
        # Internal notes published with the API document (ASVS 5.0 V13.4.5): the clue.
        description="Back office. Staff reach it from the office network: the gateway marks "
        "their calls with X-Internal: true.",
    )
    def admin_users(request: Request) -> dict[str, Any]:
        result: dict[str, Any] = {"users": store.query("SELECT * FROM users ORDER BY id")}
        if (really(request) or {}).get("role") == "admin":
            return result
        if spoofed_internal(request.headers):
            result["flag"] = state.flag("trusted-header")
        elif IDENTITY in state.outages:
            result["flag"] = state.flag("fail-open")
        return result

    @app.get(
        "/orders/{order_id}/invoice",
        summary="Invoice of one of your orders",
        include_in_schema=False,  # shipped last sprint; nobody updated the API document
    )
    def invoice(order_id: Id, request: Request) -> dict[str, Any]:
        user = caller(request)
        row = store.one("SELECT * FROM orders WHERE id = ?", (order_id,))
        if row is None or (user is not None and row["owner"] != user["username"]):
            raise HTTPException(404, "no such order")
        return {"order_id": order_id, "billed_to": row["owner"], "address": row["shipping_address"]}

    @app.delete("/admin/orders/{order_id}", summary="Admin: cancel an order")
    def cancel(order_id: Id) -> dict[str, Any]:
        store.execute("DELETE FROM orders WHERE id = ?", (order_id,))
        return {"cancelled": order_id}

    return app
