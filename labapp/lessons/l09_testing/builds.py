"""Lesson 09's network: every build of the notes API, each on its own loopback server.

``lab.url`` serves the sound build you explore. The grader's builds (a sound one of its
own and every mutant) start on first use (grading, or ``lab.staging_url``), each with its
own SQLite file seeded like the lab's and the same signing key, so one set of tokens is
valid on every build.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import jwt
from hypothesis import settings

from labapp.engine.server import LabServer
from labapp.engine.store import Store
from labapp.lessons.l09_testing import notes
from labapp.lessons.l09_testing.api import build_app
from labapp.lessons.l09_testing.mutants import LAB, STAGING, TARGETS

if TYPE_CHECKING:
    from labapp.engine.lab import Lab


class Builds:
    """``lab.net``: ``url(target)``, ``tokens()``, ``note_ids``, and the grader."""

    exports = ("grade_tests", "staging_url", "ipytest_config", "tokens")

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._key = signing_key(lab.store)
        self.note_ids = notes.first_note_ids(lab.store)
        self._urls: dict[str, str] = {}
        self._servers: list[LabServer] = []
        self._stores: list[Store] = []
        self._lock = threading.Lock()
        # The kernel's Hypothesis profile: no deadline (real HTTP on a loaded hub is slow at
        # times) and no .hypothesis folder beside the notebook. Tests defined from now on.
        settings.load_profile("labapp")

    def url(self, target: str) -> str:
        """The address of a build: ``"lab"`` is lab.url; the others are the grader's."""
        if target == LAB:
            return self.lab.url
        if target in TARGETS:
            self.start_builds()
            return self._urls[target]
        raise LookupError(f"no build {target!r}; the builds are {', '.join(TARGETS)}")

    def start_builds(self) -> None:
        """Serve the grader's builds: a sound one of its own (grading never touches the lab
        you explore) and every mutant; about 20 ms each, once per lab."""
        with self._lock:
            if self._urls:
                return
            for name in TARGETS:
                store = Store(self.lab.workdir / f"build-{name}.sqlite3")
                notes.seed_store(store)
                server = LabServer(build_app(store, self._key, name))
                server.start()
                self._stores.append(store)
                self._servers.append(server)
                self._urls[name] = server.url

    def reset_builds(self) -> None:
        """Every build back to the seed, so one grading run cannot change the next one's."""
        self.start_builds()
        for store in self._stores:
            notes.reset_store(store)

    @property
    def staging_url(self) -> str:
        """The next release, on staging: point schemathesis here (``/openapi.json``)."""
        return self.url(STAGING)

    def mint(self, username: str, *, key: bytes | None = None, **changes: Any) -> str:
        claims = notes.claims_for(username, **changes)
        return jwt.encode(claims, key or self._key, algorithm=notes.ALGORITHM)

    def tokens(self) -> dict[str, str]:
        """Freshly minted tokens by name: the ``tokens`` fixture's, and ``lab.tokens()``."""
        now = int(time.time())
        found = {name: self.mint(name) for name, _, _ in notes.PEOPLE if name != notes.DELETED}
        found.update(
            {
                "alice-read-only": self.mint("alice", scope="notes:read"),
                "alice-expired": self.mint("alice", exp=now - 120, iat=now - 420),
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
        """Grade your test suite against the sound API and every mutant.

        Without an argument, the tests are the ``test*`` functions (and ``Test*`` classes)
        defined where you call it: your notebook's cells.
        """
        __tracebackhide__ = True
        if suite is None:
            suite = sys._getframe(1).f_globals  # the caller's namespace: the notebook's
        return self.lab.check_answer("tests", suite)

    def stop(self) -> None:
        stoppers = [threading.Thread(target=server.stop) for server in self._servers]
        for thread in stoppers:  # ~100 ms each one after another: in parallel instead
            thread.start()
        for thread in stoppers:
            thread.join()
        for store in self._stores:
            store.close()


def signing_key(store: Store) -> bytes:
    """The lab's HS256 key, made by ``seed`` (fresh per lab): every build signs with it."""
    row = store.one("SELECT value FROM lab_key")
    assert row is not None, "seed() makes the key"
    return bytes.fromhex(row["value"])
