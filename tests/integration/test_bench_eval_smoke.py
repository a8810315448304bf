"""benchmarks/bench_eval.py runs end to end on a tiny model and both sides agree pair by pair."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_eval.py"


def test_bench_eval_smoke() -> None:
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "tiny", "--pairs", "12", "--repeats", "1", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["pairs"] == 12 and out["same_pairs_won"] and out["max_abs_logprob_diff"] < 1e-2
    assert out["win_rate"]["baseline"] == out["win_rate"]["batched"]
    assert out["ratio"] > 0 and set(out["pairs_per_s"]) == {"baseline", "batched"}
