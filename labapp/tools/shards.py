"""Grading a cohort on several machines: which learners a shard grades, and the merge.

``labapp grade SUBMISSIONS --shard K/N`` grades every N-th learner of the sorted learner
folders, starting at the K-th: a deterministic, balanced 1/N that needs no coordination
(each machine sees the same folders, so each knows its share). ``labapp grade --merge
OUT_1 ... OUT_N --out DIR`` checks that the shards are one complete run of one cohort and
writes the grades.csv, grades.json and feedback index a single run would have written.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from labapp.engine.errors import GradingError
from labapp.tools.reports import FEEDBACK, Grades, page_name, read_grades, write_grades

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``: shard K of N, counted from 1 (a Kubernetes index + 1)."""
    match = _SHARD.fullmatch(text)
    if not match:
        raise GradingError(f"--shard {text!r}: write it K/N, e.g. 2/4 (shard 2 of 4)")
    k, n = int(match[1]), int(match[2])
    if not 1 <= k <= n:
        raise GradingError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def pick(learners: list[str], shard: tuple[int, int]) -> list[str]:
    """The learners of shard K of N: the K-th, the (K+N)-th... of the sorted names."""
    k, n = shard
    return sorted(learners)[k - 1 :: n]


def merge(outs: list[Path], into: Path) -> Grades:
    """Join shard outputs into one; refuse anything that is not one whole run of one cohort."""
    if not outs:
        raise GradingError("--merge needs the output folders of the shards")
    into_resolved = into.resolve()
    for out in outs:
        if out.resolve() == into_resolved:
            raise GradingError(f"{into}: write the merge to a new folder, not into a shard's")
    shards = [(out, read_grades(out)) for out in outs]
    first_out, first = shards[0]
    n = first.shard[1]
    for out, grades in shards[1:]:
        for what, mine, theirs in (
            ("the number of shards", grades.shard[1], n),
            ("the exercises (a different release?)", grades.columns, first.columns),
            ("the learners (different submissions?)", grades.cohort, first.cohort),
        ):
            if mine != theirs:
                raise GradingError(f"{out} and {first_out} differ in {what}")
    seen: dict[int, Path] = {}
    for out, grades in shards:
        k = grades.shard[0]
        if k in seen:
            raise GradingError(f"{seen[k]} and {out} are both shard {k}/{n}")
        seen[k] = out
    missing = [f"{k}/{n}" for k in range(1, n + 1) if k not in seen]
    if missing:
        raise GradingError(f"shard(s) {', '.join(missing)} missing: merge all {n} outputs")
    rows = {}
    for out, grades in shards:
        expected = pick(list(first.cohort), grades.shard)
        if [row.learner for row in grades.rows] != expected:
            raise GradingError(f"{out}: its learners are not those of shard {grades.shard[0]}")
        for row in grades.rows:
            page = out / FEEDBACK / page_name(row.learner)
            if not page.is_file():
                raise GradingError(f"{page}: missing; was the shard's output copied whole?")
            rows[row.learner] = (row, page)
    merged = Grades(first.columns, first.cohort, tuple(rows[name][0] for name in first.cohort))
    (into / FEEDBACK).mkdir(parents=True, exist_ok=True)
    for _, page in rows.values():
        shutil.copyfile(page, into / FEEDBACK / page.name)
    write_grades(into, merged)
    return merged
