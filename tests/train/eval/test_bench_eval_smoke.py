"""Smoke test of the eval benchmark: the tiny model, a few pairs, checking the JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def test_bench_eval_smoke() -> None:
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_eval.py"),
        "--model",
        "tiny",
        "--pairs",
        "4",
        "--chars",
        "80",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert out["benchmark"] == "eval_logprob_win_rate" and out["pairs"] == 4 and out["tokens"] > 0
    assert out["batched"]["win_rate"] == out["per_pair_loop"]["win_rate"]  # the same answer, faster
    assert out["max_abs_logp_diff"] < 1e-2 and out["ratio"] > 0
