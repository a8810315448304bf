"""Crash safety on object storage: SIGKILL a publish to an S3 store (moto's server) mid-commit.

deltalake uploads a version's data file as a multipart upload (invisible until completed), then
writes the commit ``_delta_log/00000000000000000001.json`` with a put-if-absent, then the store
writes ``manifests/v2.json``. The parent lists the bucket (objects and in-progress multipart
uploads) every few milliseconds and kills the publishing child when an upload is in progress, when
the data object has landed, or when the commit appears, and once early by time. After each kill a
fresh :class:`Store` shows version 1 intact and ``latest`` still 1, unless the commit had landed
(then version 2 is complete); a rerun then publishes version 2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from curate.store import Store, content_hash
from tests.conftest import S3_SECRET
from tests.integration.test_store_crash import CHILD, COMMIT_V2, sft_frame

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROWS_V2 = 120_000


def _keys(s3: Any, bucket: str, prefix: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}


def _events(s3: Any, bucket: str, prefix: str, before: set[str]) -> set[str]:
    """Which publish milestones of version 2 the bucket shows under ``prefix`` (objects not in ``before``)."""
    keys = _keys(s3, bucket, prefix) - before
    # filtered here: moto's server does not apply Prefix to the uploads it lists
    uploads = [u for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) if u["Key"].startswith(prefix)]
    ev = {"uploading"} if uploads else set()
    table = f"{prefix}ds/table/"
    if any(k.startswith(table) and k.endswith(".parquet") and "/_delta_log/" not in k for k in keys):
        ev.add("data")
    if f"{table}_delta_log/{COMMIT_V2}" in keys:
        ev.add("commit")
    if f"{prefix}ds/manifests/v2.json" in keys:
        ev.add("manifest")
    return ev


def _seed(bucket: str, prefix: str) -> str:
    """A store holding version 1 (500 rows) under ``s3://bucket/prefix``; returns its URL."""
    root = f"s3://{bucket}/{prefix.rstrip('/')}"
    Store(root).publish("ds", sft_frame(500, "v1"), {"kind": "sft"})
    return root


def publish_child(root: str, data: Path, prefix: str, on: str | None = None, delay: float | None = None) -> dict:
    """Run the publishing child against ``root``; SIGKILL it when event ``on`` shows or after ``delay`` s."""
    s3 = boto3.client("s3")
    bucket = root.removeprefix("s3://").split("/", 1)[0]
    before = _keys(s3, bucket, prefix)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, root, str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "POLARS_MAX_THREADS": "2"},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    t0 = time.perf_counter()
    seen: dict[str, float] = {}
    killed = None
    while proc.poll() is None:
        elapsed = time.perf_counter() - t0
        for ev in _events(s3, bucket, prefix, before):
            seen.setdefault(ev, elapsed)
        if (on is not None and on in seen) or (delay is not None and elapsed >= delay):
            proc.send_signal(signal.SIGKILL)
            killed = round(elapsed, 4)
            break
        if elapsed > 120:
            proc.kill()
            raise AssertionError("the publishing child did not finish")
    rc = proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    after = _events(s3, bucket, prefix, before)
    phase = (
        "complete"
        if "manifest" in after
        else "after commit, before manifest copy"
        if "commit" in after
        else "mid-write: data uploading or uploaded, not committed"
        if after & {"uploading", "data"}
        else "before any upload"
    )
    return {"on": on, "delay": delay, "killed_at": killed, "rc": rc, "phase": phase, "events": seen, "stderr": stderr}


def check_store(root: str, h1: str, h2: str) -> list[int]:
    """The invariants after a crash: version 1 intact; ``latest`` is 1, or a complete 2 if its commit landed."""
    st = Store(root)
    assert st.names() == ["ds"]
    versions = st.versions("ds")
    assert versions in ([1], [1, 2]), versions
    assert st.latest("ds") == versions[-1]
    assert content_hash(st.read("ds@latest")) == (h2 if versions == [1, 2] else h1)
    assert content_hash(st.read("ds@1")) == h1 and st.manifest("ds@1")["content_hash"] == h1
    if versions == [1, 2]:
        assert st.manifest("ds@2")["content_hash"] == h2 and st.manifest("ds@2")["rows"] == ROWS_V2
    return versions


def test_sigkill_during_an_s3_publish_leaves_the_previous_version(s3_bucket: str, tmp_path: Path) -> None:
    bucket = s3_bucket.removeprefix("s3://")
    v2 = sft_frame(ROWS_V2, "v2")
    data = tmp_path / "v2.parquet"
    v2.write_parquet(data)
    h1, h2 = content_hash(sft_frame(500, "v1")), content_hash(v2)

    base = publish_child(_seed(bucket, "undisturbed/"), data, "undisturbed/")
    assert base["rc"] == 0 and base["phase"] == "complete", base
    assert {"uploading", "data", "commit"} <= set(base["events"]), base  # the milestones this test aims at
    outcomes = [base | {"trial": "undisturbed"}]

    trials: list[tuple[str, dict[str, Any]]] = [
        ("early", {"delay": round(0.3 * base["events"]["uploading"], 3)}),
        ("upload in progress", {"on": "uploading"}),
        ("data object landed", {"on": "data"}),
        ("commit landed", {"on": "commit"}),
    ]
    mid_write: list[str] = []
    for n, (label, how) in enumerate(trials):
        for attempt in range(2):  # the data object precedes the commit by milliseconds: a poll may miss it
            prefix = f"trial{n}-{attempt}/"
            out = publish_child(_seed(bucket, prefix), data, prefix, **how) | {"trial": label}
            if label != "data object landed" or "mid-write" in out["phase"]:
                break
        root = f"{s3_bucket}/{prefix.rstrip('/')}"
        out["versions"] = check_store(root, h1, h2)
        assert out["rc"] == -signal.SIGKILL, out
        assert (out["versions"] == [1, 2]) == (out["phase"] in ("complete", "after commit, before manifest copy")), out
        assert S3_SECRET not in out.pop("stderr")
        outcomes.append(out)
        if "mid-write" in out["phase"]:
            mid_write.append(root)
        if out["phase"] == "after commit, before manifest copy":  # the next publish's repair writes the copy
            assert Store(root).repair("ds") == [2] and Store(root).location.exists("ds/manifests/v2.json")
    print()
    for o in outcomes:
        print(json.dumps({k: o.get(k) for k in ("trial", "killed_at", "rc", "phase", "versions", "events")}))
    assert mid_write, "no kill landed while version 2's data was being uploaded"

    # a rerun on a store killed mid-write publishes version 2 normally (the orphan upload is ignored)
    for root in mid_write:
        again = Store(root).publish("ds", v2, {"kind": "sft"})
        assert (again.version, again.created) == (2, True)
        assert check_store(root, h1, h2) == [1, 2]
        assert Store(root).version_files("ds@2") and len(Store(root).read("ds@2")) == ROWS_V2


# ------------------------------------------------------------------ a whole `curate run` on S3


def _alpaca(path: Path, n: int, seed: int) -> None:
    """``n`` Alpaca rows whose answers carry random hex (so the version's data file is large enough for
    a multipart upload, whose progress the kill waits for)."""
    import random

    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"Question {i} ({seed})?", "output": f"{i}: {rng.randbytes(48).hex()}"}))
            f.write("\n")


def test_sigkill_during_the_publish_of_a_curate_run_on_s3(s3_bucket: str, tmp_path: Path) -> None:
    """``curate run`` with its run folders and store on S3, killed while its version's data is uploading:
    the store still ends at version 1, every version's run folder is complete, and the rerun publishes 2."""
    s3, bucket = boto3.client("s3"), s3_bucket.removeprefix("s3://")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: rc\noutput: {{kind: sft, dir: {s3_bucket}/runs}}\n"
        "sources:\n  - {name: a, path: a.jsonl, convert: alpaca_to_messages}\n"
        f"publish: {{store: {s3_bucket}/store, splits: {{eval: 0.05}}}}\n"
    )
    env = {**os.environ, "CURATE_LOCAL_DIR": str(tmp_path / "cache"), "POLARS_MAX_THREADS": "2"}
    cmd = [sys.executable, "-m", "curate.cli", "run", "r.yaml", "--local", "--json"]
    _alpaca(tmp_path / "a.jsonl", 200, seed=1)
    first = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    first_run = json.loads(first.stdout)["run_id"]

    _alpaca(tmp_path / "a.jsonl", 100_000, seed=2)
    before = _keys(s3, bucket, "store/")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.perf_counter()
    while "uploading" not in _events(s3, bucket, "store/", before):
        if proc.poll() is not None:
            raise AssertionError(f"curate run ended before its upload was seen: {proc.communicate()[1][-2000:]}")
        assert time.perf_counter() - t0 < 240, "the version's upload never started"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    st = Store(f"{s3_bucket}/store")
    assert st.versions("rc") == [1] and st.latest("rc") == 1 and st.read("rc@1").height == 200

    def complete_runs() -> set[str]:
        keys = _keys(s3, bucket, "runs/rc/")
        return {k.split("/")[2] for k in keys if k.endswith("/summary.json")}

    latest = s3.get_object(Bucket=bucket, Key="runs/rc/latest")["Body"].read().decode().strip()
    assert latest in complete_runs()  # `latest` names a complete run folder (the killed run's, unpublished)
    killed = json.loads(s3.get_object(Bucket=bucket, Key=f"runs/rc/{latest}/summary.json")["Body"].read())
    assert latest != first_run and killed.get("published") is None and killed["input_rows"] == 100_000
    assert st.manifest("rc@1")["run_id"] == first_run

    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert summary["published"]["version"] == 2 and summary["published"]["created"]
    st = Store(f"{s3_bucket}/store")
    assert st.versions("rc") == [1, 2] and st.read("rc@2").height == 100_000
    for v in (1, 2):  # lineage: each version's run folder exists, complete
        assert st.manifest(f"rc@{v}")["run_id"] in complete_runs()
    assert S3_SECRET not in first.stdout + first.stderr + again.stdout + again.stderr
