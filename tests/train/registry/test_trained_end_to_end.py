"""Real tiny models trained by `curate train` (the CLI, 2 steps each) become chat-sft@1 and @2; the gate
promotes on saved evaluations; load_model and export give the champion back as adapter and merged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from train.registry import list_versions, load_model, read_alias, resolve

from .conftest import SAFE_FIGURES, save_eval

pytestmark = pytest.mark.integration

CURATE = Path(sys.executable).with_name("curate")
REPO = Path(__file__).resolve().parents[3]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([str(CURATE), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_curate_train_registers_versions_and_the_champion_loads(tiny_model, tiny_store, tmp_path):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text(
        f"name: chat-sft\nmodel: {{base: {tiny_model}}}\ndataset: {{ref: chat@latest, store: {tiny_store}}}\n"
        "method: sft\nadapter: {type: lora, r: 4, alpha: 8, target_modules: [q_proj, v_proj]}\n"
        "training: {max_steps: 2, batch_size: 2, max_length: 64}\noutput: {dir: models}\n"
    )
    first = cli("train", "sft.yaml", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "registered: chat-sft@1" in first.stdout
    second = json.loads(cli("train", "sft.yaml", "--json", cwd=tmp_path).stdout)
    assert second["version"] == "chat-sft@2"
    root = tmp_path / "models"
    assert [v.ref for v in list_versions(root, "chat-sft")] == ["chat-sft@1", "chat-sft@2"]
    v1, v2 = resolve("chat-sft@1", root), resolve("chat-sft@2", root)
    assert v2 == (tmp_path / second["run_dir"]).resolve() and v1 != v2

    gate = REPO / "recipes" / "gates" / "default.yaml"
    save_eval(v1, {**SAFE_FIGURES, "heldout_loss": (2.0, 1.9, 2.1, False)})
    promoted = cli("models", "promote", "chat-sft@1", "--gate", str(gate), "--root", "models", cwd=tmp_path)
    assert promoted.returncode == 0, promoted.stderr
    save_eval(v2, {**SAFE_FIGURES, "heldout_loss": (1.8, 1.7, 1.9, False)})
    save_eval(v2, {"judge_win_rate": (0.7, 0.6, 0.8, True)}, against="chat-sft@champion")
    promoted = cli("models", "promote", "chat-sft@2", "--gate", str(gate), "--root", "models", cwd=tmp_path)
    assert promoted.returncode == 0, promoted.stderr
    assert "chat-sft@champion -> chat-sft@2 (was chat-sft@1)" in promoted.stdout
    assert read_alias(root, "chat-sft", "champion") == 2

    import torch
    from peft import PeftModel

    model, tok = load_model("chat-sft@champion", root=root, device="cpu")
    assert isinstance(model, PeftModel) and not model.training
    merged, _ = load_model("chat-sft@champion", root=root, merged=True, device="cpu")
    assert not isinstance(merged, PeftModel)
    ids = tok("What is 3 plus one?", return_tensors="pt").input_ids
    with torch.no_grad():  # merging changes the form, not the function
        torch.testing.assert_close(model(ids).logits, merged(ids).logits, atol=1e-4, rtol=1e-4)

    out = cli("models", "export", "chat-sft@champion", "--to", "deploy/adapter", "--root", "models", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    exported = tmp_path / "deploy" / "adapter"
    assert (exported / "adapter" / "adapter_config.json").is_file() and (exported / "README.md").is_file()
    info = json.loads((exported / "registry.json").read_text())
    assert info["version"] == "chat-sft@2" and info["aliases"] == ["champion"] and info["kind"] == "adapter"
    assert json.loads((exported / "manifest.json").read_text())["run_id"] == v2.name

    out = cli("models", "export", "chat-sft@2", "--to", "deploy/merged", "--merged", "--root", "models", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    from transformers import AutoModelForCausalLM

    standalone = AutoModelForCausalLM.from_pretrained(tmp_path / "deploy" / "merged" / "model").eval()
    with torch.no_grad():
        torch.testing.assert_close(standalone(ids).logits, merged(ids).logits, atol=1e-4, rtol=1e-4)
    again = cli("models", "export", "chat-sft@2", "--to", "deploy/merged", "--root", "models", cwd=tmp_path)
    assert again.returncode == 2 and "exists and is not empty" in again.stderr
