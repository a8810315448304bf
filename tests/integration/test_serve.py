"""``curate server up`` + ``curate run`` / ``curate serve``: runs reuse the local server; a scheduled refresh runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from curate.background import free_port

ROOT = Path(__file__).resolve().parents[2]


def _curate(*args: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _wait(cond, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.integration
def test_served_refresh_and_lifecycle_deployments_run_on_their_schedule(tmp_path: Path, lifecycle_project: Any) -> None:
    # one serving mechanism: a curation recipe is the lifecycle with no train step (the refresh), and a
    # lifecycle recipe (the tiny-model project of the lifecycle tests, in the same folder) is the whole loop
    shutil.copytree(ROOT / "data" / "raw", tmp_path / "data" / "raw")
    shutil.copytree(ROOT / "data" / "eval", tmp_path / "data" / "eval")
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes", dirs_exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "CURATE_PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    env.pop("PREFECT_API_URL", None)
    # no server anywhere: serve refuses clearly instead of scheduling into a temporary one
    refused = _curate("serve", "recipes/quickstart.yaml", "--cron", "0 3 * * *", env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "curate server up" in refused.stderr
    up = _curate("server", "up", "--port", str(port), env=env, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    api = f"http://127.0.0.1:{port}/api"
    assert f"export PREFECT_API_URL={api}" in up.stdout
    serve = None
    try:
        assert _curate("server", "status", env=env, cwd=tmp_path).returncode == 0
        # PREFECT_API_URL unset: a plain `curate run` goes to the running local server (no temporary one)
        run = _curate("run", "recipes/preferences.yaml", "--json", env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert "temporary" not in run.stderr
        flow_run = json.loads(run.stdout)["orchestrator"]["flow_run_id"]
        seen = httpx.get(f"{api}/flow_runs/{flow_run}", timeout=10)
        assert seen.status_code == 200 and seen.json()["state"]["type"] == "COMPLETED"

        # serve, too, finds the local server by itself
        log = (tmp_path / "serve.log").open("w")
        serve = subprocess.Popen(
            [sys.executable, "-m", "curate.cli", "serve", "recipes/quickstart.yaml", "--cron", "0 3 * * *"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"{api}/deployments/name/curate-lifecycle/quickstart-refresh"
        _wait(lambda: httpx.get(url, timeout=5).status_code == 200, 120, "the deployment")
        dep = httpx.get(url, timeout=5).json()
        assert [s["schedule"]["cron"] for s in dep["schedules"]] == ["0 3 * * *"]
        assert dep["parameters"]["recipe"] == str((tmp_path / "recipes" / "quickstart.yaml").resolve())

        refreshes = tmp_path / "runs" / "quickstart" / "refreshes.jsonl"

        def lines() -> list[dict]:
            return [json.loads(x) for x in refreshes.read_text().splitlines()] if refreshes.exists() else []

        for expected in (1, 2):  # what the schedule does at 03:00, triggered now
            for _ in range(10):  # the server answers 503 while its SQLite database is busy: retry
                r = httpx.post(f"{api}/deployments/{dep['id']}/create_flow_run", json={}, timeout=30)
                if r.status_code != 503:
                    break
                time.sleep(2)
            assert r.status_code in (200, 201), r.text
            _wait(lambda n=expected: len(lines()) >= n, 150, f"refresh run {expected}")
        first, second = lines()
        assert first["noop"] is False and first["published"]["ref"] == "quickstart@1"
        assert second["noop"] is True and second["base_version"] == "quickstart@1"
        runs = [e["orchestrator"]["flow_run_id"] for e in (first, second)]
        assert runs[0] and runs[0] != runs[1]
        serve.terminate()
        serve.wait(timeout=30)

        # the lifecycle recipe, served on its own schedule (schedule: {interval: 3600}, no flag needed)
        serve = subprocess.Popen(
            [sys.executable, "-m", "curate.cli", "serve", str(lifecycle_project.recipe)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"{api}/deployments/name/curate-lifecycle/loop-lifecycle"
        _wait(lambda: httpx.get(url, timeout=5).status_code == 200, 120, "the lifecycle deployment")
        dep = httpx.get(url, timeout=5).json()
        assert [s["schedule"]["interval"] for s in dep["schedules"]] == [3600.0]
        for _ in range(10):
            r = httpx.post(f"{api}/deployments/{dep['id']}/create_flow_run", json={}, timeout=30)
            if r.status_code != 503:
                break
            time.sleep(2)
        assert r.status_code in (200, 201), r.text
        history = tmp_path / "runs" / "lifecycle" / "loop" / "history.jsonl"
        _wait(history.exists, 300, "the lifecycle run")
        entry = json.loads(history.read_text().splitlines()[0])
        assert entry["status"] == "done" and entry["orchestrator"]["flow_run_id"] == r.json()["id"], entry
        assert entry["steps"] == {k: "done" for k in ("curate", "label", "train:loop-dpo", "evaluate", "gate")}
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=30)
        down = _curate("server", "down", env=env, cwd=tmp_path)
        assert down.returncode == 0 and "stopped" in down.stdout
