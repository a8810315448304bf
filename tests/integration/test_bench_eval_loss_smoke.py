"""Smoke test of the held-out perplexity benchmark: the tiny model, a few rows, checking the JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_bench_eval_loss_smoke() -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_eval_loss.py"), "--model", "tiny", "--rows", "8"]
    proc = subprocess.run([*cmd, "--repeats", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert out["benchmark"] == "eval_loss" and out["rows"] == 8
    assert out["batched"]["tokens"] == out["per_row"]["tokens"] > 0  # the same work
    assert out["same_loss"] and out["ratio"] > 0
