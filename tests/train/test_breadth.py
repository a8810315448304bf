"""Prefix tuning, prompt tuning, IA3 (PEFT) and the GaLore / BAdam optimizers train real TRL steps on a tiny model.

Asserts per method: exactly the tensors that should learn moved (and nothing else), the loss is
finite, and the saved output reloads onto a fresh base to the same logits. GaLore additionally: every
projected weight's update has rank <= optimizer.rank while unprojected weights move at full rank.
BAdam: exactly one decoder layer moved within one block period.
"""

from __future__ import annotations

import math

import pytest
import torch

from train.common import build_model, prepare
from train.run import entry_point, preflight

PEFT_KINDS = {
    "prefix": {"num_virtual_tokens": 4},
    "prompt": {"num_virtual_tokens": 4},
    "ia3": {},
}


def _snapshot(model: torch.nn.Module) -> dict[str, tuple[bool, torch.Tensor]]:
    return {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}


def _train(train_doc, tmp_path, method: str, adapter: str, **kw):
    doc = train_doc(method, adapter, **kw)
    setup = prepare(doc, tmp_path / f"run-{method}-{adapter}")
    assert preflight(setup).ok
    initial = _snapshot(build_model(setup, task="causal")[0])  # same seed: the entry point's starting point
    result = entry_point(method).train(setup)
    assert math.isfinite(result.metrics["train_loss"])
    model = result.trainer.accelerator.unwrap_model(result.trainer.model)
    return setup, result, initial, model


def _reload(setup, result) -> torch.nn.Module:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from curate.models.source import load_model

    if result.output_kind == "model":
        return AutoModelForCausalLM.from_pretrained(result.output_dir, dtype=torch.float32).eval()
    base = load_model(setup.source, task="causal", dtype=torch.float32, pad_token_id=setup.tokenizer.pad_token_id)
    return PeftModel.from_pretrained(base, result.output_dir).eval()


def _same_outputs(setup, result, model) -> None:
    ids = setup.tokenizer(["What color is the sky?"], return_tensors="pt")
    model.eval()
    reloaded = _reload(setup, result)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**ids).logits, model(**ids).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["sft", "dpo"])
@pytest.mark.parametrize("adapter", list(PEFT_KINDS))
def test_peft_kinds_train_only_their_parameters_and_reload(adapter, method, train_doc, tmp_path):
    setup, result, initial, model = _train(
        train_doc, tmp_path, method, adapter, adapter_extra=PEFT_KINDS[adapter], training={"learning_rate": 0.05}
    )
    after = {n: p for n, p in model.named_parameters() if ".ref." not in n and not n.endswith(".ref")}
    assert set(after) == set(initial)
    trainable = [n for n, (grad, _) in initial.items() if grad]
    frozen = [n for n, (grad, _) in initial.items() if not grad]
    marker = {"prefix": "prompt_encoder", "prompt": "prompt_encoder", "ia3": "ia3_l"}[adapter]
    assert trainable and all(marker in n for n in trainable), trainable
    assert not [n for n in trainable if torch.equal(after[n].detach(), initial[n][1])], "a trainable tensor stayed"
    assert not [n for n in frozen if not torch.equal(after[n].detach(), initial[n][1])], "a frozen tensor moved"
    assert result.output_kind == "adapter" and (result.output_dir / "adapter_config.json").exists()
    _same_outputs(setup, result, model)


def test_galore_projects_target_updates_to_low_rank(train_doc, tmp_path):
    rank = 4
    extra = (
        f"optimizer: {{type: galore_adamw, rank: {rank}, update_proj_gap: 100, scale: 1.0, target_modules: [attn]}}\n"
    )
    setup, result, initial, model = _train(train_doc, tmp_path, "sft", "none", extra=extra)
    optimizer = result.trainer.optimizer.optimizer
    assert type(optimizer).__module__.startswith("galore_torch")
    assert [g["rank"] for g in optimizer.param_groups if "rank" in g] == [rank]
    after = dict(model.named_parameters())
    deltas = {n: (after[n].detach() - initial[n][1]) for n in initial}
    assert all(d.abs().max() > 0 for d in deltas.values()), "GaLore trains every parameter"
    projected = [n for n in deltas if "self_attn" in n and n.endswith("proj.weight")]
    plain = [n for n in deltas if "mlp" in n and n.endswith("proj.weight")]
    assert projected and plain
    for n in projected:
        assert torch.linalg.matrix_rank(deltas[n]).item() <= rank, n
    assert all(torch.linalg.matrix_rank(deltas[n]).item() > rank for n in plain)
    assert result.output_kind == "model"
    _same_outputs(setup, result, model)


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_badam_trains_one_block_at_a_time(method, train_doc, tmp_path):
    # BAdam switches after step K-1 first (its counter starts at 0): 3 steps stay on one block with K=4
    extra = "optimizer: {type: badam, switch_block_every: 4}\n"
    setup, result, initial, model = _train(train_doc, tmp_path, method, "none", extra=extra)
    after = dict(model.named_parameters())
    moved = {n for n in initial if not torch.equal(after[n].detach(), initial[n][1])}
    layers = {n.split(".")[2] for n in moved if n.startswith("model.layers.")}
    assert len(layers) == 1, moved
    block = f"model.layers.{next(iter(layers))}."
    assert moved == {n for n in initial if n.startswith(block)}, "exactly the active block moved"
    assert result.output_kind == "model"
    _same_outputs(setup, result, model)
