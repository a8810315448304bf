"""Smoke test of the training benchmark: the tiny model, two steps, checking the JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_bench_train_smoke() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_train.py"),
            "--model",
            "tiny",
            "--steps",
            "2",
            "--repeats",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert out["benchmark"] == "train" and out["steps"] == 2
    ours, trl = out["sft"]["ours"], out["sft"]["trl_defaults"]
    assert ours["tokens"] == trl["tokens"] > 0  # the same work, so tokens/s compare
    assert (ours["bf16"], ours["gradient_checkpointing"]) == (False, False)
    assert (trl["bf16"], trl["gradient_checkpointing"]) == (True, True)
    assert out["sft"]["ratio"] > 0 and out["dpo"]["ratio"] > 0
    assert out["dpo"]["with_cache_first_run"]["ref_cache"] == ["miss:train"]
    assert out["dpo"]["with_cache_second_run"]["ref_cache"] == ["hit:train"]
    assert out["dpo"]["without_cache"]["ref_cache"] == []
