"""``start_lab(lesson_id)``: a lesson from the catalogue, on the engine, progress recorded.

The one place the three parts meet: the engine knows no lesson and no progress file, the
lessons know no progress file, and the course tools start no lab.
"""

from __future__ import annotations

from labapp.engine.lab import Lab, start
from labapp.engine.loopback import LOOPBACK
from labapp.lessons import get_lesson
from labapp.tools import progress


def start_lab(lesson_id: str, *, host: str = LOOPBACK, tls: bool = False) -> Lab:
    """Start the lab server of a lesson and return the :class:`Lab` that drives it.

    ``lesson_id`` is the lesson's id (``"04-jwt"``), its number (``"04"``) or its notebook
    name. ``tls=True`` serves the lab over HTTPS with a certificate from a CA made for this
    lab (``lab.ca_file``); lab.client and the graders trust that CA. Lessons that teach TLS
    always do. Re-running the cell is safe: it stops this kernel's previous lab of the same
    lesson. Every flag captured, defense passed and hint shown is saved in the progress file.
    """
    __tracebackhide__ = True
    return start(
        get_lesson(lesson_id),
        host=host,
        tls=tls,
        record=progress.record,
        record_hint=progress.record_hint,
    )
