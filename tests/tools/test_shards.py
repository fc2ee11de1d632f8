"""Sharded cohort grading: who each shard grades, and a merge that refuses anything but a
whole run. No kernel here: the shards are made with the same writer a real run uses
(tests/tools/test_cohort.py merges real shard processes)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from labapp.engine.errors import GradingError
from labapp.tools.cli import main as labapp_main
from labapp.tools.reports import FEEDBACK, Grades, Row, page_name, write_grades
from labapp.tools.shards import merge, parse_shard, pick

COLUMNS = ("00-welcome:classify", "01-unprotected:read-all-orders", "01-unprotected:defend")
COHORT = ("=sum(1)", "alice", "bob", "chloé", "dan", "eve", "frank")


def _row(name: str) -> Row:
    statuses = ("pass", "fail", "timeout") if name < "c" else ("pass", "pass", "missing")
    return Row(name, statuses, ("01-unprotected-endpoints.ipynb",) if name == "eve" else ())


def _shards(base: Path, n: int) -> list[Path]:
    """What N shard runs would write: their grades and a feedback page per learner."""
    outs = []
    for k in range(1, n + 1):
        out = base / f"shard-{k}"
        rows = tuple(_row(name) for name in pick(list(COHORT), (k, n)))
        write_grades(out, Grades(COLUMNS, COHORT, rows, (k, n)))
        for row in rows:
            (out / FEEDBACK / page_name(row.learner)).write_text(f"<p>{row.learner}</p>")
        outs.append(out)
    return outs


@pytest.mark.parametrize(("text", "shard"), [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3))])
def test_a_shard_is_written_k_of_n(text: str, shard: tuple[int, int]) -> None:
    """K/N, counted from 1, with spaces forgiven."""
    assert parse_shard(text) == shard


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "-1/2", "1/2/3", ""])
def test_a_shard_that_does_not_exist_is_refused_with_the_form_to_use(text: str) -> None:
    """A K outside 1..N or anything not K/N is a GradingError that says how to write it."""
    with pytest.raises(GradingError, match="--shard"):
        parse_shard(text)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10])
def test_the_shards_cover_every_learner_once_and_evenly(n: int) -> None:
    """N shards partition the learners, sizes differ by one at most, whatever the input order."""
    names = [f"learner-{i:03d}" for i in range(23)]
    shards = [pick(list(reversed(names)), (k, n)) for k in range(1, n + 1)]
    assert sorted(name for shard in shards for name in shard) == names
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1
    assert shards == [pick(names, (k, n)) for k in range(1, n + 1)]  # order does not matter


@pytest.mark.parametrize("n", [1, 2, 3, 4, 9])
def test_merged_shards_write_what_one_run_writes(tmp_path: Path, n: int) -> None:
    """grades.csv, grades.json and the feedback index: byte for byte those of a 1/1 run."""
    single = tmp_path / "single"
    write_grades(single, Grades(COLUMNS, COHORT, tuple(_row(name) for name in COHORT)))
    merged = tmp_path / "merged"
    merge(list(reversed(_shards(tmp_path, n))), merged)  # any order of folders
    for name in ("grades.csv", "grades.json", "feedback/index.html"):
        assert (merged / name).read_bytes() == (single / name).read_bytes(), name
    pages = sorted(p.name for p in (merged / FEEDBACK).iterdir())
    assert pages == sorted([*(page_name(name) for name in COHORT), "index.html"])


def test_a_missing_shard_is_named(tmp_path: Path) -> None:
    outs = _shards(tmp_path, 3)
    with pytest.raises(GradingError, match="shard\\(s\\) 2/3 missing"):
        merge([outs[0], outs[2]], tmp_path / "merged")


def test_the_same_shard_twice_is_refused(tmp_path: Path) -> None:
    outs = _shards(tmp_path, 2)
    with pytest.raises(GradingError, match="both shard 1/2"):
        merge([outs[0], outs[0], outs[1]], tmp_path / "merged")


def test_shards_of_different_runs_are_refused(tmp_path: Path) -> None:
    """Another N, another release's exercises, other submissions: each named as such."""
    two = _shards(tmp_path / "two", 2)
    three = _shards(tmp_path / "three", 3)
    with pytest.raises(GradingError, match="number of shards"):
        merge([two[0], three[1]], tmp_path / "merged")
    other = tmp_path / "other-release"
    rows = tuple(_row(name) for name in pick(list(COHORT), (2, 2)))
    write_grades(
        other,
        Grades(COLUMNS[:2], COHORT, tuple(Row(r.learner, r.statuses[:2]) for r in rows), (2, 2)),
    )
    with pytest.raises(GradingError, match="exercises"):
        merge([two[0], other], tmp_path / "merged")
    more = tmp_path / "more-learners"
    cohort = (*COHORT, "zoe")
    write_grades(
        more, Grades(COLUMNS, cohort, tuple(_row(n) for n in pick(list(cohort), (2, 2))), (2, 2))
    )
    with pytest.raises(GradingError, match="learners"):
        merge([two[0], more], tmp_path / "merged")


def test_a_shard_that_graded_the_wrong_learners_is_refused(tmp_path: Path) -> None:
    """A shard's rows must be exactly its share of the cohort (no one lost, no one twice)."""
    outs = _shards(tmp_path, 2)
    data = json.loads((outs[1] / "grades.json").read_text())
    data["rows"] = data["rows"][1:]
    (outs[1] / "grades.json").write_text(json.dumps(data))
    with pytest.raises(GradingError, match="not those of shard 2"):
        merge(outs, tmp_path / "merged")


def test_a_shard_without_its_feedback_pages_is_refused(tmp_path: Path) -> None:
    outs = _shards(tmp_path, 2)
    (outs[1] / FEEDBACK / page_name("alice")).unlink()
    with pytest.raises(GradingError, match="alice.html: missing"):
        merge(outs, tmp_path / "merged")


def test_a_folder_that_is_not_a_shard_output_is_refused(tmp_path: Path) -> None:
    outs = _shards(tmp_path, 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GradingError, match="no grades.json"):
        merge([outs[0], tmp_path / "empty"], tmp_path / "merged")
    (outs[1] / "grades.json").write_text('{"format": "something else"}')
    with pytest.raises(GradingError, match="not a grades.json"):
        merge(outs, tmp_path / "merged")


def test_merging_into_a_shards_own_folder_is_refused(tmp_path: Path) -> None:
    outs = _shards(tmp_path, 2)
    with pytest.raises(GradingError, match="new folder"):
        merge(outs, outs[0])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["grade", "--merge", "a", "b"], "--merge needs --out"),
        (["grade", "cohort", "--merge", "a", "--out", "m"], "no SUBMISSIONS"),
        (["grade", "--merge", "a", "--shard", "1/2", "--out", "m"], "no SUBMISSIONS"),
        (["grade"], "name the SUBMISSIONS folder"),
        (["grade", "cohort", "--shard", "5/3"], "K must be between 1 and N"),
    ],
)
def test_the_command_says_what_is_wrong_in_one_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Misused options exit 2 with a one-line `labapp: ...` message, no traceback."""
    assert labapp_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("labapp: ") and says in err and "Traceback" not in err


def test_the_merge_command_prints_each_learner_and_where_it_wrote(tmp_path: Path) -> None:
    outs = _shards(tmp_path, 3)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = labapp_main(["grade", "--merge", *map(str, outs), "--out", str(tmp_path / "m")])
    assert code == 0
    assert "alice: 1/3 exercises passed (1 fail, 1 timeout)" in stdout.getvalue()
    assert "merged 3 shard(s)" in stdout.getvalue()


# -- the Kubernetes manifests of docs/grading.md ----------------------------------------

KUBERNETES = Path(__file__).resolve().parents[2] / "docs" / "kubernetes"


def _documents(name: str) -> list[dict]:
    import yaml  # installed with JupyterLab (jupyter-events)

    return list(yaml.safe_load_all((KUBERNETES / name).read_text()))


def _run_container(tmp_path: Path, container: dict, env: dict[str, str]) -> list[str]:
    """Run the container's shell command with a stand-in `labapp` that prints its args."""
    fake = tmp_path / "bin" / "labapp"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    path = f"{fake.parent}:/usr/bin:/bin"
    done = subprocess.run(
        [*container["command"], *container["args"]],
        env={**env, "PATH": path},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    return done.stdout.splitlines()


def test_the_indexed_job_gives_pod_k_shard_k_plus_one_of_n(tmp_path: Path) -> None:
    """Every index 0..N-1 runs `labapp grade --shard K/N` with K = index + 1, its own --out."""
    job, policy = _documents("grade-cohort.yaml")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    n = spec["completions"]
    (container,) = spec["template"]["spec"]["containers"]
    outs = set()
    for index in range(n):
        argv = _run_container(tmp_path, container, {"JOB_COMPLETION_INDEX": str(index)})
        assert argv[:2] == ["grade", "/grading/submissions"]
        assert argv[argv.index("--shard") + 1] == f"{index + 1}/{n}"
        outs.add(argv[argv.index("--out") + 1])
    assert outs == {f"/grading/shards/{k}" for k in range(1, n + 1)}
    assert parse_shard(f"{n}/{n}") == (n, n)


def test_the_grading_pods_get_no_credentials_no_network_and_no_root() -> None:
    """Learners' code runs in those pods: the manifest says so in its settings."""
    job, policy = _documents("grade-cohort.yaml")
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/grading/submissions"]["readOnly"] is True
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert policy["kind"] == "NetworkPolicy"
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]  # deny all


def test_the_merge_job_reads_every_shard_the_grading_job_writes(tmp_path: Path) -> None:
    """The merge's glob picks up /grading/shards/<K> and writes the grades elsewhere."""
    (merge_job,) = _documents("merge-grades.yaml")
    (container,) = merge_job["spec"]["template"]["spec"]["containers"]
    shards = tmp_path / "grading" / "shards"
    for k in (1, 2, 3):
        (shards / str(k)).mkdir(parents=True)
    container = {
        **container,
        "args": [container["args"][0].replace("/grading", str(tmp_path / "grading"))],
    }
    argv = _run_container(tmp_path, container, {})
    assert argv[:2] == ["grade", "--merge"]
    assert argv[2:5] == [str(shards / str(k)) for k in (1, 2, 3)]
    assert argv[5:] == ["--out", str(tmp_path / "grading" / "grades")]
