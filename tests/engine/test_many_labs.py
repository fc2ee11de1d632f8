"""Many learners on one host: labs never collide (the JupyterHub promise in docs/jupyterhub.md)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from labapp.engine.lab import Lab
from labapp.lessons import get_lesson
from tests.conftest import refused

LEARNERS = 20


# FastAPI (0.165, fastapi/_compat/v2.py) silences this pydantic warning with
# warnings.catch_warnings(), which is process-wide and not thread-safe: twenty apps built at
# once let it escape now and then, and this suite turns warnings into errors.
@pytest.mark.filterwarnings("ignore::pydantic.warnings.UnsupportedFieldAttributeWarning")
def test_twenty_labs_started_at_once_each_get_their_own_port_data_and_flags() -> None:
    """Twenty labs start at the same moment, as twenty learners' kernels on one machine would.

    Each binds 127.0.0.1 on a port of its own (port 0: the OS chooses), keeps its own
    database in its own folder, and hands out its own flags; stopping them frees every port.
    """
    lesson = get_lesson("01-unprotected")
    barrier = threading.Barrier(LEARNERS)

    def learner(_: int) -> Lab:
        barrier.wait()  # all twenty start together
        return Lab(lesson)

    with ThreadPoolExecutor(LEARNERS) as pool:
        labs = list(pool.map(learner, range(LEARNERS)))
    try:
        ports = {lab.server.port for lab in labs}
        folders = {lab.workdir for lab in labs}
        assert len(ports) == len(folders) == LEARNERS
        flags = set()
        for lab in labs:
            body = lab.client.get("/orders").json()  # the lesson's first attack, for real
            lab.check_flag("read-all-orders", body["flag"])
            flags.add(body["flag"])
        assert len(flags) == LEARNERS  # nobody can hand a neighbour their flag
        alice_tokens = {lab.users[0]["token"] for lab in labs}
        assert len(alice_tokens) == LEARNERS
    finally:
        for lab in labs:
            lab.stop()
    assert all(refused(port) for port in ports)
