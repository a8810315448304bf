"""A Prefect test harness (temporary server and database) shared by the flow tests of one worker."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """Run every flow of the session against one temporary Prefect server; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def task_states(prefect_api: str) -> Callable[..., dict[str, list[str]]]:
    """``task_states(flow_run_id, expect=N)`` -> task name -> state names of that flow run's task runs
    (and ``NAME#run_count`` -> how many times each ran, retries included).

    Task runs reach the API as events, a moment after the flow returns: wait until ``expect`` arrived.
    """
    import httpx

    final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

    def get(flow_run_id: str, expect: int = 1) -> dict[str, list[str]]:
        # the REST API directly: this Prefect client's read_task_runs sends nulls its server refuses
        body = {"flow_runs": {"id": {"any_": [str(UUID(str(flow_run_id)))]}}, "sort": "ID_DESC", "limit": 200}
        deadline = time.monotonic() + 30
        while True:
            r = httpx.post(f"{prefect_api.rstrip('/')}/task_runs/filter", json=body, timeout=30)
            r.raise_for_status()
            done = [t for t in r.json() if t.get("state") and t["state"]["type"] in final]
            if len(done) >= expect or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        out: dict[str, list[str]] = {}
        for t in done:
            name = t["name"].rsplit("-", 1)[0]
            out.setdefault(name, []).append(t["state"]["name"])
            out.setdefault(name + "#run_count", []).append(str(t["run_count"]))
        return out

    return get


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """Write a small project (two alpaca files, a recipe with stages and publish) and return the recipe."""

    def make(rows_a: int = 30, rows_b: int = 20, extra: str = "", source_path: str = "raw/*.jsonl") -> Path:
        raw = tmp_path / "raw"
        raw.mkdir(exist_ok=True)
        write_rows(raw / "a.jsonl", range(rows_a))
        write_rows(raw / "b.jsonl", range(1000, 1000 + rows_b), dup_of=range(3))
        recipe = tmp_path / "r.yaml"
        recipe.write_text(
            f"""name: flowdemo
output: {{kind: sft, dir: {tmp_path / "runs"}}}
sources:
  - {{name: raw, path: "{source_path}", convert: alpaca_to_messages}}
stages:
  - {{type: filter, rule: instruction_defects}}
  - {{type: exact_dedup}}
  - {{type: near_dedup, threshold: 0.7}}
publish: {{store: {tmp_path / "store"}, splits: {{eval: 0.1}}}}
{extra}""",
            encoding="utf-8",
        )
        return recipe

    return make


def write_rows(path: Path, ids: range, dup_of: range = range(0)) -> None:
    """Alpaca rows with distinct long-enough texts, plus exact copies of rows ``dup_of`` of a.jsonl."""
    import orjson

    def row(i: int) -> dict[str, str]:
        words = " ".join(f"w{i}x{j}" for j in range(25))
        return {"instruction": f"Question {i}: explain topic {i} in detail.", "output": f"Answer {i}: {words}."}

    lines = [orjson.dumps(row(i)) for i in ids] + [orjson.dumps(row(i)) for i in dup_of]
    with path.open("wb") as f:
        f.write(b"\n".join(lines) + b"\n")


@pytest.fixture
def rows_writer() -> Callable[..., None]:
    return write_rows
