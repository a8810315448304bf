"""Smoke test of the flow benchmark: a tiny run end to end, checking the JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_bench_flow_smoke() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_flow.py"), "--rows", "1000", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["benchmark"] == "flow_end_to_end" and out["input_rows"] == 1010
    assert out["same_dataset_everywhere"] is True  # local, flow on 1 or N threads, cold flow: one dataset
    assert set(out["seconds_median"]) == {"local", "flow_1thread", "flow"}
    assert out["overhead_ratio"] == pytest.approx(
        out["seconds_median"]["flow"] / out["seconds_median"]["local"] - 1, abs=1e-3
    )
    fixed = out["seconds_median"]["flow_1thread"] - out["seconds_median"]["local"]
    assert out["fixed_overhead_s"] == pytest.approx(fixed, abs=1e-3)
    # where the time goes: CPU of each run and of the server, each executor's own per-step timers
    assert set(out["cpu_s_median"]) == {"local", "flow_1thread", "flow"}
    assert all(v > 0 for v in out["cpu_s_median"].values())
    steps = out["step_seconds_median"]
    assert set(steps["local"]) <= set(steps["flow_1thread"]) and "ingest" in steps["local"]
    assert all(v >= 0 for v in out["outside_steps_s_median"].values())
