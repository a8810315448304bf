"""``curate run`` and ``curate refresh`` with inputs, run outputs and the store on S3 (moto's server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from curate.store import Store
from tests.conftest import S3_SECRET

pytestmark = pytest.mark.integration


def _put(bucket: str, key: str, n: int, start: int = 0) -> None:
    body = "".join(json.dumps({"text": f"document {i} about subject {i % 13}"}) + "\n" for i in range(start, n))
    boto3.client("s3").put_object(Bucket=bucket.removeprefix("s3://"), Key=key, Body=body.encode())


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CURATE_LOCAL_DIR": str(cwd / "mirror")}
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def test_run_and_refresh_with_everything_on_s3(s3_bucket: str, tmp_path: Path) -> None:
    _put(s3_bucket, "raw/a.jsonl", 30)
    (tmp_path / "r.yaml").write_text(
        f"name: s3run\noutput: {{kind: text, dir: {s3_bucket}/runs}}\n"
        f'sources:\n  - {{name: a, path: "{s3_bucket}/raw/*.jsonl", convert: text}}\n'
        f"publish: {{store: {s3_bucket}/store}}\n"
    )
    first = _cli("run", "r.yaml", "--local", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout)
    assert summary["outputs"]["dir"] == f"{s3_bucket}/runs/s3run/{summary['run_id']}"
    assert summary["published"]["version"] == 1 and summary["input_rows"] == 30

    _put(s3_bucket, "raw/b.jsonl", 40, start=30)
    second = _cli("refresh", "r.yaml", "--local", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads(second.stdout)["published"]["version"] == 2

    st = Store(f"{s3_bucket}/store")
    assert st.versions("s3run") == [1, 2] and st.read("s3run@2").height == 40
    assert all(i["uri"].startswith(f"{s3_bucket}/raw/") for i in st.manifest("s3run@2")["inputs"])
    s3 = boto3.client("s3")
    bucket = s3_bucket.removeprefix("s3://")
    latest = s3.get_object(Bucket=bucket, Key="runs/s3run/latest")["Body"].read().decode().strip()
    run = json.loads(s3.get_object(Bucket=bucket, Key=f"runs/s3run/{latest}/summary.json")["Body"].read())
    assert run["run_id"] == latest and run["published"]["version"] == 2
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    for key in keys:
        assert S3_SECRET.encode() not in s3.get_object(Bucket=bucket, Key=key)["Body"].read(), key
    assert S3_SECRET not in first.stdout + first.stderr + second.stdout + second.stderr


def test_export_to_an_s3_url_and_refusing_an_existing_object(s3_bucket: str, tmp_path: Path) -> None:
    from curate.store.publish import frame_batches, publish_records
    from schemas.kinds import Kind
    from schemas.recipe import SplitSpec
    from tests.curate.store.test_s3_store import V1, sft

    store = f"{s3_bucket}/store"
    publish_records(
        frame_batches(sft(V1)), Kind.SFT, Store(store), "chat", SplitSpec(eval=0.2), lambda _: {"kind": "sft"}
    )
    s3, bucket = boto3.client("s3"), s3_bucket.removeprefix("s3://")

    done = _cli("datasets", "export", "chat@1", "--format", "trl_jsonl", "--out", f"{s3_bucket}/exports/chat",
                "--store", store, "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["out"] == f"{s3_bucket}/exports/chat" and result["rows"] == len(V1)
    body = s3.get_object(Bucket=bucket, Key="exports/chat/export_manifest.json")["Body"].read()
    assert json.loads(body)["files"] == result["files"] and set(result["files"]) == {"train.jsonl", "eval.jsonl"}
    lines = [
        json.loads(line)
        for f in result["files"]
        for line in s3.get_object(Bucket=bucket, Key=f"exports/chat/{f}")["Body"].read().splitlines()
    ]
    assert len(lines) == len(V1) and all(set(r) == {"messages"} for r in lines)

    # LLaMA-Factory's dataset_info.json in a bucket folder is merged into, as in a local folder
    for prefix in ("first", "second"):
        lf = _cli("datasets", "export", "chat@1", "--format", "sharegpt_json", "--name", prefix,
                  "--out", f"{s3_bucket}/lf", "--store", store, cwd=tmp_path)  # fmt: skip
        assert lf.returncode == 0, lf.stderr[-3000:]
    info = json.loads(s3.get_object(Bucket=bucket, Key="lf/dataset_info.json")["Body"].read())
    assert set(info) == {"first_train", "first_eval", "second_train", "second_eval"}

    s3.put_object(Bucket=bucket, Key="exports/taken", Body=b"someone's file")
    refused = _cli("datasets", "export", "chat@1", "--format", "trl_jsonl", "--out", f"{s3_bucket}/exports/taken",
                   "--store", store, cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert f"--out {s3_bucket}/exports/taken is an existing object" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert s3.get_object(Bucket=bucket, Key="exports/taken")["Body"].read() == b"someone's file"

    missing = _cli("datasets", "export", "chat@1", "--format", "trl_jsonl", "--out", "s3://no-such-bucket-x1/e",
                   "--store", store, cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 2 and "cannot write the export to s3://no-such-bucket-x1/e" in missing.stderr
    assert "Traceback" not in missing.stderr and S3_SECRET not in missing.stderr + done.stdout + done.stderr


def test_work_files_go_to_work_dir_when_outputs_are_on_s3(s3_bucket: str, tmp_path: Path) -> None:
    """Work files never go to object storage: with ``output.work_dir`` (recipe-relative) they go there, not
    to the local cache; a URL ``work_dir`` is refused before any work (exit 2)."""
    _put(s3_bucket, "raw/a.jsonl", 12)
    recipe = (
        f"name: wd\noutput: {{kind: text, dir: {s3_bucket}/runs, work_dir: shared/work}}\n"
        f'sources:\n  - {{name: a, path: "{s3_bucket}/raw/*.jsonl", convert: text}}\n'
        f"publish: {{store: {s3_bucket}/store}}\n"
    )
    (tmp_path / "r.yaml").write_text(recipe)
    done = _cli("run", "r.yaml", "--local", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["published"]["version"] == 1
    shards = [p for p in (tmp_path / "shared" / "work" / "wd" / "shards").iterdir() if not p.name.startswith(".")]
    assert len(shards) == 1 and (shards[0] / "shard.json").exists()
    assert not list((tmp_path / "mirror").rglob(".work"))  # the local cache holds the run folder only
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket.removeprefix("s3://"))["Contents"]]
    assert not [k for k in keys if "/.work/" in k or "shards" in k]

    (tmp_path / "bad.yaml").write_text(recipe.replace("work_dir: shared/work", f"work_dir: {s3_bucket}/work"))
    bad = _cli("run", "bad.yaml", "--local", cwd=tmp_path)
    assert bad.returncode == 2 and "work_dir" in bad.stderr and "is a URL" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
