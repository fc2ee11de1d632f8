"""What lesson 03 teaches for a hook that crashed during a row (the server answered 5xx).

The engine marks such a row failed and adds the learner's own line; a generic "must not
raise" would not say what to change. This adds the lesson's fix for the hook that failed and
how (raised, returned the wrong thing, hung), e.g. a ``VerifyMismatchError`` let out of
``verify_password`` means "catch it and answer False".
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import httpx

from labapp.engine.grading import Observed

Row = Callable[[Any, httpx.Client], Observed]

FIXES = {
    ("verify_password", "raised"): "verify_password: catch VerificationError (a wrong "
    "password raises VerifyMismatchError, one of them) and InvalidHashError, and answer False",
    ("verify_password", "returned"): "verify_password: return True or False on every path "
    "(a None that means no is not an answer)",
    ("needs_rehash", "raised"): "needs_rehash: test for the '$argon2id$' prefix first: "
    "HASHER.check_needs_rehash cannot read a 'sha1$' hash",
    ("needs_rehash", "returned"): "needs_rehash: return True or False on every path",
    ("hash_password", "returned"): "hash_password: return the PHC string HASHER.hash makes (a str)",
    ("failure_response", "returned"): "failure_response: return a tuple (4xx status, message)",
    ("failure_response", "raised"): "failure_response: answer every reason, 'throttled' too",
    ("throttle_key", "raised"): "throttle_key: return the username (a header you look up may "
    "be missing)",
}
HUNG = (
    "{hook}: one argon2 computation at OWASP's parameters (~17 ms) and no sleeping, so that "
    "it returns well within its deadline"
)


def explained(row: Row) -> Row:
    """``row``, with the lesson's fix added to its detail for each hook that failed in it."""

    @wraps(row)
    def run(lab: Any, http: httpx.Client) -> Observed:
        before = len(lab.guard.incidents)
        seen = row(lab, http)
        fixes = []
        for incident in lab.guard.incidents[before:]:
            fix = FIXES.get((incident.hook, incident.kind))
            if incident.kind == "timed out":
                fix = HUNG.format(hook=incident.hook)
            if fix and fix not in fixes:
                fixes.append(fix)
        if not fixes:
            return seen
        detail = f"{seen.detail}; " if seen.detail else ""
        return Observed(seen.succeeded, seen.status, detail + "for this crash: " + "; ".join(fixes))

    return run
