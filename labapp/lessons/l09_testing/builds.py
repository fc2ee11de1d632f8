"""Lesson 09's network: every build of the notes API, each on its own loopback server.

``lab.url`` serves the sound build. The mutants start on first use (grading, or
``lab.staging_url``), each with its own SQLite file seeded like the sound one and the same
signing key, so one set of tokens is valid on every build.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import jwt

from labapp.engine.server import LabServer
from labapp.engine.store import Store
from labapp.lessons.l09_testing import notes
from labapp.lessons.l09_testing.app import build_app, signing_key
from labapp.lessons.l09_testing.mutants import MUTANTS, SOUND, STAGING

if TYPE_CHECKING:
    from labapp.engine.lab import Lab


class Builds:
    """``lab.net``: ``url(target)``, ``mint_tokens()``, ``note_ids``, and the grader."""

    exports = ("grade_tests", "staging_url", "ipytest_config", "tokens")

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._key = signing_key(lab.state)
        self.note_ids = notes.first_note_ids(lab.store)
        self._urls = {SOUND: lab.url}
        self._servers: list[LabServer] = []
        self._stores: list[Store] = []
        self._lock = threading.Lock()

    def url(self, target: str) -> str:
        if target not in self._urls and target in MUTANTS:
            self.start_mutants()
        if target not in self._urls:
            raise LookupError(f"no build {target!r}; the builds are {SOUND!r} and the mutants")
        return self._urls[target]

    def start_mutants(self) -> None:
        """Serve every mutant (about 20 ms each, once per lab)."""
        with self._lock:
            if len(self._urls) > 1:
                return
            for name in MUTANTS:
                store = Store(self.lab.workdir / f"{name}.sqlite3")
                notes.seed_store(store)
                server = LabServer(build_app(store, self._key, name))
                server.start()
                self._stores.append(store)
                self._servers.append(server)
                self._urls[name] = server.url

    @property
    def staging_url(self) -> str:
        """The next release, on staging: point schemathesis here (``/openapi.json``)."""
        return self.url(STAGING)

    def mint(self, username: str, *, key: bytes | None = None, **changes: Any) -> str:
        claims = notes.claims_for(username, **changes)
        return jwt.encode(claims, key or self._key, algorithm=notes.ALGORITHM)

    def tokens(self) -> dict[str, str]:
        """``lab.tokens()``: the ``tokens`` fixture's tokens, freshly minted, outside a test."""
        return self.mint_tokens()

    def mint_tokens(self) -> dict[str, str]:
        found = {name: self.mint(name) for name, _, _ in notes.PEOPLE if name != notes.DELETED}
        found.update(
            {
                "alice-read-only": self.mint("alice", scope="notes:read"),
                "alice-expired": self.mint("alice", exp=_now() - 120, iat=_now() - 420),
                "alice-wrong-audience": self.mint("alice", aud="billing-api"),
                "alice-wrong-signature": self.mint("alice", key=b"not the API's key" * 2),
                "dave-deleted": self.mint(notes.DELETED),
            }
        )
        return found

    @property
    def ipytest_config(self) -> dict[str, Any]:
        """``ipytest.autoconfig(**lab.ipytest_config)``: see :mod:`runner`."""
        from labapp.lessons.l09_testing.runner import ipytest_options

        return ipytest_options(self.lab.workdir)

    def grade_tests(self, suite: Any = None) -> Any:
        """Grade your test suite: against the sound API, then against every mutant."""
        __tracebackhide__ = True
        return self.lab.check_answer("tests", suite)

    def stop(self) -> None:
        stoppers = [threading.Thread(target=server.stop) for server in self._servers]
        for thread in stoppers:  # ~100 ms each one after another: in parallel instead
            thread.start()
        for thread in stoppers:
            thread.join()
        for store in self._stores:
            store.close()


def _now() -> int:
    import time

    return int(time.time())
