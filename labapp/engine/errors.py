"""The lab's exceptions: one tree under :class:`LabError`.

Every message says what to do next, because the reader is a learner in a notebook,
not a developer reading a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labapp.engine.grading import Report


class LabError(Exception):
    """Base class of every error the lab raises on purpose."""


class UnknownLesson(LabError, LookupError):
    """Raised by ``start_lab`` for a lesson id that does not exist; lists the valid ones."""


class UnknownHook(LabError, LookupError):
    """Raised by ``Lab.defend`` for a hook name the lesson does not have; lists the valid ones."""


class BadHook(LabError, TypeError):
    """Raised by ``Lab.defend`` when a hook is not callable or takes the wrong parameters."""


class UnknownExercise(LabError, LookupError):
    """Raised for a flag, hint or quiz name the lesson does not have; lists the valid ones."""


class UnknownDependency(LabError, LookupError):
    """Raised by ``Lab.outage`` for a service the lab does not depend on; lists the valid ones."""


class NotLoopback(LabError, ValueError):
    """Raised when a lab is asked to listen anywhere but 127.0.0.1: labs are deliberately weak."""


class LabStartError(LabError, RuntimeError):
    """Raised when the lab server does not come up in time; carries the server's last log lines."""


class LabStopped(LabError, RuntimeError):
    """Raised when a stopped lab is used; start a new one with ``start_lab``."""


class HookStillRunning(LabError, RuntimeError):
    """Raised by ``Lab.grade`` while a hook call from earlier is stuck past its deadline.

    Python cannot end a thread blocked in a C call (``time.sleep``, a socket read); grading
    beside it could slow or skew the verdicts, so the grader refuses until it ends or the
    kernel restarts.
    """


class DependencyDown(LabError, ConnectionError):
    """Raised inside a lab by a dependency (such as the identity service) that is down.

    Labs raise it during ``lab.outage(...)``. A defense that catches it must *deny* the
    request: failing closed is the point (OWASP ASVS 5, V16 "fail securely").
    """


class WrongFlag(LabError, AssertionError):
    """Raised by ``Lab.check_flag`` for a wrong or malformed flag; says why, never the answer.

    An AssertionError, so nbval marks the grader cell failed.
    """


class _Graded(LabError, AssertionError):
    """A failed grade that carries its report; its message lists every failing row.

    When the notebook has just shown the report (``shown``), IPython renders the error as
    one line naming the failing rows instead of the rows and hints a second time; the
    message itself (what ``str()``, nbval and ``labapp grade`` read) stays complete.
    """

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report
        self.shown = False

    def _render_traceback_(self) -> list[str]:  # IPython's hook for an exception's display
        if not self.shown:
            return [f"{type(self).__name__}: {self}"]
        failed = ", ".join(row.id for row in self.report.failures)
        return [f"{type(self).__name__}: {self.report.summary()}; failing: {failed} (see above)"]


class WrongAnswer(_Graded):
    """Raised by ``Lab.check_answer`` when a quiz answer has wrong rows; carries the report."""


class DefenseBreached(_Graded):
    """Raised by ``Lab.grade`` when any attack gets through or a legitimate check fails.

    Carries the full :class:`~labapp.engine.grading.Report`; its message lists every failing row.
    """


class GradingError(LabError, ValueError):
    """A cohort grading run that cannot start: no such folder, an empty release."""
