"""What the hooks see: the request (for ``extract_key``) and the keys table (for ``find_key``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from labapp.engine.spec import LabState

RECORD_FIELDS = ("key_id", "partner", "stored", "scopes", "revoked")


class Headers(dict):
    """Header names, lower-case, as HTTP treats them: ``get("X-API-Key")`` finds
    ``x-api-key`` (RFC 9110 §5.1: field names are case-insensitive). Lesson 01's request
    reads headers in any case too; a learner carrying that habit over must not be failed
    by the spelling of a name."""

    def __init__(self, fields: dict[str, str] | None = None) -> None:
        super().__init__({k.lower(): v for k, v in (fields or {}).items()})

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower() if isinstance(name, str) else name, default)


@dataclass
class KeyRequest:
    """What ``extract_key`` sees: the request's headers (names in any case) and query."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]

    def __post_init__(self) -> None:
        self.headers = Headers(self.headers)


class KeyStore:
    """What ``find_key`` may search: the keys table, by key id or whole.

    ``lookups`` counts the calls of each kind, so a grader can tell whether a key that
    fails its format or checksum still cost a database lookup.
    """

    def __init__(self, state: LabState) -> None:
        self._store = state.store
        self.lookups: Counter[str] = Counter()

    def by_id(self, key_id: str) -> dict[str, Any] | None:
        self.lookups["by_id"] += 1
        return self._lookup(key_id)

    def all(self) -> list[dict[str, Any]]:
        self.lookups["all"] += 1
        return [_record(row) for row in self._store.query("SELECT * FROM api_keys ORDER BY rowid")]

    def _lookup(self, key_id: object) -> dict[str, Any] | None:
        """The record of ``key_id``, for the lab's own use (not counted as a lookup)."""
        if not isinstance(key_id, str) or not storable(key_id):
            return None
        return _record(self._store.one("SELECT * FROM api_keys WHERE key_id = ?", (key_id,)))

    def gave(self, record: object) -> bool:
        """Is this a record of the table as it stands (not made up, not edited)?"""
        if not isinstance(record, dict):
            return False
        try:
            found = self._lookup(record.get("key_id"))
            return found is not None and all(record.get(f) == found[f] for f in RECORD_FIELDS)
        except Exception:  # a made-up value that cannot even be compared
            return False


def _record(row: dict[str, Any] | None) -> Any:
    if row is None:
        return None
    return {**row, "scopes": row["scopes"].split(), "revoked": bool(row["revoked"])}


def storable(text: str) -> bool:
    """Text SQLite and JSON can hold: a lone surrogate ("\\ud800" in JSON) cannot be encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
