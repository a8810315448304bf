"""The curation flows on Prefect's test harness: same result as --local, retries, cache resume, refresh, Dask."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import fsspec
import polars as pl
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from curate.engine.local import run_recipe
from curate.store import Store
from flows.curation import curate_flow, run_flow
from schemas.recipe_loader import load_recipe_file


def test_flow_curates_like_the_local_run(project: Callable[..., Path], prefect_api: str, tmp_path: Path) -> None:
    recipe = project()
    res = run_flow(recipe, runner="thread:2")
    assert res["balanced"] and res["input_rows"] == 53
    assert res["duplicates_by_reason"] == {"exact_dedup": 3}
    assert res["published"]["created"] and res["published"]["version"] == 1
    assert res["orchestrator"]["name"] == "prefect" and res["orchestrator"]["flow_run_id"]
    run_dir = Path(res["run_dir"])
    assert (run_dir / "report.md").exists() and (run_dir / "funnel.png").exists()
    assert len(pl.read_parquet(run_dir / "data")) == res["output_records"] == 50
    # the report sits next to the version too, its audit links pointing back at the run folder
    card_dir = Path(res["published"]["card"]).parent
    assert (run_dir / "duplicates.parquet").resolve().as_uri() in (card_dir / "run-report.md").read_text()

    local = run_recipe(load_recipe_file(recipe), tmp_path / "local-runs", show_progress=False)
    assert local.summary["published"]["content_hash"] == res["published"]["content_hash"]
    assert local.summary["published"]["created"] is False  # same content: nothing new to publish
    for key in ("input_rows", "kept", "quarantined", "duplicates", "dropped", "duplicates_by_reason"):
        assert local.summary[key] == res[key], key

    import httpx

    def artifacts(key: str) -> list[dict]:
        # the REST API directly: this Prefect client's read_artifacts sends nulls its server refuses
        body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 5, "offset": 0}
        r = httpx.post(f"{prefect_api.rstrip('/')}/artifacts/filter", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    funnel = artifacts("flowdemo-funnel")
    data = funnel[0]["data"]
    rows = json.loads(data) if isinstance(data, str) else data
    assert any(row.get("reason") == "exact_dedup" for row in rows)
    report = artifacts("flowdemo-report")
    assert report and "data:image/png;base64," in report[0]["data"]


class FlakyMemory(MemoryFileSystem):
    """In-memory files whose second read fails, as a remote store sometimes does (the first read is
    the planner sniffing the file's compression; the second is the hash-files task)."""

    protocol = ("flakymem",)
    failures: dict[str, int] = {}  # noqa: RUF012  (shared on purpose: every instance is the same remote)

    @classmethod
    def _strip_protocol(cls, path):  # type: ignore[no-untyped-def]
        if isinstance(path, str) and path.startswith("flakymem://"):
            path = path[len("flakymem://") :]
        return super()._strip_protocol(path)

    def _open(self, path, mode="rb", **kwargs):  # type: ignore[no-untyped-def]
        if "r" in mode:
            seen = self.failures.get(path, 0)
            self.failures[path] = seen + 1
            if seen == 1:
                raise ConnectionResetError(f"simulated transient failure reading {path}")
        return super()._open(path, mode, **kwargs)


def test_transient_read_failure_is_retried(
    project: Callable[..., Path], prefect_api: str, task_states: Callable[..., dict[str, list[str]]], tmp_path: Path
) -> None:
    fsspec.register_implementation("flakymem", FlakyMemory, clobber=True)
    fs = fsspec.filesystem("flakymem")
    root = f"/flaky-{tmp_path.name}"
    fs.pipe(f"{root}/a.jsonl", b'{"instruction": "Say hi", "output": "Hello there, friend."}\n')
    recipe = project(source_path=f"flakymem://{root}/*.jsonl")
    res = run_flow(recipe)
    assert res["input_rows"] == 1 and res["kept"] == 1
    states = task_states(res["orchestrator"]["flow_run_id"], expect=5)
    assert states["hash-files"] == ["Completed"] and states["hash-files#run_count"] == ["2"]  # failed, retried
    assert states["ingest"] == ["Completed"] and states["ingest#run_count"] == ["1"]


def test_rerun_after_a_late_failure_reuses_cached_steps(
    project: Callable[..., Path], prefect_api: str, task_states: Callable[..., dict[str, list[str]]], tmp_path: Path
) -> None:
    recipe = project()
    # a file where the dataset's folder should be: the plan-time check (the store root) passes,
    # publishing fails late (a store root that is a file is refused before any work instead)
    blocker = tmp_path / "store" / "flowdemo"
    blocker.parent.mkdir()
    blocker.write_text("a file where the dataset folder should be")
    state = curate_flow(str(recipe), return_state=True)
    assert state.is_failed()
    failed = task_states(state.state_details.flow_run_id, expect=10)
    assert set(failed["ingest"]) == {"Completed"} and failed["publish"] == ["Failed"]

    blocker.unlink()
    res = run_flow(recipe)
    assert res["published"]["created"]
    states = task_states(res["orchestrator"]["flow_run_id"], expect=10)
    for step in ("ingest", "sketch-shards", "decide", "finish-parts"):
        assert set(states[step]) == {"Cached"}, (step, states)
    assert states["publish"] == ["Completed"] and states["assemble"] == ["Completed"]


def test_refresh_publishes_once_then_noops_then_adds_only_new_rows(
    project: Callable[..., Path],
    prefect_api: str,
    task_states: Callable[..., dict[str, list[str]]],
    tmp_path: Path,
    rows_writer: Callable[..., None],
) -> None:
    recipe = project()
    first = run_flow(recipe, incremental=True)
    assert first["published"]["version"] == 1 and first["refresh"]["base_version"] is None

    again = run_flow(recipe, incremental=True)
    assert again["noop"] is True
    store = Store(tmp_path / "store")
    assert store.versions("flowdemo") == [1]
    log = (tmp_path / "runs" / "flowdemo" / "refreshes.jsonl").read_text().splitlines()
    assert len(log) == 2 and '"noop":true' in log[1]

    # a new file: 5 new rows plus exact copies of 2 rows published in v1
    rows_writer(tmp_path / "raw" / "c.jsonl", range(5000, 5005), dup_of=range(1003, 1005))
    third = run_flow(recipe, incremental=True)
    assert third["published"]["version"] == 2
    assert third["input_rows"] == 7 and third["duplicates_by_reason"] == {"exact_dedup": 2} and third["kept"] == 5
    assert third["refresh"]["new_files"] == [(tmp_path / "raw" / "c.jsonl").resolve().as_uri()]
    v1, v2 = store.read("flowdemo@1"), store.read("flowdemo@2")
    assert v2.height == v1.height + 5 and set(v1["id"]) <= set(v2["id"])
    dups = pl.read_parquet(Path(third["run_dir"]) / "duplicates.parquet")
    assert set(dups["duplicate_of"]) <= set(v1["id"])  # removed as copies of published rows
    manifest = store.manifest("flowdemo@2")
    assert manifest["parent_version"] == 1 and len(manifest["inputs"]) == 3
    assert sum(bool(i.get("carried")) for i in manifest["inputs"]) == 2
    states = task_states(third["orchestrator"]["flow_run_id"], expect=8)
    assert len(states["ingest"]) == 1  # only the new file was read


@pytest.mark.integration
def test_dask_runner_gives_the_same_dataset(
    project: Callable[..., Path], prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = project()
    threads = run_flow(recipe, tmp_path / "thread-runs")
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)  # Dask worker processes report to the same server
    dask = run_flow(recipe, tmp_path / "dask-runs", runner="dask:2")
    assert dask["published"]["content_hash"] == threads["published"]["content_hash"]
    assert dask["published"]["created"] is False
    a = pl.read_parquet(Path(threads["run_dir"]) / "data").sort("id")
    b = pl.read_parquet(Path(dask["run_dir"]) / "data").sort("id")
    assert a.equals(b)
