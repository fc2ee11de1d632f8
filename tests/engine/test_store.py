"""Store: a real SQLite file with seed users and an audit log that never holds a secret."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest

from labapp.engine.store import REDACTED, AuditLog, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "lab.sqlite3")
    yield store
    store.close()


def test_seed_users_are_the_same_in_every_lab(store: Store) -> None:
    """Every lab starts with alice, bob, carol (admin) and the svc-frontend service account."""
    users = store.query("SELECT id, username, role FROM users ORDER BY id")
    assert users == [
        {"id": 1, "username": "alice", "role": "customer"},
        {"id": 2, "username": "bob", "role": "customer"},
        {"id": 3, "username": "carol", "role": "admin"},
        {"id": 4, "username": "svc-frontend", "role": "service"},
    ]


def test_database_is_a_real_file_under_the_given_path(store: Store, tmp_path: Path) -> None:
    """The store writes the SQLite file it was given, which a second connection can read."""
    with closing(sqlite3.connect(tmp_path / "lab.sqlite3")) as other:
        assert other.execute("SELECT count(*) FROM users").fetchone() == (4,)


def test_execute_returns_the_row_id_and_one_reads_it_back(store: Store) -> None:
    """execute() returns the new row id; one() returns that row, or None when nothing matches."""
    row_id = store.execute(
        "INSERT INTO users (username, display_name, role) VALUES (?, ?, ?)",
        ("dave", "Dave Lee", "customer"),
    )
    assert row_id == 5
    assert store.one("SELECT username FROM users WHERE id = ?", (row_id,)) == {"username": "dave"}
    assert store.one("SELECT * FROM users WHERE username = ?", ("nobody",)) is None


def test_audit_rows_come_back_in_order(store: Store) -> None:
    """audit() writes one row per call and audit_rows() returns them oldest first."""
    store.audit("alice", "GET", "/orders/1", "allow", "owner")
    store.audit("bob", "GET", "/orders/1", "deny", "not the owner")
    rows = store.audit_rows()
    assert isinstance(rows, AuditLog)
    assert [(r["actor"], r["decision"], r["reason"]) for r in rows] == [
        ("alice", "allow", "owner"),
        ("bob", "deny", "not the owner"),
    ]


def test_audit_log_renders_as_text_and_escaped_html(store: Store) -> None:
    """str() and _repr_html_() show every row, and the HTML escapes a <script> reason."""
    store.audit("alice", "GET", "/orders/1", "allow", "owner")
    store.audit("mallory", "POST", "/admin", "deny", "<script>alert(1)</script>")
    log = store.audit_rows()
    text, page = str(log), log._repr_html_()
    for expected in ("alice", "/orders/1", "mallory", "/admin", "deny"):
        assert expected in text
        assert expected in page
    assert "<script>alert(1)</script>" in text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_empty_audit_log_says_so(store: Store) -> None:
    """An empty log renders a sentence, in text and in HTML, not an empty table."""
    log = store.audit_rows()
    assert str(log) == "(no audit events yet)"
    assert "No audit events yet" in log._repr_html_()


@pytest.mark.parametrize("field", ["actor", "action", "resource", "reason"])
def test_registered_secret_is_redacted_in_every_audit_field(store: Store, field: str) -> None:
    """A secret passed through any free-text audit field is stored as [redacted]."""
    secret = "tok_3f9a1c7e5b"
    store.add_secret(secret)
    values = {"actor": "alice", "action": "GET", "resource": "/orders", "reason": "ok"}
    values[field] = f"Bearer {secret} used"
    store.audit(decision="allow", **values)
    (row,) = store.audit_rows()
    assert secret not in str(list(row.values()))
    assert row[field] == f"Bearer {REDACTED} used"
    assert secret not in str(store.audit_rows())
    assert secret not in store.audit_rows()._repr_html_()


def test_several_secrets_are_all_redacted(store: Store) -> None:
    """Every registered secret is redacted, however many appear in one field."""
    store.add_secret("hunter2", "FLAG{01-unprotected:x:" + "a" * 32 + "}", "")
    store.audit(
        "alice", "login", "/login", "deny", "hunter2 then FLAG{01-unprotected:x:" + "a" * 32 + "}"
    )
    (row,) = store.audit_rows()
    assert row["reason"] == f"{REDACTED} then {REDACTED}"


def test_secret_containing_another_secret_is_redacted_whole(store: Store) -> None:
    """A secret containing a shorter registered one (a JWT and its signature) is hidden whole."""
    # Thirty independent pairs, one audit row each: with set order instead of longest-first,
    # some short secret would come before its long one in all but one run in a billion.
    pairs = [(f"k{i:02d}x", f"k{i:02d}x-tail-private") for i in range(30)]
    for short, long in pairs:
        store.add_secret(short, long)
    for _, long in pairs:
        store.audit("alice", "GET", "/", "allow", f"used {long}")
    leaked = [row["reason"] for row in store.audit_rows() if "private" in row["reason"]]
    assert leaked == []


def test_invalid_decision_is_rejected_by_the_schema(store: Store) -> None:
    """A decision other than allow, deny or error violates the CHECK constraint."""
    with pytest.raises(sqlite3.IntegrityError):
        store.audit("alice", "GET", "/", "maybe", "unsure")
    assert store.audit_rows() == []


def test_concurrent_audits_all_land(store: Store) -> None:
    """Eight threads writing fifty audit rows each leave exactly four hundred rows."""

    def write(thread: int) -> None:
        for i in range(50):
            store.audit(f"t{thread}", "GET", f"/item/{i}", "allow", "load test")

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(write, t) for t in range(8)]:
            future.result()
    rows = store.audit_rows()
    assert len(rows) == 400
    assert len({r["id"] for r in rows}) == 400
    assert all(sum(r["actor"] == f"t{t}" for r in rows) == 50 for t in range(8))


def test_tail_returns_the_last_events_as_an_audit_log(store: Store) -> None:
    """AuditLog.tail(n) keeps the n most recent rows and still renders as an AuditLog."""
    for i in range(7):
        store.audit("alice", "GET", f"/orders/{i}", "allow", "owner")
    tail = store.audit_rows().tail(3)
    assert isinstance(tail, AuditLog)
    assert [r["resource"] for r in tail] == ["/orders/4", "/orders/5", "/orders/6"]
    assert "/orders/3" not in str(tail)
    assert len(store.audit_rows().tail()) == 5
