"""Smoke test of the ingest benchmark: a tiny run end to end, checking the JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_ingest.py"
KEYS = {
    "benchmark",
    "rows",
    "rows_per_second_median",
    "peak_rss_mb_median",
    "runs",
    "goal_rows_per_second",
    "goal_peak_rss_mb",
    "ratio_vs_goal",
    "meets_goal",
    "threads",
}


def test_bench_ingest_smoke(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "2000", "--repeats", "1", "--cache-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out.keys() >= KEYS
    assert out["benchmark"] == "ingest_alpaca_to_messages"
    assert out["rows"] == 2000
    assert out["threads"] == 1
    assert out["goal_rows_per_second"] == 100_000 and out["goal_peak_rss_mb"] == 2048
    assert isinstance(out["meets_goal"], bool)
    (run,) = out["runs"]
    assert run["input_rows"] == run["output_records"] == 2000
    assert run["quarantined"] == 0 and run["balanced"]
    assert out["rows_per_second_median"] > 0 and out["peak_rss_mb_median"] > 0
    assert out["ratio_vs_goal"] == pytest.approx(out["rows_per_second_median"] / 100_000, abs=1e-3)
