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


S3_SECRET = "s3cr3t-never-in-a-manifest-4c1e"
"""The fake secret key the S3 tests use: no object, manifest, card or log may contain it."""


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3 API server (moto's standalone server) on 127.0.0.1 for the session; yields its URL.

    It runs as its own process: in-process (``ThreadedMotoServer``) it deadlocks with deltalake,
    whose calls hold the GIL while they wait for the server's answer (measured: list requests time
    out after 180 s).
    """
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("moto's S3 server did not start")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on :func:`s3_server`, with credentials in the environment only; returns ``s3://BUCKET``.

    Subprocesses inherit the environment, so a ``curate`` CLI call reaches the same server.
    """
    import re
    import uuid

    import boto3

    env = {
        "AWS_ACCESS_KEY_ID": "curate-test-key",
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ALLOW_HTTP"):
        monkeypatch.delenv(k, raising=False)
    slug = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    bucket = f"{slug}-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return f"s3://{bucket}"
