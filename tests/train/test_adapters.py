"""Adapters: QLoRA's 4-bit weights stay trainable after an inference pass on CPU."""

from __future__ import annotations

import pytest
import torch

from schemas.train_recipe import AdapterSpec
from train.adapters import apply_adapter, quantization_config, unpack_cpu_4bit_weights

IDS = torch.tensor([[5, 17, 42, 99, 7, 8]])


def _qlora(tiny_model, wrap: bool = True):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from train.adapters import lora_config

    spec = AdapterSpec(type="qlora", r=4, init="gaussian", dropout=0.0)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(
        tiny_model, quantization_config=quantization_config(spec, "float32"), dtype=torch.float32
    )
    torch.manual_seed(0)
    # wrap=False: plain peft, as without train.adapters (bitsandbytes' CPU inference repacking left on)
    if not wrap:
        return get_peft_model(base, lora_config(spec, "causal"))
    return apply_adapter(base, spec, "causal", False, None)


def _grads_after_reference_pass(model):
    model.eval()
    with torch.no_grad():  # what DPO/KTO's reference pass does before training
        model(IDS)
    model.train()
    model.zero_grad()
    model(IDS, labels=IDS).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _fresh_grads(model):
    model.train()
    model(IDS, labels=IDS).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _max_diff(a, b):
    return max((a[n] - b[n]).abs().max().item() for n in a)


def test_reference_pass_leaves_qlora_gradients_exact(tiny_model):
    if not (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
        pytest.skip("bitsandbytes repacks 4-bit weights for inference only on CPUs with AVX512-BF16")
    expected = _fresh_grads(_qlora(tiny_model))

    # the failure this guards against: plain peft + bitsandbytes, gradients far off after an eval pass
    assert _max_diff(_grads_after_reference_pass(_qlora(tiny_model, wrap=False)), expected) > 0.1

    ours = _qlora(tiny_model)
    got = _grads_after_reference_pass(ours)
    assert unpack_cpu_4bit_weights(ours) == 0  # nothing was repacked
    assert _max_diff(got, expected) == 0.0
