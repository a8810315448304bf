"""`curate advise`: the decision guide's recommendations, and the recipe it writes passes `curate train
--check` and `--dry-run` on a real (tiny) model and dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from train.advise import Situation, advise
from train.estimate_table import model_configs
from train.memory import shape_from_config

SEVEN_B = shape_from_config(model_configs("llama-7b")[0][1])


@pytest.mark.parametrize(
    ("situation", "method", "adapter", "reason"),
    [
        (Situation(instruction_pairs=20), "prompting", "none", "too few to fine-tune"),
        (Situation(instruction_pairs=5000, gpu_memory_gb=24), "sft", "lora", "LoRA fits"),
        (Situation(instruction_pairs=5000, gpu_memory_gb=12), "sft", "qlora", "QLoRA's 4-bit base does"),
        (
            Situation(instruction_pairs=50_000, gpu_memory_gb=640, budget="high"),
            "sft",
            "none",
            "full fine-tuning fits",
        ),
        (Situation(preference_pairs=3000, instruction_pairs=3000, gpu_memory_gb=24), "dpo", "lora", "DPO optimises"),
        (Situation(unpaired_labels=800, gpu_memory_gb=24), "kto", "lora", "KTO learns"),
        (Situation(instruction_pairs=5000, gpu_memory_gb=4), "sft", "qlora", "smaller model or more GPUs"),
    ],
)
def test_decision_guide(situation, method, adapter, reason):
    a = advise(situation, shape=SEVEN_B)
    assert (a.method, a.adapter) == (method, adapter)
    assert any(reason in r for r in a.reasons), a.reasons
    assert (a.recipe_yaml is None) == (method == "prompting")


def test_reward_model_and_high_budget_point_to_online_rl():
    a = advise(Situation(preference_pairs=500, reward_model="rm@champion", gpu_memory_gb=80, budget="high"), SEVEN_B)
    assert "online RL" in a.reasons[0]
    assert a.method in ("grpo", "dpo")  # grpo where the online RL methods are installed


def _curate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    cmd = [str(Path(sys.executable).with_name("curate")), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_written_recipe_passes_check_and_dry_run(tiny_model, tiny_store, tmp_path):
    flags = ["--preference-pairs", "500", "--model", str(tiny_model), "--dataset", "pairs@latest"]
    r = _curate(
        "advise", *flags, "--store", str(tiny_store), "--max-length", "64", "--out", "dpo.yaml", "--json", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["method"] == "dpo" and out["written"] == "dpo.yaml" and out["memory_gb"]["lora"] > 0
    assert _curate("train", "dpo.yaml", "--check", cwd=tmp_path).returncode == 0
    r = _curate("train", "dpo.yaml", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "memory" in r.stdout and "dry run: pre-flight passed" in r.stdout


def test_bad_budget_exits_2(tmp_path):
    r = _curate("advise", "--budget", "huge", "--instruction-pairs", "10", cwd=tmp_path)
    assert r.returncode == 2 and "--budget" in r.stderr
