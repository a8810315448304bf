"""What every entry point shares: the loaded dataset, tokenizer and device choices, the model with its
adapter, TRL config arguments common to all methods, and saving plus lineage after training.

The entry points (``train/sft.py`` ...) stay thin: they only pick the TRL trainer and config and the
method's own settings.

Example:
    >>> d = device_defaults("cpu", "auto", None)
    >>> d.precision, d.gradient_checkpointing, d.config_args()
    ('fp32', False, {'use_cpu': True, 'bf16': False, 'fp16': False})
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curate.models.source import (
    ModelSource,
    cache_dir,
    load_model,
    load_tokenizer,
    resolve_source,
    set_offline,
)
from schemas.train_recipe import TrainRecipe
from schemas.train_recipe_loader import LoadedTrainRecipe
from train.policy import policy_source
from train.templates import template_for

WORKER_ENV = "CURATE_TRAIN_WORKER"  # set in processes started by `accelerate launch`
LINEAGE_ENV = "CURATE_LIFECYCLE_LINEAGE"  # the lifecycle run a launched worker trains for (JSON)


class DataError(ValueError):
    """The recipe's dataset cannot be loaded; the message names dataset.ref/split and the fix."""


@dataclass(frozen=True)
class DeviceDefaults:
    """Per-device defaults, each overridable by the recipe."""

    device: str
    precision: str
    gradient_checkpointing: bool

    def config_args(self) -> dict[str, Any]:
        """TRL/transformers TrainingArguments for this device and precision."""
        return {"use_cpu": self.device == "cpu", "bf16": self.precision == "bf16", "fp16": self.precision == "fp16"}

    @property
    def torch_dtype(self) -> str:
        return {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[self.precision]


def device_defaults(device: str, precision: str, checkpointing: bool | None) -> DeviceDefaults:
    """CPU: fp32, no gradient checkpointing (it costs up to 2x there and memory is rarely the limit);
    GPU: bf16 when the GPU supports it, gradient checkpointing on. ``auto`` picks cuda when available."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if precision == "auto":
        precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if checkpointing is None:
        checkpointing = device == "cuda"
    return DeviceDefaults(device, precision, checkpointing)


@dataclass
class Setup:
    """Everything a method needs, loaded and checked (see :func:`prepare`)."""

    doc: LoadedTrainRecipe
    source: ModelSource
    tokenizer: Any
    train_dataset: Any
    eval_dataset: Any
    data_manifest: dict[str, Any]
    defaults: DeviceDefaults
    run_dir: Path
    kind: str
    logs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def recipe(self) -> TrainRecipe:
        return self.doc.recipe


def new_run_dir(recipe: TrainRecipe) -> Path:
    """``output.dir/NAME/RUN_ID`` (UTC time plus pid, so parallel runs never collide)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(recipe.output.dir) / recipe.name / f"{stamp}-{os.getpid()}"


def load_data(recipe: TrainRecipe, split: str) -> tuple[Any, dict[str, Any]]:
    """The split as a TRL-format ``datasets.Dataset`` and the version's manifest (through curate's store)."""
    from curate.store.load import load

    ds_spec = recipe.dataset
    try:
        ds, manifest = load(ds_spec.ref, split=split, root=ds_spec.store, with_manifest=True)
    except ValueError as e:  # RefError: unknown dataset or version
        raise DataError(
            f"dataset.ref: {e}; list published datasets with `curate datasets list --store {ds_spec.store}`"
        ) from None
    except FileNotFoundError as e:
        raise DataError(f"dataset.store: {e}") from None
    if ds_spec.limit is not None and len(ds) > ds_spec.limit:
        ds = ds.select(range(ds_spec.limit))
    return ds, manifest


def prepare(
    doc: LoadedTrainRecipe, run_dir: Path | None = None, data: tuple[Any, dict[str, Any]] | None = None
) -> Setup:
    """Resolve the model, load the tokenizer (no weights) and the dataset; choose device defaults.

    ``data``: the train split and its version's manifest, already read from the store (what
    :func:`load_data` returns); the GPU benchmark passes an exported copy, since the store's Delta
    tables need ``deltalake``, which its machine lacks.
    """
    r = doc.recipe
    set_offline(r.model.offline)
    source = policy_source(r.model.base, r.model.gguf_file, r.output.dir)  # a model source or an earlier run
    tok = load_tokenizer(source, template_for(r.model.chat_template), r.model.pad_token)
    train_ds, manifest = data if data is not None else load_data(r, r.dataset.split)
    eval_ds = load_data(r, r.dataset.eval_split)[0] if r.dataset.eval_split else None
    if eval_ds is not None and len(eval_ds) == 0:
        eval_ds = None
    checkpointing = r.training.gradient_checkpointing
    if checkpointing is None and r.adapter.type == "prefix":
        checkpointing = False  # prefix tuning's key/value prefixes are dropped under checkpointing (train.compat)
    defaults = device_defaults(r.training.device, r.training.precision, checkpointing)
    return Setup(doc, source, tok, train_ds, eval_ds, manifest, defaults, run_dir or new_run_dir(r), manifest["kind"])


def config_kwargs(setup: Setup, learning_rate_default: float | None = None) -> dict[str, Any]:
    """TRL config arguments shared by every method (output, loop, device, logging)."""
    t = setup.recipe.training
    kw: dict[str, Any] = {
        "output_dir": str(setup.run_dir / "checkpoints"),
        "max_steps": t.max_steps,
        "num_train_epochs": t.epochs,
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "gradient_checkpointing": setup.defaults.gradient_checkpointing,
        "seed": t.seed,
        "data_seed": t.seed,
        "logging_steps": t.logging_steps,
        "warmup_steps": t.warmup_ratio,  # transformers 5: a float below 1 is a ratio of total steps
        "report_to": [],
        "save_strategy": "no",  # the final adapter is saved by us, with its lineage
        "max_length": t.max_length,
        "disable_tqdm": not sys.stderr.isatty(),
        **setup.defaults.config_args(),
    }
    if t.learning_rate is not None:
        kw["learning_rate"] = t.learning_rate
    from train.optimizers import galore_args

    kw.update(galore_args(setup.recipe.optimizer))
    kw.update(t.extra_args)
    return kw


def build_model(setup: Setup, task: str = "causal", lr: float = 1e-4) -> tuple[Any, tuple[Any, Any]]:
    """Load the base weights (4-bit for QLoRA), apply the adapter; returns (model, trainer optimizers)."""
    import torch

    from train.adapters import LORA_TYPES, apply_adapter, loraplus_optimizer, quantization_config

    r, d = setup.recipe, setup.defaults
    a = r.adapter
    quant = quantization_config(a, d.torch_dtype)
    # LoRA on GPU: 16-bit frozen weights halve memory; full tuning keeps fp32 master weights (autocast does bf16)
    dtype = getattr(torch, d.torch_dtype) if a.type in ("lora", "dora") and d.device == "cuda" else torch.float32
    if quant is not None:
        dtype = getattr(torch, d.torch_dtype)
    torch.manual_seed(r.training.seed)
    attn = None if r.model.attn_implementation == "auto" else r.model.attn_implementation
    model = load_model(
        setup.source,
        task=task,
        dtype=dtype,
        quantization=quant,
        pad_token_id=setup.tokenizer.pad_token_id,
        attn_implementation=attn,
    )
    init_dir = setup.run_dir / "pissa_init" if a.init == "pissa" else None
    model = apply_adapter(model, a, task, d.gradient_checkpointing, init_dir, str(setup.source.folder))
    optimizer = loraplus_optimizer(model, a, lr) if a.type in LORA_TYPES else None
    if r.optimizer.type == "badam":
        from train.optimizers import badam_optimizer

        optimizer = badam_optimizer(model, r.optimizer, lr)
    return model, (optimizer, None)


def reference_source(setup: Setup) -> ModelSource | None:
    """The separate reference model, if the recipe names one."""
    ref = setup.recipe.reference.model
    return resolve_source(ref) if ref else None


def ref_cache(setup: Setup, split: str = "train") -> Any:
    """The reference log-prob cache for this run (``None`` when disabled) - see :mod:`train.refcache`."""
    from train.refcache import RefCache, cache_key, tokenizer_digest

    r = setup.recipe
    if not r.reference.cache:
        return None
    ref_src = reference_source(setup) or setup.source
    reference = {
        **ref_src.identity(),
        "adapter": r.adapter.type if r.reference.model is None else "none",
        "init": r.adapter.init,
        "quant": r.adapter.quant.model_dump() if r.adapter.type == "qlora" else None,
    }
    data = {
        "content_hash": setup.data_manifest["content_hash"],
        "ref": setup.data_manifest["resolved"],
        "split": r.dataset.split,
        "eval_split": r.dataset.eval_split,
        "limit": r.dataset.limit,
    }
    tokenization = {
        "tokenizer": tokenizer_digest(setup.tokenizer),
        "max_length": r.training.max_length,
        "method": r.method,
        "precision": setup.defaults.precision,
        "kto_kl": r.method == "kto" and (r.kto is None or r.kto.loss_type == "kto"),
    }
    if r.model.attn_implementation != "auto":  # kernels round differently (keys of earlier runs stay valid)
        tokenization["attn_implementation"] = r.model.attn_implementation
    parts = {"reference": reference, "data": data, "tokenization": tokenization}
    root = r.reference.cache_dir or cache_dir() / "refcache"
    return RefCache(root, cache_key(reference, data, tokenization), parts)


def progress_callback(setup: Setup) -> Any:
    """A trainer callback printing one line per logging step and keeping the logs for the manifest."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if not logs or not state.is_world_process_zero:
                return
            entry = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, int | float)}}
            setup.logs.append(entry)
            shown = ", ".join(
                f"{k} {v:.4g}"
                for k, v in entry.items()
                if k
                in (
                    "loss",
                    "learning_rate",
                    "rewards/accuracies",
                    "rewards/margins",
                    "train_loss",
                    "eval_loss",
                    "accuracy",
                    "reward",
                    "reward_std",
                    "kl",
                    "completions/mean_length",
                )
            )
            print(f"[train] step {state.global_step}/{state.max_steps}: {shown}", file=sys.stderr, flush=True)

    return Progress()


def unpack_4bit_callback() -> Any:
    """Before every step, undo bitsandbytes' CPU inference repacking (see
    :func:`train.adapters.unpack_cpu_4bit_weights`): the reference pass runs in eval mode first."""
    from transformers import TrainerCallback

    from train.adapters import unpack_cpu_4bit_weights

    class Unpack4bit(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            if model is not None:
                unpack_cpu_4bit_weights(model)

    return Unpack4bit()


@dataclass
class TrainResult:
    """What a method's training produced (the trainer stays available to tests)."""

    trainer: Any
    metrics: dict[str, Any]
    output_dir: Path
    output_kind: str
    task: str
    seconds: float
    ref_cache_events: list[str] = field(default_factory=list)
    train_tokens: int = 0
    cpu_seconds: float = 0.0  # process CPU time of trainer.train() (all threads): robust to a busy machine
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific manifest sections (e.g. reward_model)
    memory: dict[str, Any] = field(default_factory=dict)  # estimate vs measured peak (train.memory_probe)


def run_trainer(setup: Setup, trainer: Any, task: str) -> TrainResult:
    """Train, evaluate (when an eval split is set), save the adapter/model; lineage is written by the caller."""
    from transformers.trainer_callback import PrinterCallback

    from train.adapters import is_peft, save_trained

    trainer.remove_callback(PrinterCallback)  # our progress callback prints a shorter line per step
    if setup.recipe.adapter.type == "qlora":
        trainer.add_callback(unpack_4bit_callback())
    start, cpu_start = time.perf_counter(), time.process_time()
    out = trainer.train()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    metrics = {k: v for k, v in out.metrics.items() if isinstance(v, int | float)}
    if setup.eval_dataset is not None:
        metrics.update({k: v for k, v in trainer.evaluate().items() if isinstance(v, int | float)})
    out_dir = setup.run_dir / ("adapter" if is_peft(setup.recipe.adapter) else "model")
    kind = "adapter"
    if getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False):
        # sharded parameters: the trainer gathers the full state dict across processes (all must call it)
        trainer.save_model(str(out_dir))
        kind = "adapter" if is_peft(setup.recipe.adapter) else "model"
    elif trainer.accelerator.is_main_process:
        init_dir = setup.run_dir / "pissa_init" if setup.recipe.adapter.init == "pissa" else None
        kind = save_trained(
            trainer.accelerator.unwrap_model(trainer.model), setup.recipe.adapter, out_dir, setup.tokenizer, init_dir
        )
    tokens = int(getattr(trainer, "_total_train_tokens", 0) or metrics.get("num_tokens", 0) or 0)
    return TrainResult(
        trainer,
        metrics,
        out_dir,
        kind,
        task,
        seconds,
        list(getattr(trainer, "ref_cache_events", [])),
        tokens,
        cpu_seconds,
    )


def recipe_digest(doc: LoadedTrainRecipe) -> str:
    """SHA-256 of the recipe text as run."""
    return hashlib.sha256(doc.text.encode()).hexdigest()


def write_recipe_copy(setup: Setup) -> None:
    setup.run_dir.mkdir(parents=True, exist_ok=True)
    (setup.run_dir / "recipe.yaml").write_text(setup.doc.text, encoding="utf-8")


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
