"""What is trained: a (Q)LoRA / DoRA adapter (optionally PiSSA-initialised, LoRA+), prefix tuning, prompt
tuning or IA3 (PEFT), the last N layers, or all (optionally with the GaLore or BAdam optimizer).

The model is wrapped here (not by passing ``peft_config`` to the trainer) so that a LoRA+ optimizer
can be built over the adapter's A and B matrices, and the same wrapping serves every method.

Example:
    >>> from schemas.train_recipe import AdapterSpec
    >>> cfg = lora_config(AdapterSpec(type="dora", r=4), task="causal")
    >>> cfg.use_dora, cfg.r, cfg.task_type
    (True, 4, 'CAUSAL_LM')
    >>> quantization_config(AdapterSpec(type="lora"), "float32") is None
    True
    >>> type(peft_config(AdapterSpec(type="prefix", num_virtual_tokens=8), "causal")).__name__
    'PrefixTuningConfig'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas.train_recipe import AdapterSpec

PISSA_INIT = "pissa_init"
LORA_TYPES = ("lora", "qlora", "dora")
PEFT_TYPES = (*LORA_TYPES, "prefix", "prompt", "ia3")  # saved as a PEFT adapter folder
PROMPT_LEARNING = ("prefix", "prompt")  # virtual tokens, nothing to merge into the weights


def is_peft(spec: AdapterSpec) -> bool:
    """Whether ``spec`` trains a PEFT adapter (saved as adapter/, loaded with ``PeftModel``)."""
    return spec.type in PEFT_TYPES


def lora_config(spec: AdapterSpec, task: str) -> Any:
    """The peft ``LoraConfig`` for ``spec`` (``task``: causal, or seq_cls for reward models)."""
    from peft import LoraConfig

    init: Any = {"default": True, "gaussian": "gaussian", "pissa": "pissa_niter_4"}[spec.init]
    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        use_dora=spec.type == "dora",
        init_lora_weights=init,
        # a reward model's new score head must train too; SEQ_CLS makes peft save it with the adapter
        task_type="SEQ_CLS" if task == "seq_cls" else "CAUSAL_LM",
    )


def peft_config(spec: AdapterSpec, task: str, tokenizer_path: str | None = None) -> Any:
    """The peft config for any adapter type of ``spec`` (LoRA family, prefix, prompt, IA3).

    ``tokenizer_path``: the model folder, needed by prompt tuning started from ``prompt_init_text``.
    """
    if spec.type in LORA_TYPES:
        return lora_config(spec, task)
    from peft import IA3Config, PrefixTuningConfig, PromptTuningConfig

    task_type = "SEQ_CLS" if task == "seq_cls" else "CAUSAL_LM"
    if spec.type == "prefix":
        return PrefixTuningConfig(task_type=task_type, num_virtual_tokens=spec.num_virtual_tokens)
    if spec.type == "prompt":
        text = spec.prompt_init_text
        return PromptTuningConfig(
            task_type=task_type,
            num_virtual_tokens=spec.num_virtual_tokens,
            prompt_tuning_init="TEXT" if text else "RANDOM",
            prompt_tuning_init_text=text,
            tokenizer_name_or_path=tokenizer_path if text else None,
        )
    if spec.type == "ia3":
        default = spec.target_modules == "all-linear" and spec.feedforward_modules is None
        return IA3Config(
            task_type=task_type,
            # peft's per-architecture default (attention k/v, MLP down projection) unless named
            target_modules=None if default else spec.target_modules,
            feedforward_modules=None if default else (spec.feedforward_modules or []),
        )
    raise ValueError(f"adapter.type {spec.type} is not a PEFT adapter")


def quantization_config(spec: AdapterSpec, compute_dtype: str) -> Any:
    """bitsandbytes 4-bit config for ``type: qlora`` (NF4, double quant by default), else ``None``."""
    if spec.type != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    dtype = compute_dtype if spec.quant.compute_dtype == "auto" else spec.quant.compute_dtype
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=spec.quant.quant_type,
        bnb_4bit_use_double_quant=spec.quant.double_quant,
        bnb_4bit_compute_dtype=getattr(torch, dtype),
    )


def apply_adapter(
    model: Any,
    spec: AdapterSpec,
    task: str,
    gradient_checkpointing: bool,
    init_dir: Path | None,
    tokenizer_path: str | None = None,
) -> Any:
    """Wrap or freeze ``model`` as ``spec`` says; returns the model to train.

    Args:
        tokenizer_path: the model folder (prompt tuning from ``prompt_init_text`` tokenizes it).
        init_dir: with PiSSA, where the initial adapter is saved (needed to convert the trained adapter
            back to a plain LoRA that applies to the original base weights).
    """
    if spec.type == "none":
        return model
    if spec.type == "freeze":
        return freeze_all_but_last(model, spec.freeze_last_n or 1)
    from peft import get_peft_model, prepare_model_for_kbit_training

    if spec.type == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
        keep_4bit_trainable(model)
    peft_model = get_peft_model(model, peft_config(spec, task, tokenizer_path))
    if spec.init == "pissa" and init_dir is not None:
        # saved as plain LoRA weights so that loading it later does not redo the SVD
        peft_model.peft_config["default"].init_lora_weights = True
        peft_model.save_pretrained(init_dir)
        peft_model.peft_config["default"].init_lora_weights = "pissa_niter_4"
    return peft_model


def keep_4bit_trainable(model: Any) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for CPU inference; returns the layers switched.

    On CPUs with AVX512-BF16, a ``Linear4bit`` forward in eval mode without gradients (DPO/KTO's
    reference pass runs so, before training) permanently repacks its weight for a fast inference kernel
    that has no autograd support: training afterwards backpropagates through it silently wrong (PyTorch
    only warns that ``bitsandbytes::gemv_4bit`` has no autograd kernel; LoRA gradients are off by O(1)).
    """
    switched = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            switched += 1
    return switched


def unpack_cpu_4bit_weights(model: Any) -> int:
    """Put 4-bit weights that were repacked for CPU inference back in their training layout (a safety net
    behind :func:`keep_4bit_trainable`; the round trip re-quantizes the block scales, so it is close to,
    not exactly, the original). Returns how many were restored."""
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    restored = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)
        if state is not None and getattr(state, "packing_format_for_cpu", False):
            weight.data, weight.quant_state = _convert_weight_packed_for_cpu_inverse(weight.data, state)
            restored += 1
    return restored


def decoder_layers(model: Any) -> Any:
    """The list of transformer blocks of a decoder model (Llama, Qwen, Mistral, GPT-2 style)."""
    for path in ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    raise ValueError("adapter.type freeze: cannot find this model's layers; use type: lora")


def freeze_all_but_last(model: Any, n: int) -> Any:
    """Freeze every parameter except those of the last ``n`` blocks (and a classification head, if any)."""
    layers = decoder_layers(model)
    if n > len(layers):
        raise ValueError(f"adapter.freeze_last_n: the model has {len(layers)} layers; use at most {len(layers)}")
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in list(layers)[-n:]:
        for p in layer.parameters():
            p.requires_grad_(True)
    head = getattr(model, "score", None)
    if head is not None:
        for p in head.parameters():
            p.requires_grad_(True)
    return model


def loraplus_optimizer(model: Any, spec: AdapterSpec, lr: float, weight_decay: float = 0.0) -> Any:
    """A LoRA+ AdamW (B matrices at ``loraplus_lr_ratio`` x the learning rate), or ``None`` without LoRA+."""
    if spec.loraplus_lr_ratio is None:
        return None
    import torch
    from peft.optimizers import create_loraplus_optimizer

    return create_loraplus_optimizer(
        model, torch.optim.AdamW, lr=lr, loraplus_lr_ratio=spec.loraplus_lr_ratio, weight_decay=weight_decay
    )


def save_trained(model: Any, spec: AdapterSpec, out: Path, tokenizer: Any, init_dir: Path | None) -> str:
    """Save what was trained to ``out``; returns ``adapter`` or ``model`` (full / freeze fine-tuning)."""
    kwargs: dict[str, Any] = {}
    if hasattr(model, "peft_config"):
        # DPO/KTO add a frozen "ref" adapter (their reference); only the trained one is the output
        kwargs["selected_adapters"] = ["default"]
    if spec.init == "pissa" and init_dir is not None:
        kwargs["path_initial_model_for_weight_conversion"] = str(init_dir)
    model.save_pretrained(out, **kwargs)
    tokenizer.save_pretrained(out)
    return "adapter" if is_peft(spec) else "model"


def merge_adapter(base_folder: str | Path, adapter_dir: Path, out: Path, task: str = "causal") -> Path:
    """Load the base in full precision, merge the adapter into it and save a standalone model to ``out``.

    A QLoRA adapter is merged into the unquantized base (merging into 4-bit weights would round them).
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    cls = AutoModelForSequenceClassification if task == "seq_cls" else AutoModelForCausalLM
    base = cls.from_pretrained(base_folder, **({"num_labels": 1} if task == "seq_cls" else {}))
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out)
    return out
