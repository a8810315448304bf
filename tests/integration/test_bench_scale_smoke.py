"""Smoke test of the scale benchmark: a few thousand rows through one real ``curate run --local``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_scale.py"


def test_bench_scale_smoke(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH), "--rows", "3000", "--files", "2", "--cache-dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["benchmark"] == "scale" and out["rows"] == 3000
    s = out["summary"]
    assert s["balanced"] and s["input_rows"] == 3000
    assert s["kept"] + s["duplicates"] + s["dropped"] + s["quarantined"] == 3000
    # planted duplicates are found (a planted copy may itself be copied, so counts are close, not equal)
    planted = out["planted"]
    exact = planted["exact_verbatim"] + planted["exact_cosmetic"]
    assert s["duplicates_by_reason"]["exact_dedup"] >= exact * 0.9
    assert s["duplicates_by_reason"]["near_dedup"] >= planted["near"] * 0.8
    assert out["published"]["ref"] == "scale@1"
    assert set(out["phases"]) == {"ingest", "sketch", "decide", "finish", "assemble", "publish"}
    assert all(p["seconds"] >= 0 and p["process_peak_after_mb"] > 0 for p in out["phases"].values())
    assert out["phases"]["ingest"]["process_peak_after_mb"] <= out["phases"]["publish"]["process_peak_after_mb"]
    assert out["peak_rss_mb"] > 0 and out["wall_s"] > 0
    assert list(tmp_path.glob("scale_3000_*/part-*.jsonl"))  # the generated input is cached
