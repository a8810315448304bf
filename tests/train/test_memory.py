"""The memory estimate orders full > LoRA > QLoRA and shrinks with gradient checkpointing."""

from __future__ import annotations

from transformers import LlamaConfig

from train.memory import estimate, shape_from_config

# Llama-2-7B's shape: the classic worked example (16 bytes/param full mixed-precision AdamW ~ 100+ GiB)
LLAMA7B = LlamaConfig(
    hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, vocab_size=32000
)


def test_shape_counts_parameters_without_allocating():
    shape = shape_from_config(LLAMA7B)
    assert 6.6e9 < shape.params < 6.8e9
    assert len(shape.linear_dims) == 32 * 7


def test_adapters_order_and_checkpointing():
    shape = shape_from_config(LLAMA7B)
    kw = {"dtype_bytes": 2, "batch": 1, "seq": 2048, "method": "sft", "checkpointing": True}
    full, lora, qlora = (estimate(shape, a, **kw) for a in ("none", "lora", "qlora"))
    gib = 2**30
    assert full.total > 100 * gib  # weights 2 + grads 2 + fp32 master 4 + Adam 8 bytes per parameter
    assert lora.total < full.total / 4 and qlora.total < lora.total
    assert 3 * gib < qlora.weights < 5 * gib  # ~0.5 byte per parameter plus 16-bit embeddings
    assert lora.trainable < 0.01 * shape.params
    no_ckpt = estimate(shape, "lora", **{**kw, "checkpointing": False})
    assert no_ckpt.activations > 5 * lora.activations
    dpo = estimate(shape, "lora", **{**kw, "method": "dpo"})
    assert dpo.activations > 1.9 * lora.activations  # chosen and rejected in one batch
