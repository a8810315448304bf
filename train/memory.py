"""The classic training-memory estimate: weights + gradients + optimizer states + activations.

Per parameter (AdamW): weights in the load dtype (4-bit NF4 ~ 0.5 byte plus quantization constants
for QLoRA); gradients and two Adam moments only for *trainable* parameters, plus an fp32 master copy
when weights are 16-bit and fully trained. Activations per layer in the form of Korthikanti et al.
(2022), ``s*b*h*c`` bytes at 16-bit without recomputation, with ``c`` calibrated by measurement for
a frozen base (prompt learning, IA3), LoRA, and trained weights (the constants below), plus the
attention scores ``5*a*s/h``; about ``2*s*b*h`` with gradient checkpointing (only each block's input kept), plus
the logits (``b*s*V`` in fp32, twice: logits and their gradient). Preference methods run chosen and
rejected together (2x the batch). Activations and gradients peak at different times (backward frees
one as it makes the other), so the larger of the two counts. Framework overhead and fragmentation
are covered by a 10% margin (plus a measured fixed term on CPU). It answers "will this fit?" before
loading anything; every run then records the measured peak beside it (:mod:`train.memory_probe`).

Example:
    >>> shape = ModelShape(params=135_000_000, hidden=576, layers=30, heads=9, vocab=49152, linear_dims=[])
    >>> e = estimate(shape, adapter="none", dtype_bytes=4, batch=1, seq=512, method="sft", checkpointing=False)
    >>> round(e.weights / 2**30, 2), e.trainable == shape.params
    (0.5, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Activation bytes per token per hidden unit per layer at 16-bit without recomputation, calibrated on
# CPU runs of SmolLM2-135M (README, "Memory: estimated and measured"); Korthikanti et al.'s 34 assumes
# GPT blocks with dropout and every weight trainable. The attention scores (Korthikanti's 5*a*s/h) are
# kept: with padding masks on CPU, SDPA takes its math path and materializes them.
ACT_FROZEN = 20  # frozen base: norm inputs, q/k/v, attention output, gate/up outputs (what backward needs)
ACT_TRAINED = 11  # + every linear layer's input when its weight trains (full, freeze, GaLore, BAdam)
ACT_LORA = 17  # + LoRA's dropout copy of each adapted layer's input
LOGIT_COPIES = 2  # logits and their gradient, fp32
# What a CPU training process grows by besides the four terms, measured with the tiny model (where the
# terms are ~1 MiB): allocator arenas, autograd and oneDNN workspaces, the tokenized dataset, the
# trainer state; 15-25 MiB in runs of SFT/DPO x LoRA/full/prefix/prompt/IA3/GaLore/BAdam (README,
# "Memory: estimated and measured"). On GPU the CUDA context is outside max_memory_allocated.
CPU_RUNTIME_BYTES = 20 * 2**20


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
    act_bytes: int | None = None,
    optimizer: str = "adamw",
    galore_rank: int = 128,
    virtual_tokens: int = 16,
    runtime_bytes: int = 0,
) -> Estimate:
    """Estimate peak training memory in bytes (see the module docstring for the model).

    Args:
        dtype_bytes: bytes per loaded weight (4 fp32, 2 bf16/fp16).
        act_bytes: bytes per activation value (default ``dtype_bytes``; 2 under bf16 autocast).
        optimizer: adamw, galore_* (Adam states of projected matrices at rank ``galore_rank``) or
            badam (one decoder layer trainable at a time, with an fp32 copy).
        virtual_tokens: prefix / prompt tuning: virtual tokens added to every row.
        runtime_bytes: fixed framework overhead added after the margin (``CPU_RUNTIME_BYTES`` on CPU).
    """
    p = shape.params
    act_bytes = act_bytes or dtype_bytes
    lora = sum(lora_r * (i + o) for i, o in shape.linear_dims)
    if adapter in ("lora", "dora", "qlora"):
        trainable = lora
    elif adapter == "freeze":
        trainable = p * (freeze_last_n or 1) // max(shape.layers, 1)
    elif adapter == "prefix":  # a key and a value vector per layer per virtual token
        trainable = virtual_tokens * 2 * shape.layers * shape.hidden
    elif adapter == "prompt":
        trainable = virtual_tokens * shape.hidden
    elif adapter == "ia3":  # one scale per output (k, v) or input (MLP down) feature: ~1/3 of the outputs
        trainable = sum(o for _, o in shape.linear_dims) // 3
    elif optimizer == "badam":
        trainable = (p - 2 * shape.vocab * shape.hidden) // max(shape.layers, 1)  # one block
    else:
        trainable = p
    adapter_weights = trainable * 4 if adapter in ("lora", "dora", "prefix", "prompt", "ia3") else 0
    if adapter == "qlora":
        embed = shape.vocab * shape.hidden * 2  # embeddings and head stay in the compute dtype
        weights = int((p - embed) * 0.5 * 1.03) + embed * dtype_bytes + lora * 4
    else:
        weights = p * dtype_bytes + adapter_weights
    if separate_reference:
        weights += p * dtype_bytes
    full = adapter in ("none", "freeze")
    grads = trainable * (dtype_bytes if full else 4)
    master = trainable * 4 if dtype_bytes < 4 and full else 0
    if full and optimizer.startswith("galore"):
        projected = sum(i * o for i, o in shape.linear_dims)
        # Adam moments of the rank-r projection plus the projection matrix, per projected matrix
        low_rank = sum(galore_rank * (2 * max(i, o) + min(i, o)) for i, o in shape.linear_dims)
        optimizer_bytes = (trainable - projected + low_rank) * 4 * 2 + master
    elif full and optimizer == "badam":
        optimizer_bytes = trainable * (8 + 4)  # Adam moments and the fp32 copy of the active block
    else:
        optimizer_bytes = trainable * 8 + master
    b = batch * (2 if method in ("dpo", "reward", "orpo", "cpo") else 1)
    s = seq + (virtual_tokens if adapter in ("prefix", "prompt") else 0)
    # BAdam trains one block: the other layers' inputs are not kept (worst case over a run: block 0 active)
    trained_inputs = ACT_TRAINED if full and optimizer != "badam" else 0
    coefficient = ACT_FROZEN + (trained_inputs or (ACT_LORA if adapter in ("lora", "dora", "qlora") else 0))
    scores = 5 * shape.heads * s / shape.hidden
    per_layer = 2 * s * b * shape.hidden if checkpointing else s * b * shape.hidden * (coefficient + scores)
    act = int(per_layer * shape.layers * act_bytes / 2) + LOGIT_COPIES * b * s * shape.vocab * 4
    # backward frees activations as it produces gradients, and the previous step's gradients are
    # released (set to None) before the next forward: the two peak at different times
    total = int((weights + optimizer_bytes + max(grads, act)) * 1.10) + runtime_bytes
    return Estimate(weights, grads, optimizer_bytes, act, total, trainable)


def estimate_for_recipe(
    shape: ModelShape,
    recipe: Any,
    dtype_bytes: int,
    seq: int,
    checkpointing: bool,
    act_bytes: int | None = None,
    device: str = "cuda",
) -> Estimate:
    """:func:`estimate` with a train recipe's adapter, optimizer, batch and method (``device``: cpu adds
    :data:`CPU_RUNTIME_BYTES`)."""
    a, o = recipe.adapter, recipe.optimizer
    return estimate(
        shape,
        a.type,
        dtype_bytes,
        recipe.training.batch_size,
        seq,
        recipe.method,
        checkpointing,
        a.r,
        a.freeze_last_n,
        separate_reference=recipe.reference.model is not None and not recipe.reference.cache,
        act_bytes=act_bytes,
        optimizer=o.type,
        galore_rank=o.rank,
        virtual_tokens=a.num_virtual_tokens,
        runtime_bytes=CPU_RUNTIME_BYTES if device == "cpu" else 0,
    )


def device_memory(device: str) -> tuple[str, int]:
    """(name, bytes) of the training device: the first GPU's memory, or the machine's RAM on CPU."""
    import os

    if device == "cuda":
        import torch

        props = torch.cuda.get_device_properties(0)
        return props.name, int(props.total_memory)
    return "cpu", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
