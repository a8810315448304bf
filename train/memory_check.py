"""The pre-flight memory estimate of a prepared run: model shapes from configs (no weights load),
the frozen models it holds, the steps it takes, and the formula of :mod:`train.memory`.

Input: a :class:`train.common.Setup`. Output: the ``memory`` block of the pre-flight report and the
manifest (estimate, device, whether it fits). Lives apart from :mod:`train.common` because it reads
the online-RL pieces (:mod:`train.online`), which build on :mod:`train.common`.

Example:
    >>> # memory_check(prepare(load_train_recipe_file("recipes/train/quickstart_sft.yaml")))["estimate_bytes"]
"""

from __future__ import annotations

from typing import Any

from curate.models.source import ModelError, resolve_source
from train.common import Setup


def memory_check(setup: Setup, seq: int | None = None, distinct_lengths: int | None = None) -> dict[str, Any]:
    """The memory estimate for this recipe on this device (reads model configs only, no weights).

    ``seq``: tokens per padded row (default ``training.max_length``; pre-flight passes the longest
    example); online RL: the longest prompt plus ``max_completion_length``. ``distinct_lengths``: distinct example
    lengths (pre-flight's), which bound the batch shapes QLoRA builds kernels for on CPU.
    """
    from transformers import AutoConfig

    from train.memory import device_memory, estimate_for_recipe, shape_from_config

    r = setup.recipe
    config = AutoConfig.from_pretrained(setup.source.folder)
    shape = shape_from_config(config)
    seq = seq or r.training.max_length
    online = r.method in ("rloo", "grpo")
    if online:  # the policy trains on prompt + completion
        from train.online import longest_prompt

        seq = longest_prompt(setup.train_dataset, setup.kind, setup.tokenizer) + r.method_spec().max_completion_length
    # weights load in fp32 except 16-bit LoRA on GPU (see build_model); QLoRA computes in the run's dtype
    lora_gpu = r.adapter.type in ("lora", "dora") and setup.defaults.device == "cuda"
    dtype_bytes = 2 if setup.defaults.precision in ("bf16", "fp16") and lora_gpu else 4
    act_bytes = 2 if setup.defaults.precision in ("bf16", "fp16") else 4
    ckpt = setup.defaults.gradient_checkpointing
    frozen = frozen_models(setup, shape.params * dtype_bytes)
    est = estimate_for_recipe(
        shape,
        r,
        dtype_bytes,
        seq,
        ckpt,
        act_bytes,
        setup.defaults.device,
        steps=planned_steps(setup),
        frozen_bytes=sum(frozen.values()),
        distinct_lengths=distinct_lengths,
        checkpoint_bytes=_dtype_bytes(config),
    )
    name, total = device_memory(setup.defaults.device)
    return {
        "estimate": est.as_dict(),
        "estimate_bytes": est.total,
        "seq": seq,
        "device": name,
        "device_bytes": total,
        "fits": est.total <= total,
        "params": shape.params,
        "frozen": {k: round(v / 2**30, 6) for k, v in frozen.items()},
    }


def planned_steps(setup: Setup) -> int:
    """Optimizer steps the run will take: ``max_steps``, else epochs over the training rows (one device)."""
    import math

    t = setup.recipe.training
    if t.max_steps > 0:
        return t.max_steps
    rows = len(setup.train_dataset) if setup.train_dataset is not None else 0
    return max(math.ceil(math.ceil(rows / (t.batch_size * t.grad_accum)) * t.epochs), 1)


def frozen_models(setup: Setup, policy_bytes: int) -> dict[str, int]:
    """Bytes of the models a run holds besides the one it trains (configs only, no weights load).

    - ``reference``: DPO/KTO with ``reference.model`` keep it loaded for the whole run (cached log-probs or
      not); without one, TRL precomputes the reference log-probs with the policy itself.
    - ``reward_model``: RLOO/GRPO's classifier (fp32 on CPU, bf16 on GPU; see load_reward_model).
    - ``reference_policy``: RLOO/GRPO with beta > 0 and no adapter load a second copy of the policy (with an
      adapter, TRL disables it instead). TRL's default beta: RLOO 0.05, GRPO 0.
    """
    from transformers import AutoConfig

    from train.memory import shape_from_config

    r = setup.recipe
    out: dict[str, int] = {}
    if r.method in ("dpo", "kto") and r.reference.model:
        folder = resolve_source(r.reference.model).folder
        cfg = AutoConfig.from_pretrained(folder)
        out["reference"] = shape_from_config(cfg).params * _dtype_bytes(cfg)
    if r.method in ("rloo", "grpo"):
        from train.online import resolve_reward_model

        spec = r.method_spec()
        shape = None
        if spec.reward_model:
            try:
                src = resolve_reward_model(spec.reward_model, r.output.dir, f"{r.method}.reward_model")
                shape = shape_from_config(AutoConfig.from_pretrained(resolve_source(str(src.model)).folder))
            except (ModelError, ValueError, OSError):
                pass  # pre-flight's reward check reports it
        if shape is not None:
            head = shape.embeddings - shape.vocab * shape.hidden  # the LM head, replaced by a one-output score
            out["reward_model"] = (shape.params - head + shape.hidden) * (2 if setup.defaults.device == "cuda" else 4)
        beta = spec.beta if spec.beta is not None else (0.05 if r.method == "rloo" else 0.0)
        if beta > 0 and r.adapter.type in ("none", "freeze"):
            out["reference_policy"] = policy_bytes
    return out


def _dtype_bytes(config: Any) -> int:
    """Bytes per weight of a checkpoint as its config records it (fp32 when unrecorded)."""
    dtype = str(getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32")
    return 2 if dtype.removeprefix("torch.") in ("bfloat16", "float16") else 4
