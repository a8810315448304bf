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

Beyond the four terms, what a run really holds (each measured, README "Memory: estimated and measured"):

- **Frozen models** (``frozen``): a separate DPO/KTO reference (``reference.model``, resident for the whole
  run, cached log-probs or not), the RLOO/GRPO reward model, and the RLOO/GRPO reference copy of a
  fully trained policy (beta > 0; with an adapter TRL disables it instead).
- **BAdam** trains one decoder layer at a time: layers below the active one keep no activations, so the
  peak is set by the lowest layer the run activates (:func:`badam_lowest_block`: the default descending
  order starts at the top layer; a short run never reaches layer 0).
- **QLoRA**: only the decoder's linear layers are 4-bit (embeddings, head and norms stay in the compute
  dtype, a tied head counted once); TRL casts the adapter (and so its gradients and Adam states) to
  bf16. On CPU two runtime terms show in resident memory: the full-precision checkpoint the 4-bit
  weights were quantized from stays memory-mapped (embeddings and norms are views into it), and every
  new padded batch length builds new oneDNN bf16 matmul kernels for the bf16 adapters (~10 MiB each).
- **Online RL** (RLOO/GRPO): the policy trains on prompt + completion with logits for the completion
  tokens only; generation (no gradients, a small KV cache) peaks below training.

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
# oneDNN bf16 matmul kernels built per new input shape on CPU (QLoRA's bf16 adapters): ~10 MiB per distinct
# padded length, from 12-130 lengths through LoRA-shaped bf16 layers of the tiny model and of SmolLM2's
# dimensions alike (fp32 builds ~1 MiB); they are kept for the rest of the process.
CPU_BF16_SHAPE_BYTES = 10 * 2**20
# What online RL (RLOO/GRPO) adds on CPU over an SFT run with the same terms, measured on the tiny model
# where the terms are ~1 MiB: generation, sampling and reward scoring (code pages, caches, the reward
# model's loading path); 8-18 MiB over 3 runs each of GRPO (rule reward) and RLOO (reward model).
CPU_ONLINE_RUNTIME_BYTES = 14 * 2**20
QLORA_ADAPTER_BYTES = 2  # TRL casts the trainable adapter weights of a quantized model to bf16


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a model (read from its config; no weights loaded)."""

    params: int
    hidden: int
    layers: int
    heads: int
    vocab: int
    linear_dims: list[tuple[int, int]]  # (in, out) of every linear layer in the blocks, for LoRA sizes
    embedding_params: int | None = None  # input embeddings + LM head, a tied head once (None: 2*vocab*hidden)

    @property
    def embeddings(self) -> int:
        """Parameters outside the decoder blocks' linears that stay unquantized: embeddings and head."""
        return self.embedding_params if self.embedding_params is not None else 2 * self.vocab * self.hidden

    @property
    def layer_params(self) -> int:
        """Parameters of one decoder layer (what BAdam trains at a time)."""
        return (self.params - self.embeddings) // max(self.layers, 1)


@dataclass(frozen=True)
class Estimate:
    """Bytes per component, the total with margin, and the trainable parameter count."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    total: int
    trainable: int
    frozen: int = 0  # other models held during training: a separate reference, a reward model
    runtime: int = 0  # fixed and device-specific terms added after the margin (see the module docstring)

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
    heads = (model.get_input_embeddings(), model.get_output_embeddings())
    outer = {id(m.weight): m.weight.numel() for m in heads if m is not None}  # a tied head once
    return ModelShape(
        params=sum(p.numel() for p in model.parameters()),
        hidden=config.hidden_size,
        layers=config.num_hidden_layers,
        heads=config.num_attention_heads,
        vocab=config.vocab_size,
        linear_dims=dims,
        embedding_params=sum(outer.values()) if outer else None,
    )


def badam_lowest_block(layers: int, switch_mode: str, switch_every: int, steps: int | None) -> int:
    """The lowest decoder layer BAdam trains within ``steps`` optimizer steps (its memory peak: every layer
    above the active one backpropagates, the ones below keep nothing).

    ``descending`` (BAdam's default) starts at the top layer and moves one layer down per switch;
    BAdam switches after the optimizer steps whose count + 1 is a multiple of ``switch_every``, so
    ``steps // switch_every`` switches happen before the last step (one fewer with ``switch_every: 1``).
    ``ascending`` starts at layer 0; ``random`` and unknown step counts: layer 0 (the worst case).

    Example:
        >>> badam_lowest_block(30, "descending", 50, 2), badam_lowest_block(30, "descending", 50, 120)
        (29, 27)
        >>> badam_lowest_block(30, "descending", 1, 10_000), badam_lowest_block(30, "ascending", 50, 2)
        (0, 0)
    """
    if switch_mode != "descending" or not steps or steps < 1:
        return 0
    switches = steps // switch_every - (1 if switch_every == 1 else 0)
    return max(layers - 1 - switches, 0)


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
    badam_block: int = 0,
    frozen_bytes: int = 0,
    logit_tokens: int | None = None,
    adapter_bytes: int = 4,
    mapped_bytes: int = 0,
    batch_shapes: int = 0,
) -> Estimate:
    """Estimate peak training memory in bytes (see the module docstring for the model).

    Args:
        dtype_bytes: bytes per loaded weight (4 fp32, 2 bf16/fp16).
        act_bytes: bytes per activation value (default ``dtype_bytes``; 2 under bf16 autocast).
        optimizer: adamw, galore_* (Adam states of projected matrices at rank ``galore_rank``, plus the
            projections) or
            badam (one decoder layer trainable at a time, with an fp32 copy).
        virtual_tokens: prefix / prompt tuning: virtual tokens added to every row.
        runtime_bytes: fixed framework overhead added after the margin (``CPU_RUNTIME_BYTES`` on CPU).
        badam_block: BAdam: the lowest layer the run trains (:func:`badam_lowest_block`; 0 = worst case).
        frozen_bytes: other models held for the whole run (reference, reward model), in bytes.
        logit_tokens: positions per row whose logits are computed (online RL: the completion; default ``seq``).
        adapter_bytes: bytes per trainable adapter parameter (``QLORA_ADAPTER_BYTES`` under TRL's QLoRA).
        mapped_bytes: checkpoint pages that stay memory-mapped and resident (QLoRA on CPU).
        batch_shapes: distinct padded batch lengths that build bf16 kernels (QLoRA on CPU), each
            ``CPU_BF16_SHAPE_BYTES``.
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
        trainable = shape.layer_params  # one block
    else:
        trainable = p
    peft = adapter in ("lora", "dora", "qlora", "prefix", "prompt", "ia3")
    adapter_weights = trainable * adapter_bytes if peft else 0
    if adapter == "qlora":
        # only the decoder's linears are 4-bit (NF4 ~0.5 byte plus block constants); embeddings, the head
        # (tied: once) and the norms stay in the compute dtype
        quantized = sum(i * o for i, o in shape.linear_dims)
        weights = int(quantized * 0.5 * 1.03) + (p - quantized) * dtype_bytes + adapter_weights
    else:
        weights = p * dtype_bytes + adapter_weights
    if separate_reference:
        weights += p * dtype_bytes
    full = adapter in ("none", "freeze")
    grads = trainable * (dtype_bytes if full else adapter_bytes)
    master = trainable * 4 if dtype_bytes < 4 and full else 0
    if full and optimizer.startswith("galore"):
        projected = sum(i * o for i, o in shape.linear_dims)
        # two Adam moments of each rank-r projected gradient (rank x the longer side); the projection is a
        # slice of the SVD's square factor, which for fp32 weights keeps the whole factor (min side squared)
        # alive (galore_torch returns a view); a 16-bit weight's slice is a cast copy (rank x min side)
        moments = sum(galore_rank * max(i, o) for i, o in shape.linear_dims) * 2 * 4
        factors = sum(min(i, o) * (min(i, o) if dtype_bytes == 4 else galore_rank) for i, o in shape.linear_dims)
        optimizer_bytes = (trainable - projected) * 8 + moments + factors * dtype_bytes + master
    elif full and optimizer == "badam":
        optimizer_bytes = trainable * (8 + 4)  # Adam moments and the fp32 copy of the active block
    else:
        optimizer_bytes = trainable * (2 * (adapter_bytes if peft else 4)) + master
    b = batch * (2 if method in ("dpo", "reward", "orpo", "cpo") else 1)
    s = seq + (virtual_tokens if adapter in ("prefix", "prompt") else 0)
    scores = 5 * shape.heads * s / shape.hidden
    if checkpointing:
        per_token = 2.0 * shape.layers
    elif full and optimizer == "badam":
        # the active layer keeps its linears' inputs, the layers above it only what backward passes through;
        # the layers below run without autograd, one layer's working set at a time (measured: 0.79 -> 1.0)
        kept = min(shape.layers - badam_block + (1 if badam_block else 0), shape.layers)
        per_token = kept * (ACT_FROZEN + scores) + ACT_TRAINED
    else:
        trained_inputs = ACT_TRAINED if full else (ACT_LORA if adapter in ("lora", "dora", "qlora") else 0)
        per_token = shape.layers * (ACT_FROZEN + trained_inputs + scores)
    logits = LOGIT_COPIES * b * (s if logit_tokens is None else logit_tokens) * shape.vocab * 4
    act = int(s * b * shape.hidden * per_token * act_bytes / 2) + logits
    # backward frees activations as it produces gradients, and the previous step's gradients are
    # released (set to None) before the next forward: the two peak at different times
    runtime = runtime_bytes + mapped_bytes + batch_shapes * CPU_BF16_SHAPE_BYTES
    total = int((weights + frozen_bytes + optimizer_bytes + max(grads, act)) * 1.10) + runtime
    return Estimate(weights, grads, optimizer_bytes, act, total, trainable, frozen_bytes, runtime)


def estimate_for_recipe(
    shape: ModelShape,
    recipe: Any,
    dtype_bytes: int,
    seq: int,
    checkpointing: bool,
    act_bytes: int | None = None,
    device: str = "cuda",
    steps: int | None = None,
    frozen_bytes: int = 0,
    distinct_lengths: int | None = None,
    checkpoint_bytes: int = 4,
) -> Estimate:
    """:func:`estimate` with a train recipe's adapter, optimizer, batch and method (``device``: cpu adds
    :data:`CPU_RUNTIME_BYTES`, for online RL :data:`CPU_ONLINE_RUNTIME_BYTES`, and for QLoRA the mapped
    checkpoint and the bf16 kernels).

    Args:
        seq: tokens per padded row (online RL: the longest prompt plus ``max_completion_length``).
        steps: optimizer steps the run takes (BAdam's lowest block; QLoRA's batch lengths on CPU).
        frozen_bytes: other models held during the run (see :func:`train.memory_check.memory_check`).
        distinct_lengths: distinct example lengths in the data (bounds QLoRA's batch lengths on CPU).
        checkpoint_bytes: bytes per weight in the checkpoint file (QLoRA on CPU keeps it mapped).
    """
    a, o = recipe.adapter, recipe.optimizer
    online = recipe.method in ("rloo", "grpo")
    completion = recipe.method_spec().max_completion_length if online else None
    qlora_cpu = a.type == "qlora" and device == "cpu"
    # each forward pass pads to a length; a run sees at most as many lengths as passes or distinct examples
    bounds = [n for n in (steps * recipe.training.grad_accum if steps else None, distinct_lengths) if n]
    shapes = min(bounds) if qlora_cpu and bounds else 0
    badam = o.type == "badam" and a.type == "none"
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
        act_bytes=act_bytes,
        optimizer=o.type,
        galore_rank=o.rank,
        virtual_tokens=a.num_virtual_tokens,
        runtime_bytes=(CPU_RUNTIME_BYTES + (CPU_ONLINE_RUNTIME_BYTES if online else 0)) if device == "cpu" else 0,
        badam_block=badam_lowest_block(shape.layers, o.switch_mode, o.switch_block_every, steps) if badam else 0,
        frozen_bytes=frozen_bytes,
        logit_tokens=completion,
        adapter_bytes=QLORA_ADAPTER_BYTES if a.type == "qlora" else 4,
        mapped_bytes=sum(i * x for i, x in shape.linear_dims) * checkpoint_bytes if qlora_cpu else 0,
        batch_shapes=shapes,
    )


def device_memory(device: str) -> tuple[str, int]:
    """(name, bytes) of the training device: the first GPU's memory, or the machine's RAM on CPU."""
    import os

    if device == "cuda":
        import torch

        props = torch.cuda.get_device_properties(0)
        return props.name, int(props.total_memory)
    return "cpu", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
