"""Smoke test of the AI feedback benchmark: a tiny model, a few prompts, a real ``transformers serve``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_feedback.py"


def test_bench_feedback_smoke() -> None:
    cmd = [sys.executable, str(BENCH), "--model", "tiny", "--prompts", "3", "--repeats", "1"]
    cmd += ["--max-new-tokens", "6", "--judge-max-new-tokens", "2", "--batch-sizes", "2,4", "--concurrency", "1,2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["benchmark"] == "feedback" and out["prompts"] == 3 and out["candidates"] == 6

    gen = out["generation"]
    assert set(gen["candidates_per_s_median"]) == {"naive", "batched_2", "batched_4"}
    naive = gen["candidates_per_s_median"]["naive"]
    for b in ("batched_2", "batched_4"):
        assert gen["ratio_vs_naive"][b] == pytest.approx(gen["candidates_per_s_median"][b] / naive, rel=1e-2)
        assert gen["ratio_vs_naive_cpu_time"][b] > 0
    assert gen["goal_met"] == (gen["best_ratio"] >= gen["goal_ratio"] == 3.0)

    judging = out["judging"]
    assert judging["pairs"] == 3 and judging["judgements_per_s_median"] > 0
    run = judging["runs"][0]
    assert run["failed"] == 0  # in-process log-probs always give a verdict, even from a tiny model
    assert run["requests_per_s"] == pytest.approx(2 * run["judgements_per_s"])

    cache = out["cache"]
    assert cache["cold"]["model_calls"] == 12 == cache["entries"]  # 6 candidates + 3 pairs x 2 orders
    assert cache["warm"]["model_calls"] == 0 and cache["warm"]["cache_hits"] == 12
    assert cache["same_verdicts"] is True
    assert cache["speedup"] == pytest.approx(cache["cold"]["seconds"] / cache["warm"]["seconds"], rel=0.05)

    serve = out["server"]["transformers_serve"]
    for c in ("concurrency_1", "concurrency_2"):
        assert serve[c]["candidates_per_s"] > 0 and serve[c]["judgements_per_s"] > 0
        assert serve[c]["verdicts_confident"] == 0  # transformers serve ignores logprobs (measured)
    assert out["goals_met"] == {"batched_vs_naive_ratio": gen["goal_met"], "warm_cache": cache["goal_met"]}
