"""Memory table for a model: full fine-tuning, LoRA and QLoRA from :func:`train.memory.estimate`, config only.

``curate train --estimate MODEL`` prints it. MODEL is a built-in shape (``llama-7b``, ``llama-13b``,
``llama-70b``, or ``seeds`` for all three: the classic worked examples), a local model folder with a
``config.json``, a ``.gguf`` file or ``package:PKG/FILE`` (its metadata only). No weights are loaded
and no hub is contacted: parameters are counted on PyTorch's meta device.

Assumptions of the table (the usual ones for such tables): 16-bit weights and activations (mixed
precision; full fine-tuning keeps fp32 master weights and AdamW's two fp32 moments, 16 bytes per
parameter in all), batch 1, ``seq`` tokens (default 2048), gradient checkpointing on, LoRA rank 16
on every linear layer, QLoRA in 4-bit NF4.

Example:
    >>> rows = table("llama-7b")
    >>> [(r["model"], r["adapter"], round(r["total_gb"])) for r in rows]
    [('llama-7b', 'full', 119), ('llama-7b', 'lora', 16), ('llama-7b', 'qlora', 6)]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Llama-2 shapes (published model cards' config.json values)
KNOWN: dict[str, dict[str, int]] = {
    "llama-7b": {
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "vocab_size": 32000,
    },
    "llama-13b": {
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "vocab_size": 32000,
    },
    "llama-70b": {
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
    },
}
ALIASES = {"7b": "llama-7b", "13b": "llama-13b", "70b": "llama-70b"}
ADAPTERS = (("full", "none"), ("lora", "lora"), ("qlora", "qlora"))


def model_configs(model: str) -> list[tuple[str, Any]]:
    """(name, transformers config) pairs for ``model`` (see the module docstring); raises ValueError."""
    from transformers import AutoConfig, LlamaConfig

    key = ALIASES.get(model.lower(), model.lower())
    if key == "seeds":
        return [(k, LlamaConfig(**v)) for k, v in KNOWN.items()]
    if key in KNOWN:
        return [(key, LlamaConfig(**KNOWN[key]))]
    from curate.models.source import ModelError, classify_source

    try:
        kind, where = classify_source(model)
    except ModelError as e:
        raise ValueError(f"{e}; or use a built-in shape: {', '.join([*KNOWN, 'seeds'])}") from None
    if kind == "hub":
        raise ValueError(
            "hub ids are not fetched (config only, offline); download the config.json "
            f"to a folder and pass the folder, or use a built-in shape: {', '.join([*KNOWN, 'seeds'])}"
        )
    path = Path(where)
    if kind == "gguf":  # the GGUF header holds the config; no tensors are read
        return [(path.stem, AutoConfig.from_pretrained(path.parent, gguf_file=path.name))]
    return [(path.name, AutoConfig.from_pretrained(path))]


def table(model: str, seq: int = 2048, batch: int = 1, lora_r: int = 16) -> list[dict[str, Any]]:
    """One row per (model, full / lora / qlora): bytes per component and the total, in GB (10^9)."""
    from train.memory import estimate, shape_from_config

    rows = []
    for name, config in model_configs(model):
        shape = shape_from_config(config)
        for label, adapter in ADAPTERS:
            e = estimate(shape, adapter, 2, batch, seq, "sft", True, lora_r, act_bytes=2)
            rows.append(
                {
                    "model": name,
                    "params_b": round(shape.params / 1e9, 3),
                    "adapter": label,
                    "weights_gb": round(e.weights / 1e9, 2),
                    "gradients_gb": round(e.gradients / 1e9, 2),
                    "optimizer_gb": round(e.optimizer / 1e9, 2),
                    "activations_gb": round(e.activations / 1e9, 2),
                    "total_gb": round(e.total / 1e9, 1),
                }
            )
    return rows


def format_table(rows: list[dict[str, Any]], seq: int, batch: int) -> str:
    """Rows as a text table (GB), with the assumptions underneath."""
    width = max(14, *(len(r["model"]) + 2 for r in rows))
    head = (
        f"{'model':<{width}}{'params':>9}  {'method':<7}{'weights':>9}{'grads':>8}{'optim':>8}{'activ':>8}{'total':>9}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['model']:<{width}}{r['params_b']:>8.2f}B  {r['adapter']:<7}"
            f"{r['weights_gb']:>9.1f}{r['gradients_gb']:>8.1f}"
            f"{r['optimizer_gb']:>8.1f}{r['activations_gb']:>8.1f}{r['total_gb']:>8.1f}G"
        )
    lines.append(
        f"GB = 10^9 bytes; 16-bit mixed precision (full: 16 bytes/param with fp32 master + AdamW), batch {batch}, "
        f"{seq} tokens, gradient checkpointing, LoRA r=16 all-linear, QLoRA NF4; +10% overhead margin"
    )
    return "\n".join(lines)
