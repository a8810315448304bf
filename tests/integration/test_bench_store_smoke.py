"""Smoke test of the store benchmark: a tiny run end to end, checking the JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_store.py"
FIGURES = {"seconds", "peak_rss_mb", "rows_per_second", "process_wall_s", "cpu_per_wall", "runs"}


def test_bench_store_smoke(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "2000", "--repeats", "1", "--cache-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,  # six measured children; generous for a loaded machine
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["benchmark"] == "store" and out["rows"] == 2000 and out["repeats"] == 1
    assert out["threads"]["POLARS_MAX_THREADS"] == 1
    for step in ("publish", "publish_frame", "publish_records", "publish_records_frame", "load", "read_polars"):
        assert out[step].keys() >= FIGURES | {"cpu_seconds"}, step
        assert out[step]["seconds"] > 0 and out[step]["peak_rss_mb"] > 0 and out[step]["rows_per_second"] > 0
        assert len(out[step]["runs"]) == 1
    assert out["publish"]["rows"] == out["publish_records"]["rows"] == out["read_polars"]["rows"] == 2000
    assert out["publish_records"]["runs"][0]["content_hash"] == out["publish"]["runs"][0]["content_hash"]
    assert out["cpu_ratio"]["publish_records_over_publish_records_frame"] > 0
    assert 1500 < out["load"]["rows"] < 2000  # the train split (default 5% eval)
    assert out["publish"]["table_files"] >= 1 and out["publish"]["table_bytes"] > 0
    assert out["baseline_rss_mb"] > 0
    assert list(tmp_path.glob("store_sft_2000_*.parquet"))  # the generated frame is cached
