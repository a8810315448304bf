"""Smoke test of the filter benchmark: a tiny run end to end, checking the JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curate.filters import all_filters

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_filters.py"


def test_bench_filters_smoke(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH), "--docs", "500", "--repeats", "1", "--cache-dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["benchmark"] == "filters" and out["docs"] == 500 and out["threads"] == 1
    assert set(out["filters"]) == set(all_filters())
    for name, res in out["filters"].items():
        assert res["docs_per_second"] > 0, name
        assert 0 <= res["dropped"] < 500, name
    # the synthetic corpus has defects for every published rule set to find
    for name in ("gopher_quality", "gopher_repetition", "c4", "fineweb", "instruction_defects"):
        assert out["filters"][name]["dropped"] > 0, name
    assert len(list(tmp_path.glob("filters_500_seed0_v*.parquet"))) == 1  # cached for the next run
