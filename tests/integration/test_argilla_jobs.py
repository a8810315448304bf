"""argilla's background jobs run: in-process without Redis (default), through a worker with Redis."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from curate.annotate.client import Connection
from curate.annotate.progress import progress
from curate.annotate.push import push
from curate.annotate.server import ArgillaHome
from schemas.annotation import AnnotationSpec

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("argilla")]


def _rows(tag: str) -> pl.DataFrame:
    msg = lambda role, text: [{"role": role, "content": text}]  # noqa: E731
    return pl.DataFrame(
        {
            "prompt": [msg("user", f"{tag} {i}?") for i in range(2)],
            "chosen": [msg("assistant", f"yes {i}") for i in range(2)],
            "rejected": [msg("assistant", f"no {i}") for i in range(2)],
        }
    )


def distribution_change_recomputes_statuses(conn: Connection, name: str) -> None:
    """Raising min_submitted enqueues argilla's update_dataset_records_status job; it must run."""
    import argilla as rg

    push(conn, _rows(name), name, AnnotationSpec(min_submitted=1))
    client = conn.client()
    ds = client.datasets(name, workspace="argilla")
    records = list(ds.records)
    for r in records:
        value = [{"value": "response_1", "rank": 1}, {"value": "response_2", "rank": 2}]
        r.responses.add(rg.Response("ranking", value, user_id=client.me.id, status="submitted"))
    ds.records.log(records)
    assert progress(conn, name)["completed"] == 2
    push(conn, _rows(name), name, AnnotationSpec(min_submitted=2))  # updates the distribution -> job
    deadline = time.monotonic() + 30
    while progress(conn, name)["completed"] != 0:
        assert time.monotonic() < deadline, "the record-status job never ran"
        time.sleep(0.3)
    assert progress(conn, name)["min_submitted"] == 2


def test_jobs_run_in_process_without_redis(argilla_server: Any) -> None:
    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    distribution_change_recomputes_statuses(Connection(argilla_server.url, creds.api_key, "local"), "jobs-local")


def test_jobs_run_through_redis_when_configured(
    argilla_venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    monkeypatch.setenv("ARGILLA_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    home = ArgillaHome(tmp_path / "home", venv=argilla_venv)
    try:
        status = home.up(port=0, timeout=180)
        assert status["jobs"] == "redis worker"
        creds = home.credentials()
        assert creds is not None
        distribution_change_recomputes_statuses(Connection(status["url"], creds.api_key, "local"), "jobs-redis")
        worker = json.loads(home.state_file.read_text())["worker_pid"]
        home.down()
        assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]
    finally:
        home.down()
        redis.terminate()
        redis.wait(10)


def test_record_webhooks_still_fire(argilla_server: Any) -> None:
    """The launcher skips building record events nobody listens to; a configured webhook still gets them."""
    import http.server
    import threading

    received: list[dict[str, Any]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    creds = ArgillaHome(argilla_server.home).credentials()
    assert creds is not None
    conn = Connection(argilla_server.url, creds.api_key, "local")
    http_client = conn.client().api.http_client
    hook = http_client.post(
        "/api/v1/webhooks",
        json={"url": f"http://127.0.0.1:{server.server_port}/hook", "events": ["record.created"]},
    )
    assert hook.status_code == 201, hook.text
    try:
        push(conn, _rows("webhook"), "jobs-webhook", AnnotationSpec())
        deadline = time.monotonic() + 30
        while len(received) < 2:
            assert time.monotonic() < deadline, f"webhook got {len(received)} of 2 record.created events"
            time.sleep(0.2)
        assert {e["type"] for e in received} == {"record.created"}
    finally:
        http_client.delete(f"/api/v1/webhooks/{hook.json()['id']}")
        server.shutdown()
