"""The classic training-memory estimate: weights + gradients + optimizer states + activations.

Per parameter (AdamW): weights in the load dtype (4-bit NF4 ~ 0.5 byte plus quantization constants
for QLoRA); gradients and two Adam moments only for *trainable* parameters, plus an fp32 master copy
when weights are 16-bit and fully trained. Activations per layer follow Korthikanti et al. (2022):
``s*b*h*(34 + 5*a*s/h)`` bytes at 16-bit without recomputation, about ``2*s*b*h`` with gradient
checkpointing (only each block's input kept), plus the logits (``b*s*V`` in fp32, twice: logits and
their gradient). Preference methods run chosen and rejected together (2x the batch). It is an
estimate (framework overhead and fragmentation are covered by a 10% margin), meant to answer
"will this fit?" before loading anything.

Example:
    >>> shape = ModelShape(params=135_000_000, hidden=576, layers=30, heads=9, vocab=49152, linear_dims=[])
    >>> e = estimate(shape, adapter="none", dtype_bytes=4, batch=1, seq=512, method="sft", checkpointing=False)
    >>> round(e.weights / 2**30, 2), e.trainable == shape.params
    (0.5, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a model (read from its config; no weights loaded)."""

    params: int
    hidden: int
    layers: int
    heads: int
    vocab: int
    linear_dims: list[tuple[int, int]]  # (in, out) of every linear layer in the blocks, for LoRA sizes


@dataclass(frozen=True)
class Estimate:
    """Bytes per component, the total with margin, and the trainable parameter count."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    total: int
    trainable: int

    def as_dict(self) -> dict[str, Any]:
        """The estimate in GiB, for reports."""
        return {k: (round(v / 2**30, 6) if k != "trainable" else v) for k, v in asdict(self).items()}


def shape_from_config(config: Any) -> ModelShape:
    """Count parameters of ``config``'s model on the meta device (no memory is allocated)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    dims = [
        (m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and "lm_head" not in name
    ]
    return ModelShape(
        params=sum(p.numel() for p in model.parameters()),
        hidden=config.hidden_size,
        layers=config.num_hidden_layers,
        heads=config.num_attention_heads,
        vocab=config.vocab_size,
        linear_dims=dims,
    )


def estimate(
    shape: ModelShape,
    adapter: str,
    dtype_bytes: int,
    batch: int,
    seq: int,
    method: str,
    checkpointing: bool,
    lora_r: int = 16,
    freeze_last_n: int | None = None,
    separate_reference: bool = False,
) -> Estimate:
    """Estimate peak training memory in bytes (see the module docstring for the model)."""
    p = shape.params
    lora = sum(lora_r * (i + o) for i, o in shape.linear_dims)
    if adapter in ("lora", "dora", "qlora"):
        trainable = lora
    elif adapter == "freeze":
        trainable = p * (freeze_last_n or 1) // max(shape.layers, 1)
    else:
        trainable = p
    if adapter == "qlora":
        embed = shape.vocab * shape.hidden * 2  # embeddings and head stay in the compute dtype
        weights = int((p - embed) * 0.5 * 1.03) + embed * dtype_bytes + lora * 4
    else:
        weights = p * dtype_bytes + (lora * 4 if adapter in ("lora", "dora") else 0)
    if separate_reference:
        weights += p * dtype_bytes
    grads = trainable * (4 if adapter in ("lora", "dora", "qlora") else dtype_bytes)
    master = trainable * 4 if dtype_bytes < 4 and adapter in ("none", "freeze") else 0
    optimizer = trainable * 8 + master
    b = batch * (2 if method in ("dpo", "reward", "orpo", "cpo") else 1)
    per_layer = (
        2 * seq * b * shape.hidden
        if checkpointing
        else seq * b * shape.hidden * (34 + 5 * shape.heads * seq / shape.hidden)
    )
    act = int(per_layer * shape.layers * dtype_bytes / 2) + 2 * b * seq * shape.vocab * 4
    total = int((weights + grads + optimizer + act) * 1.10)
    return Estimate(weights, grads, optimizer, act, total, trainable)


def device_memory(device: str) -> tuple[str, int]:
    """(name, bytes) of the training device: the first GPU's memory, or the machine's RAM on CPU."""
    import os

    if device == "cuda":
        import torch

        props = torch.cuda.get_device_properties(0)
        return props.name, int(props.total_memory)
    return "cpu", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
