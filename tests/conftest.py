"""Shared fixtures: public datasets beside the project, a recipe writer, a Prefect test harness."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real causal LM folder (built from a config with a locally trained tokenizer), once per session."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from train.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture
def shared_file() -> Callable[[str], Path]:
    """Path of a file in ../shared/datasets, skipping the test when it is absent."""

    def get(name: str) -> Path:
        path = SHARED_DATASETS / name
        if not path.exists():
            pytest.skip(f"{path} not present")
        return path

    return get


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[[str], Path]:
    """Write recipe YAML text into tmp_path/recipe.yaml and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "recipe.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


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
