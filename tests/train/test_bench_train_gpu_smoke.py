"""Smoke tests of the GPU training benchmark where there is no GPU: the skip guard, and the CPU smoke
version (tiny model, LoRA, 2 steps, every run a fresh process) on a ``--data`` folder like the device
run's, checking the JSON it prints and writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real benchmark, not the smoke"),
]

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_train_gpu.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
from train_bench_data import export_datasets  # noqa: E402  (benchmarks/ is not a package)


def _msgs(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``--data`` folder as ``--prepare`` writes it, less the package bundle: the two datasets the
    benchmark trains on, published to a store and exported the way the device run reads them (publishing
    the real demo data with ``curate run`` is covered by the CPU benchmark's smoke test)."""
    import polars as pl

    from curate.store import Store
    from schemas.kinds import MESSAGES

    root = tmp_path_factory.mktemp("bench_gpu")
    n = 8
    sft = pl.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "messages": [_msgs(("user", f"What is {i} plus one?"), ("assistant", f"It is {i + 1}.")) for i in range(n)],
            "split": ["train"] * n,
        },
        schema={"id": pl.String, "messages": MESSAGES, "split": pl.String},
    )
    pref = pl.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "prompt": [_msgs(("user", f"What color is the sky at {i}?")) for i in range(n)],
            "chosen": [_msgs(("assistant", "The sky is blue.")) for _ in range(n)],
            "rejected": [_msgs(("assistant", f"A dog number {i}.")) for i in range(n)],
            "split": ["train"] * n,
        },
        schema={"id": pl.String, "prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "split": pl.String},
    )
    store = Store(root / "store")
    store.publish("quickstart", sft, {"kind": "sft"})
    store.publish("preferences", pref, {"kind": "preference"})
    assert export_datasets(root / "store", root / "prep" / "data") == {"quickstart": n, "preferences": n}
    return root / "prep"


def _run(args: list[str], out_dir: Path, timeout: int) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "OUT": str(out_dir), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout)
    assert json.loads((out_dir / "bench_train_gpu.json").read_text()) == printed  # $OUT gets the same JSON
    return proc, printed


def test_without_cuda_it_says_skipped_and_why(tmp_path: Path) -> None:
    _, out = _run([], tmp_path, 120)
    assert out["benchmark"] == "train_gpu" and out["skipped"] is True
    assert "no CUDA device" in out["reason"] and "--allow-cpu" in out["reason"]
    assert out["probe"]["cuda"] is False and out["probe"]["versions"]["trl"]
    assert "results" not in out


def test_cpu_smoke_runs_ours_and_trl_defaults(prepared: Path, tmp_path: Path) -> None:
    _, out = _run(["--allow-cpu", "--data", str(prepared), "--budget-s", "3000"], tmp_path, 600)
    assert out["skipped"] is False and out["failed_runs"] == 0
    assert (out["device"], out["model"], out["steps"]) == ("cpu", "tiny", 2)
    assert out["rows"] == {"quickstart": 8, "preferences": 8}
    assert (out["precision"], out["attn_implementation"]) == ("bf16", "sdpa")
    assert set(out["results"]) == {"sft_lora", "sft_qlora", "dpo_lora", "dpo_qlora"}
    for method in ("sft", "dpo"):
        cell = out["results"][f"{method}_lora"]
        ours, trl = cell["ours"], cell["trl_defaults"]
        assert ours["tokens"] == trl["tokens"] > 0  # the same work on both sides, so tokens/s compare
        for run in (ours, trl):
            assert run["tokens_per_s"] > 0 and run["tokens_per_s_total"] > 0 and run["peak_memory_mib"] > 0
            assert run["memory_kind"] == "cpu_peak_rss" and run["bf16"] is True
            assert run["attn_implementation"] == "sdpa" and run["loaded_in_4bit"] is False
            assert run["trainable_params"] == ours["trainable_params"] > 0  # the same LoRA config
        assert (ours["gradient_checkpointing"], trl["gradient_checkpointing"]) == (False, True)
        assert all(r > 0 for r in cell["ratios"].values())
        assert cell["ratios"]["tokens_per_s"] == pytest.approx(ours["tokens_per_s"] / trl["tokens_per_s"], abs=1e-3)
        qlora = out["results"][f"{method}_qlora"]
        assert all("needs CUDA" in qlora[side]["skipped"] for side in ("ours", "trl_defaults"))
        assert set(qlora["ratios"].values()) == {None}
    assert out["results"]["dpo_lora"]["ours"]["precompute_ref_log_probs"] is True  # our DPO: reference pass first
    assert out["results"]["dpo_lora"]["trl_defaults"]["precompute_ref_log_probs"] is False
