"""locate_trained/load_trained on a real tiny model folder and on a peft adapter folder."""

from __future__ import annotations

from pathlib import Path

import torch

from curate.models.trained import find_run, load_trained, locate_trained


def test_plain_folder_loads_in_eval_mode(tiny_lm: Path) -> None:
    src = locate_trained(str(tiny_lm))
    assert src.adapter is None and src.manifest is None and src.method is None
    model, tok = load_trained(src, device="cpu")
    assert not model.training and tok.pad_token_id is not None
    ids = tok("hello world", return_tensors="pt").input_ids
    with torch.no_grad():
        assert model(ids).logits.shape[:2] == ids.shape


def test_adapter_folder_applies_its_weights(tiny_lm: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(tiny_lm)
    peft = get_peft_model(
        base, LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    )
    peft.save_pretrained(tmp_path / "adapter")
    AutoTokenizer.from_pretrained(tiny_lm).save_pretrained(tmp_path / "adapter")
    src = locate_trained(tmp_path / "adapter")
    assert src.adapter == tmp_path / "adapter" and src.adapter_task == "CAUSAL_LM"
    model, tok = load_trained(src, device="cpu")
    plain, _ = load_trained(locate_trained(str(tiny_lm)), device="cpu")
    ids = tok("hello world", return_tensors="pt").input_ids
    with torch.no_grad():
        assert not torch.allclose(model(ids).logits, plain(ids).logits)  # the adapter is really on


def test_unknown_run_is_none(tmp_path: Path) -> None:
    assert find_run("nothing", tmp_path) is None
