"""The Prefect executor's costs per task: quick steps as one task, arguments Prefect does not walk,
the dependency arrows kept, one progress artifact, per-step timers, no heartbeat wait."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY
from prefect.utilities.annotations import opaque

from curate.engine.sequence import HASH, INGEST, SEQUENCE
from flows.curation import foreground_settings, run_flow
from flows.executor import run_batch, shallow


@dataclass
class Big:
    plan: list[int]


def test_shallow_wraps_each_item_not_its_contents() -> None:
    big = Big(list(range(1000)))
    wrapped = shallow([big, big])
    assert type(wrapped) is list and all(isinstance(w, opaque) and w.unwrap() is big for w in wrapped)
    assert isinstance(shallow(big), opaque) and shallow(big).unwrap() is big
    assert shallow({0: ["k1", "k2"]})[0].unwrap() == ["k1", "k2"]
    assert shallow((1, 2)) == (opaque(1), opaque(2))


def test_run_batch_returns_values_in_call_order() -> None:
    def slow_first(prep: str, i: int) -> str:
        if i == 0:
            import time

            time.sleep(0.05)  # finishes last: the order must still be the calls' order
        return f"{prep}{i}"

    calls = [(i,) for i in range(5)]
    expected = [f"p{i}" for i in range(5)]
    assert run_batch(slow_first, "p", calls, width=3) == run_batch(slow_first, "p", calls) == expected


def test_batched_steps() -> None:
    # ingest stays a task per file (long, with a progress artifact); the quick steps may batch
    assert {s.name: s.batch for s in SEQUENCE if s.batch} == {
        "hash-file": "hash-files",
        "sketch": "sketch-shards",
        "finish-part": "finish-parts",
    }
    assert INGEST.batch is None and HASH.key is None


def test_heartbeats_off_in_the_foreground_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    monkeypatch.delenv("PREFECT_RUNNER_HEARTBEAT_FREQUENCY", raising=False)
    assert foreground_settings() == {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")
    assert foreground_settings() == {}


def _post(api: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    # the REST API directly: this Prefect client's filters send nulls its server refuses
    r = httpx.post(f"{api.rstrip('/')}/{path}", json=body, timeout=30)
    r.raise_for_status()
    return r.json()


def test_flow_tasks_keep_their_dependencies_and_report_progress_and_timers(
    project: Callable[..., Path], prefect_api: str, task_states: Callable[..., dict[str, list[str]]]
) -> None:
    res = run_flow(project(), runner="thread:2")
    flow_run = res["orchestrator"]["flow_run_id"]
    states = task_states(flow_run, expect=9)
    # on threads: one task per file for ingest (the long step, with progress); the quick per-file,
    # per-shard and per-part steps one task each
    assert len(states["ingest"]) == 2
    for batch in ("hash-files", "sketch-shards", "finish-parts"):
        assert states[batch] == ["Completed"], (batch, states)
    # the flow's own per-step timers, named as --local names them (orchestration included)
    for name in ("hash-file", "ingest", "sketch", "decide", "finish-part", "assemble", "publish", "artifacts"):
        assert res["steps"][name]["seconds"] > 0, name

    body = {"flow_runs": {"id": {"any_": [str(UUID(str(flow_run)))]}}, "limit": 200}
    runs = _post(prefect_api, "task_runs/filter", body)
    ids = {t["name"].rsplit("-", 1)[0]: set() for t in runs}
    for t in runs:
        ids[t["name"].rsplit("-", 1)[0]].add(t["id"])

    def upstream(name: str, param: str) -> set[str]:
        (run,) = [t for t in runs if t["name"].rsplit("-", 1)[0] == name]
        return {i["id"] for i in run["task_inputs"].get(param, []) if i.get("input_type") == "task_run"}

    # arguments go in opaque (Prefect does not walk the plan) yet the UI's arrows stay: decide
    # comes from both ingest tasks, assemble from decide and from the finished parts
    assert upstream("decide", "refs") == ids["ingest"]
    assert upstream("assemble", "decision") == ids["decide"]
    assert upstream("assemble", "finished") == ids["finish-parts"]

    # one progress artifact for the ingest, left at 100%
    progress = _post(prefect_api, "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run]}}})
    bars = [a for a in progress if a["type"] == "progress"]
    assert len(bars) == 1 and float(bars[0]["data"]) == 100.0
