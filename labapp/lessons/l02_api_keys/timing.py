"""Time two forged keys against each other, so that a busy machine cannot change the verdict.

The lab's weak compare costs 3 ms per matching character (``app.DELAY_PER_CHAR``), so a
secret wrong in its last character takes ~93 ms longer than one wrong in its first; a
constant-time compare of digests differs by microseconds. Load (other learners on a shared
hub, a test run next door) adds noise of tens of milliseconds to single requests, so:

- the two probes are **paired and interleaved** (first, last, then last, first...): a burst
  of load hits both sides of a pair, and neither side always goes first;
- a few **warm-up** pairs are thrown away (first connections, cold caches);
- the statistic is the **median of the paired differences**, which ignores the few pairs a
  scheduler hiccup ruined;
- the verdict needs a **margin** of about half the leak, far from both 0 and 93 ms;
- a leak is **measured again** before the row fails: noise has to fool two independent
  measurements in a row to fail a constant-time compare.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

WARM_UP = 2
PAIRS = (10, 12)  # the first measurement, and the second one that confirms a leak
# Half the smallest leak the lab's compare makes over a 32-character secret (31 characters
# * 3 ms): noise must shift a median by ~45 ms either way to flip a verdict. Measured on
# this course's 2-core machine with 8 spinning processes (4x oversubscribed), the medians
# of 10 pairs for a constant-time compare stayed under +47 ms (1 in 50 above 45 ms, so
# about 1 in 2,500 for two in a row), and an early-exit compare's never fell below +99 ms
# (it grows under load: every sleep waits for the CPU).
MARGIN_S = 0.045


@dataclass(frozen=True)
class Timing:
    """How much slower the "last" probe was than the "first", in seconds (median of pairs)."""

    gaps: tuple[float, ...]  # one per measurement made
    status: int | None = None  # of the last answer
    accepted: httpx.Response | None = None  # a probe the server accepted (a breach on its own)

    @property
    def leaks(self) -> bool:
        """Every measurement beyond the margin, the same way (a compare may run backwards)."""
        if self.accepted is not None or not self.gaps:
            return False
        return all(gap > MARGIN_S for gap in self.gaps) or all(gap < -MARGIN_S for gap in self.gaps)

    def describe(self) -> str:
        shown = ", then ".join(f"{gap * 1000:+.1f} ms" for gap in self.gaps)
        return (
            f"a secret wrong in its last character took {shown} longer than one wrong in its "
            f"first (medians of paired requests; a leak is {MARGIN_S * 1000:.0f} ms or more, "
            "twice)"
        )


def _paired_gap(
    send: Callable[[str], httpx.Response], first: str, last: str, pairs: int
) -> tuple[float, httpx.Response]:
    """The median of ``pairs`` paired differences, and the last answer (or an accepted one)."""
    gaps = []
    for i in range(pairs):
        order = (first, last) if i % 2 == 0 else (last, first)
        took = {}
        for probe in order:
            start = time.perf_counter()
            response = send(probe)
            took[probe] = time.perf_counter() - start
            if response.is_success:
                return 0.0, response
        gaps.append(took[last] - took[first])
    return statistics.median(gaps), response


def measure(send: Callable[[str], httpx.Response], first: str, last: str) -> Timing:
    """Time ``send(last)`` against ``send(first)``; measure again only if it looks like a leak."""
    _, response = _paired_gap(send, first, last, WARM_UP)
    if response.is_success:
        return Timing((), response.status_code, response)
    gaps: list[float] = []
    for pairs in PAIRS:
        gap, response = _paired_gap(send, first, last, pairs)
        if response.is_success:
            return Timing(tuple(gaps), response.status_code, response)
        gaps.append(gap)
        if abs(gap) <= MARGIN_S:
            break  # no leak: one clean measurement is enough to pass
    return Timing(tuple(gaps), response.status_code)
