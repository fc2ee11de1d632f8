"""The error answers every lab app gives, whatever its lesson."""

from __future__ import annotations

import sqlite3

from fastapi import FastAPI

from labapp.engine.grading import grader_client
from labapp.engine.handlers import install_handlers
from labapp.engine.server import LabServer


def test_a_number_too_large_for_sqlite_is_the_clients_422_not_a_500() -> None:
    """FastAPI's int has no bound; SQLite's does: an id no row can hold is a 422."""
    app = FastAPI()
    db = sqlite3.connect(":memory:", check_same_thread=False)

    @app.get("/orders/{order_id}")
    def order(order_id: int) -> dict[str, int]:
        db.execute("SELECT ?", (order_id,))  # OverflowError beyond 64 bits
        return {"id": order_id}

    server = LabServer(install_handlers(app))
    server.start()
    try:
        with grader_client(server.url) as client:
            assert client.get("/orders/7").status_code == 200
            answer = client.get("/orders/" + "9" * 30)
    finally:
        server.stop()
    assert answer.status_code == 422
    assert answer.json() == {
        "detail": [{"loc": [], "msg": "a number in the request is out of range"}]
    }


def test_validation_errors_never_echo_the_input() -> None:
    """A 422 names the field and the problem, never the value (it can be a password)."""
    app = FastAPI()

    @app.get("/items")
    def items(limit: int) -> dict[str, int]:
        return {"limit": limit}

    server = LabServer(install_handlers(app))
    server.start()
    try:
        with grader_client(server.url) as client:
            answer = client.get("/items", params={"limit": "hunter2"})
    finally:
        server.stop()
    assert answer.status_code == 422
    assert "hunter2" not in answer.text
