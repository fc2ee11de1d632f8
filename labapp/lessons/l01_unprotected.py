"""Lesson 01: unprotected endpoints. An orders API that protects almost nothing.

The weak ``authorize`` hook protects only what it remembers (``/admin``), trusts headers
any client can send, and fails open when the identity service is down. The defense is a
deny-by-default policy (OWASP API Security Top 10 2023: API5 Broken Function Level
Authorization, API2 Broken Authentication; OWASP ASVS 5 V8 Authorization).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from labapp.errors import DependencyDown
from labapp.grading import Attack, Check, Observed
from labapp.guard import HookFailed, HookTimeout
from labapp.lessons.common import (
    IDENTITY,
    RequestInfo,
    auth,
    identify,
    issue_session_tokens,
    request_info,
    user_token,
)
from labapp.spec import Hook, LabState, Lesson

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


def weak_authorize(req: RequestInfo) -> bool:
    """WEAK on purpose: invites the trusted-header, fail-open and open-by-default attacks."""
    # "Our gateway adds X-Internal for calls from inside": but any client can send it.
    if req.headers.get("x-internal", "").lower() == "true":
        return True
    if req.headers.get("x-forwarded-for", "").startswith("127."):
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
    "authorize(req) -> bool: may this request proceed? Anything but True is a denial.",
    weak_authorize,
)


class NewOrder(BaseModel):
    product_id: int
    quantity: int = 1


def seed(state: LabState) -> None:
    state.store.executescript(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, owner TEXT, product_id INTEGER, "
        "quantity INTEGER, shipping_address TEXT);"
    )
    state.store.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ORDERS)
    issue_session_tokens(state)


def create_app(state: LabState) -> FastAPI:
    store = state.store

    async def gate(request: Request) -> None:
        """Every request goes through the authorize hook; deny unless it returns True."""
        info = request_info(state, request)
        action = f"{info.method} {info.route}"
        try:
            allowed = await state.call("authorize", info) is True
        except (HookFailed, HookTimeout) as exc:
            store.audit("?", action, info.path, "error", str(exc))
            raise
        try:
            user = info.identify()
        except DependencyDown:
            user = None
        actor = user["username"] if user else "anonymous"
        who = f"role {user['role']}" if user else "no identity"
        if IDENTITY in state.outages:
            who += ", identity service down"
        decision, verdict = ("allow", "allowed") if allowed else ("deny", "denied")
        store.audit(actor, action, info.path, decision, f"authorize() {verdict} ({who})")
        if not allowed:
            if user is None:  # no identity established: 401 (RFC 9110 §15.5.2)
                raise HTTPException(
                    401, "authentication required", headers={"WWW-Authenticate": "Bearer"}
                )
            raise HTTPException(403, "not allowed")

    def caller(request: Request) -> dict[str, Any] | None:
        try:
            return identify(state, request)
        except DependencyDown:
            return None

    app = FastAPI(title="Lesson 01 orders API", dependencies=[Depends(gate)])

    @app.get("/health", summary="Is the service up?")
    def health() -> dict[str, Any]:
        return {"status": "ok", "identity_service": "down" if IDENTITY in state.outages else "up"}

    @app.get("/products", summary="The public catalogue")
    def products() -> list[dict[str, Any]]:
        return PRODUCTS

    @app.get("/products/{product_id}", summary="One product")
    def product(product_id: int) -> dict[str, Any]:
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
            owners = {row["owner"] for row in rows}
            return {"orders": rows, "flag": state.flag("read-all-orders") if owners else None}
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
    def order(order_id: int, request: Request) -> dict[str, Any]:
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
        user = caller(request)
        rows = store.query(
            "SELECT u.username, u.display_name, o.id AS order_id, o.shipping_address "
            "FROM users u JOIN orders o ON o.owner = u.username ORDER BY o.id"
        )
        result: dict[str, Any] = {"customers": rows}
        if user is None or user["role"] not in ("admin", "service"):
            result["flag"] = state.flag("internal-export")
        return result

    @app.get("/admin/users", summary="Admin: every account")
    def admin_users(request: Request) -> dict[str, Any]:
        result: dict[str, Any] = {"users": store.query("SELECT * FROM users ORDER BY id")}
        if IDENTITY in state.outages:
            result["flag"] = state.flag("fail-open")
        elif (caller(request) or {}).get("role") != "admin":
            result["flag"] = state.flag("trusted-header")
        return result

    @app.delete("/admin/orders/{order_id}", summary="Admin: cancel an order")
    def cancel(order_id: int) -> dict[str, Any]:
        store.execute("DELETE FROM orders WHERE id = ?", (order_id,))
        return {"cancelled": order_id}

    return app


# -- the battery: attacks replay what the notebook teaches; checks are real users' calls --

PUBLIC = {("GET", "/health"), ("GET", "/products"), ("GET", "/products/{product_id}")}


def _first_through(
    lab: Any, http: httpx.Client, attempts: list[tuple[str, str, dict[str, str]]]
) -> Observed:
    """Try each (method, url, headers); report the first that got a 2xx."""
    last = None
    for method, url, headers in attempts:
        response = http.request(method, url, headers=headers)
        last = response.status_code
        if response.is_success:
            return Observed(True, last, f"{method} {url}{_as_who(lab, headers)}")
    return Observed(False, last)


def _as_who(lab: Any, headers: dict[str, str]) -> str:
    """Describe the request's headers without printing anyone's token."""
    names = {f"Bearer {user['token']}": user["username"] for user in lab.users}
    parts = [
        f"as {names.get(value, 'someone')}" if name == "Authorization" else f"{name}: {value}"
        for name, value in headers.items()
    ]
    return f" ({', '.join(parts)})" if parts else ""


def attack_read_all(lab: Any, http: httpx.Client) -> Observed:
    return _first_through(lab, http, [("GET", "/orders", {}), ("GET", "/orders/3", {})])


def attack_export(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    return _first_through(
        lab, http, [("GET", "/internal/export", {}), ("GET", "/internal/export", alice)]
    )


def attack_trusted_header(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    spoofs = [{"X-Internal": "true"}, {"X-Forwarded-For": "127.0.0.1"}, {"X-Real-IP": "127.0.0.1"}]
    attempts = [("GET", "/admin/users", spoof) for spoof in spoofs]
    attempts += [("GET", "/admin/users", {**alice, **spoof}) for spoof in spoofs]
    return _first_through(lab, http, attempts)


def attack_fail_open(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    with lab.outage(IDENTITY):
        return _first_through(
            lab,
            http,
            [
                ("GET", "/admin/users", {}),
                ("GET", "/admin/users", alice),
                ("GET", "/orders", {}),
                ("GET", "/internal/export", alice),
            ],
        )


def attack_no_identity_sweep(lab: Any, http: httpx.Client) -> Observed:
    """Call every non-public route in the OpenAPI document without credentials."""
    spec = http.get("/openapi.json").json()
    attempts = []
    for path, methods in spec["paths"].items():
        for method in methods:
            if (method.upper(), path) not in PUBLIC:
                attempts.append((method.upper(), path.replace("{order_id}", "1"), {}))
    return _first_through(lab, http, attempts)


def attack_customer_admin(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    return _first_through(
        lab,
        http,
        [
            ("GET", "/admin/users", alice),
            ("DELETE", "/admin/orders/3", alice),
        ],
    )


def _works(
    http: httpx.Client, method: str, url: str, headers: dict[str, str], **kw: Any
) -> Observed:
    response = http.request(method, url, headers=headers, **kw)
    return Observed(response.is_success, response.status_code, f"{method} {url}")


def check_public(lab: Any, http: httpx.Client) -> Observed:
    for url in ("/health", "/products", "/products/2"):
        seen = _works(http, "GET", url, {})
        if not seen.succeeded:
            return seen
    return seen


def check_alice_orders(lab: Any, http: httpx.Client) -> Observed:
    alice = auth(user_token(lab.state, "alice"))
    seen = _works(http, "POST", "/orders", alice, json={"product_id": 2})
    if not seen.succeeded:
        return seen
    response = http.get("/orders", headers=alice)
    owners = (
        {o["owner"] for o in response.json().get("orders", [])} if response.is_success else set()
    )
    ok = response.is_success and owners == {"alice"}
    return Observed(ok, response.status_code, "GET /orders as alice")


def check_admin(lab: Any, http: httpx.Client) -> Observed:
    carol = auth(user_token(lab.state, "carol"))
    seen = _works(http, "GET", "/admin/users", carol)
    return seen if not seen.succeeded else _works(http, "DELETE", "/admin/orders/2", carol)


def check_service_export(lab: Any, http: httpx.Client) -> Observed:
    return _works(http, "GET", "/internal/export", auth(user_token(lab.state, "svc-frontend")))


def check_public_during_outage(lab: Any, http: httpx.Client) -> Observed:
    with lab.outage(IDENTITY):
        return _works(http, "GET", "/products", {})


LESSON = Lesson(
    id="01-unprotected",
    title="Lesson 01 — Unprotected endpoints",
    notebook="01-unprotected-endpoints.ipynb",
    minutes=45,
    create_app=create_app,
    seed=seed,
    hooks=(AUTHORIZE,),
    attacks=(
        Attack(
            "read-all-orders",
            "read every customer's orders without credentials",
            (
                "Which routes does the card list? Try GET /orders with no Authorization header.",
                "lab.client.get('/orders').json() — whose orders are these?",
            ),
            attack_read_all,
        ),
        Attack(
            "internal-export",
            "use the 'internal-only' export route",
            (
                "Read the paths in lab.client.get('/openapi.json').json(): is anything internal?",
                "A URL nobody links to is still a URL: call GET /internal/export yourself.",
            ),
            attack_export,
        ),
        Attack(
            "trusted-header",
            "reach an admin route with a spoofed 'internal' header",
            (
                "GET /admin/users says 401 without a token. Does the server believe anything else?",
                "Headers are written by the client. Try X-Internal: true, or "
                "X-Forwarded-For: 127.0.0.1.",
            ),
            attack_trusted_header,
        ),
        Attack(
            "fail-open",
            "get in while the identity service is down",
            (
                "with lab.outage('identity'): ... simulates the identity service being down.",
                "During the outage, call GET /admin/users with no credentials at all.",
            ),
            attack_fail_open,
        ),
        Attack(
            "no-identity-sweep",
            "every non-public route, called without credentials",
            ("Deny by default: only an explicit allowlist of (method, route) is public.",),
            attack_no_identity_sweep,
            flag=False,
        ),
        Attack(
            "customer-admin",
            "a customer calls admin routes",
            ("Identity is not enough: admin routes need the admin role.",),
            attack_customer_admin,
            flag=False,
        ),
    ),
    checks=(
        Check("public-catalogue", "anyone can read /health and the products", check_public),
        Check(
            "customer-orders", "alice places an order and sees only her orders", check_alice_orders
        ),
        Check("admin-works", "carol (admin) lists users and cancels an order", check_admin),
        Check(
            "service-export", "svc-frontend calls the export it exists for", check_service_export
        ),
        Check(
            "public-during-outage",
            "the catalogue still works while identity is down",
            check_public_during_outage,
        ),
    ),
    hints={
        "defend": (
            "Start from `return False` and allow only what you can name: that is deny by default.",
            "Public routes: a set of (req.method, req.route). The rest needs req.identify().",
            "Wrap req.identify() in try/except DependencyDown and return False: fail closed.",
            "Never read X-Internal or X-Forwarded-For: any client can send them.",
        )
    },
    try_this="Try <code>lab.client.get('/orders')</code> — no credentials at all.",
)
