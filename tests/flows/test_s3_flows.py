"""The curation flow on Dask with inputs, run outputs and the store on S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import polars as pl
import pytest

from curate.engine.local import run_recipe
from curate.store import Store
from flows.curation import run_flow
from schemas.recipe_loader import load_recipe_file
from tests.conftest import S3_SECRET
from tests.flows.conftest import write_rows

pytestmark = pytest.mark.integration


def _upload(bucket: str, folder: Path, prefix: str) -> None:
    s3 = boto3.client("s3")
    for f in sorted(folder.iterdir()):
        s3.put_object(Bucket=bucket.removeprefix("s3://"), Key=f"{prefix}/{f.name}", Body=f.read_bytes())


def _recipe(path: Path, inputs: str, out: str, store: str) -> Path:
    path.write_text(
        f"""name: s3dask
output: {{kind: sft, dir: "{out}"}}
sources:
  - {{name: raw, path: "{inputs}/*.jsonl", convert: alpaca_to_messages}}
stages:
  - {{type: exact_dedup}}
  - {{type: near_dedup, threshold: 0.7}}
publish: {{store: "{store}", splits: {{eval: 0.1}}}}
""",
        encoding="utf-8",
    )
    return path


def test_dask_run_with_everything_on_s3_equals_the_local_run(
    s3_bucket: str, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    write_rows(raw / "a.jsonl", range(40))
    write_rows(raw / "b.jsonl", range(1000, 1025), dup_of=range(4))
    _upload(s3_bucket, raw, "raw")
    monkeypatch.setenv("CURATE_LOCAL_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)  # Dask worker processes report to the same server

    local = run_recipe(
        load_recipe_file(_recipe(tmp_path / "local.yaml", str(raw), str(tmp_path / "runs"), str(tmp_path / "store"))),
        show_progress=False,
    )
    s3 = _recipe(tmp_path / "s3.yaml", f"{s3_bucket}/raw", f"{s3_bucket}/runs", f"{s3_bucket}/store")
    res = run_flow(s3, runner="dask:2")

    assert res["published"]["store"] == f"{s3_bucket}/store" and res["published"]["version"] == 1
    assert res["published"]["content_hash"] == local.summary["published"]["content_hash"]
    for key in ("input_rows", "kept", "quarantined", "duplicates", "dropped", "duplicates_by_reason"):
        assert res[key] == local.summary[key], key
    assert res["input_rows"] == 69 and res["duplicates_by_reason"]["exact_dedup"] == 4

    # the version on S3 holds the local run's rows; the run folder is on S3 too, complete
    st = Store(f"{s3_bucket}/store")
    assert st.versions("s3dask") == [1]
    cols = ["id", "messages", "split"]
    assert (
        st.read("s3dask@1")
        .select(cols)
        .sort("id")
        .equals(Store(tmp_path / "store").read("s3dask@1").select(cols).sort("id"))
    )
    assert all(i["uri"].startswith(f"{s3_bucket}/raw/") for i in st.manifest("s3dask@1")["inputs"])
    client, bucket = boto3.client("s3"), s3_bucket.removeprefix("s3://")
    run_id = client.get_object(Bucket=bucket, Key="runs/s3dask/latest")["Body"].read().decode().strip()
    assert run_id == res["run_id"]
    summary = json.loads(client.get_object(Bucket=bucket, Key=f"runs/s3dask/{run_id}/summary.json")["Body"].read())
    assert summary["balanced"] and summary["published"]["version"] == 1
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"runs/s3dask/{run_id}/data/")["Contents"]
    parts = [client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed]
    remote = pl.concat([pl.read_parquet(io.BytesIO(b)) for b in parts]).sort("id")
    here = pl.read_parquet(Path(local.run_dir) / "data").sort("id")
    assert remote.drop("source").equals(here.drop("source"))  # the same records; provenance names other files
    same = ["sha256", "row"]
    assert remote["source"].struct.unnest().select(same).equals(here["source"].struct.unnest().select(same))
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    for key in keys:
        assert S3_SECRET.encode() not in client.get_object(Bucket=bucket, Key=key)["Body"].read(), key
