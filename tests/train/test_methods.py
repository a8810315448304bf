"""Each method x {LoRA, QLoRA (4-bit NF4 on CPU), DoRA} trains a few real TRL steps on a tiny model.

Asserts: every trainable tensor changed and every frozen one did not; the loss is finite; the saved
adapter reloads onto a freshly loaded base and gives the same logits as the trained model.
"""

from __future__ import annotations

import math

import pytest
import torch

from train.common import build_model, prepare
from train.run import entry_point, preflight

METHODS = ["sft", "reward", "dpo", "kto"]
ADAPTERS = ["lora", "qlora", "dora"]


def _snapshot(model: torch.nn.Module) -> dict[str, tuple[bool, torch.Tensor]]:
    return {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}


def _reload(result, setup) -> torch.nn.Module:
    from peft import PeftModel

    from curate.models.source import load_model
    from train.adapters import quantization_config

    quant = quantization_config(setup.recipe.adapter, setup.defaults.torch_dtype)
    base = load_model(
        setup.source,
        task=result.task,
        quantization=quant,
        dtype=torch.float32,
        pad_token_id=setup.tokenizer.pad_token_id,
    )
    return PeftModel.from_pretrained(base, result.output_dir).eval()


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("method", METHODS)
def test_method_adapter_trains_and_reloads(method, adapter, train_doc, tmp_path):
    doc = train_doc(method, adapter)
    setup = prepare(doc, tmp_path / "run")
    assert preflight(setup).ok
    # the entry point builds the same model from the same seed: this is its starting point
    initial = _snapshot(build_model(setup, task="seq_cls" if method == "reward" else "causal")[0])

    result = entry_point(method).train(setup)

    assert math.isfinite(result.metrics["train_loss"])
    trained = result.trainer.accelerator.unwrap_model(result.trainer.model)
    after = dict(trained.named_parameters())
    # DPO/KTO add a frozen "ref" copy of the starting adapter (their reference); it must stay as it started
    ref_copy = {n: p for n, p in after.items() if ".ref." in n}
    for n, p in ref_copy.items():
        assert not p.requires_grad and torch.equal(p.detach(), initial[n.replace(".ref.", ".default.")][1])
    after = {n: p for n, p in after.items() if n not in ref_copy}
    assert set(after) == set(initial)
    trainable = [n for n, (grad, _) in initial.items() if grad]
    frozen = [n for n, (grad, _) in initial.items() if not grad]
    assert trainable and frozen
    # TRL's SFT casts QLoRA adapter weights to bf16 (QLoRA paper); compare in the trained dtype
    unchanged = [n for n in trainable if torch.equal(after[n].detach(), initial[n][1].to(after[n].dtype))]
    assert not unchanged, f"trainable tensors that did not move: {unchanged[:5]}"
    moved = [n for n in frozen if not torch.equal(after[n].detach(), initial[n][1])]
    assert not moved, f"frozen tensors that changed: {moved[:5]}"

    ids = setup.tokenizer("What color is the sky?", return_tensors="pt")
    trained.eval()
    reloaded = _reload(result, setup)
    saved = dict(reloaded.named_parameters())
    for name in trainable:  # every trained value comes back exactly (peft loads bf16 values into fp32)
        torch.testing.assert_close(saved[name].float(), after[name].float(), rtol=0, atol=0)
    with torch.no_grad():
        expected = trained(**ids).logits
        got = reloaded(**ids).logits
    # a QLoRA adapter trained by SFT computes in bf16 (TRL casts it), the reloaded one in fp32: ~1e-3 apart
    atol = 3e-3 if adapter == "qlora" else 1e-5
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=atol)


def test_full_and_freeze_tuning(train_doc, tmp_path):
    """adapter none trains every weight; freeze trains exactly the last N layers."""
    doc = train_doc("sft", "freeze", adapter_extra={"freeze_last_n": 1})
    setup = prepare(doc, tmp_path / "run")
    result = entry_point("sft").train(setup)
    model = result.trainer.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("model.layers.1.") for n in trainable)
    assert (result.output_dir / "config.json").exists() and result.output_kind == "model"


def test_orpo_and_cpo_run(train_doc, tmp_path):
    for method in ("orpo", "cpo"):
        setup = prepare(train_doc(method, "lora"), tmp_path / method)
        result = entry_point(method).train(setup)
        assert math.isfinite(result.metrics["train_loss"])
        assert (result.output_dir / "adapter_config.json").exists()


def test_loraplus_and_pissa(train_doc, tmp_path):
    """LoRA+ builds its own optimizer (B at ratio x lr); a PiSSA adapter is saved converted to plain LoRA."""
    setup = prepare(train_doc("sft", "lora", adapter_extra={"loraplus_lr_ratio": 16}), tmp_path / "plus")
    _, (optimizer, _) = build_model(setup, lr=1e-3)
    assert sorted({g["lr"] for g in optimizer.param_groups if g["params"]}) == [1e-3, 16e-3]

    setup = prepare(train_doc("sft", "lora", adapter_extra={"init": "pissa"}), tmp_path / "pissa")
    result = entry_point("sft").train(setup)
    reloaded = _reload(result, setup)
    ids = setup.tokenizer("The sky is blue.", return_tensors="pt")
    # the converted adapter applies to the original base weights and reproduces the trained model
    trained = result.trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**ids).logits, trained(**ids).logits, rtol=1e-3, atol=1e-4)


def test_sft_packing(train_doc, tmp_path):
    """Packing (BFD) puts several short examples in one sequence: fewer, fuller rows than examples."""
    setup = prepare(train_doc("sft", training={"packing": True}), tmp_path / "run")
    result = entry_point("sft").train(setup)
    assert math.isfinite(result.metrics["train_loss"])
    rows = result.trainer.train_dataset
    assert len(rows) < len(setup.train_dataset)
    assert max(len(r) for r in rows["input_ids"]) > 30  # one packed row holds more than one ~15-token example
