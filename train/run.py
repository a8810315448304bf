"""Run a train recipe: validate, pre-flight, train with the method's entry point, write lineage.

``curate train RECIPE`` calls :func:`train_recipe`; ``--dry-run`` stops after the pre-flight checks.
With a ``distributed:`` section the same recipe is re-launched through ``accelerate launch`` (see
:mod:`train.distributed`); each worker process runs :func:`train_recipe` again without it.

Example:
    >>> from schemas.recipe_loader import RecipeError
    >>> try:
    ...     train_recipe("missing.yaml")
    ... except RecipeError as e:
    ...     print(e)
    missing.yaml: file not found
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.train_recipe_loader import LoadedTrainRecipe, load_train_recipe_file
from train.common import (
    LINEAGE_ENV,
    WORKER_ENV,
    Setup,
    TrainResult,
    prepare,
    recipe_digest,
    write_recipe_copy,
)
from train.compat import require_compatible
from train.memory_check import memory_check
from train.preflight import PreflightReport, run_checks


class PreflightError(ValueError):
    """Pre-flight found errors; ``report`` has them all."""

    def __init__(self, report: PreflightReport):
        self.report = report
        super().__init__(report.format())


@dataclass
class Outcome:
    """What :func:`train_recipe` did: the report, and for a real run the result and its manifest."""

    report: PreflightReport
    setup: Setup | None = None
    result: TrainResult | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    evaluation: Any = None  # schemas.evaluation.EvalReport when the recipe has `eval:`


def entry_point(method: str) -> Any:
    """The module whose ``train(setup)`` runs ``method``."""
    import importlib

    name = {"orpo": "orpo", "cpo": "orpo"}.get(method, method)
    return importlib.import_module(f"train.{name}")


def preflight(setup: Setup) -> PreflightReport:
    """All pre-flight checks for ``setup`` (dataset, template, tokens, masking, lengths, memory)."""
    from train.online import check_reward_model
    from train.preflight import add_memory_check

    r = setup.recipe
    report = run_checks(
        r.method,
        setup.kind,
        setup.train_dataset,
        setup.tokenizer,
        r.training.max_length,
        r.training.assistant_only_loss,
        None,
        setup.data_manifest.get("resolved", ""),
    )
    reward = check_reward_model(r)  # rloo / grpo: the reward model exists and is one (no weights load)
    if reward is not None:
        report.add("reward", reward[0], reward[1], reward[2])
    if report.lengths or report.ok:
        # batches are padded to their longest row, so the longest example (not max_length) sets activations
        longest = report.lengths.get("max")
        seq = r.training.max_length if r.training.packing or not longest else min(longest, r.training.max_length)
        add_memory_check(report, memory_check(setup, seq, report.lengths.get("distinct")))
    return report


def train_recipe(
    path: str | Path | LoadedTrainRecipe,
    dry_run: bool = False,
    run_dir: Path | None = None,
    launch: bool = True,
    lifecycle: dict[str, Any] | None = None,
) -> Outcome:
    """Validate ``path``, run pre-flight, then train (unless ``dry_run``) and write lineage.

    ``lifecycle``: the lifecycle run that started this training
    (:class:`schemas.lifecycle.LifecycleLineage` as a dict), recorded in the manifest.

    Raises:
        RecipeError: the recipe is invalid or an incompatible combination (all problems listed).
        PreflightError: the data, template or tokenizer would make training go wrong.
        ModelError / DataError: the base model or the dataset cannot be found.
    """
    doc = path if isinstance(path, LoadedTrainRecipe) else load_train_recipe_file(path)
    require_compatible(doc)
    if lifecycle is None and os.environ.get(LINEAGE_ENV):  # a worker that `accelerate launch` started for a lifecycle
        lifecycle = json.loads(os.environ[LINEAGE_ENV])
    if doc.recipe.distributed is not None and launch and not dry_run and not os.environ.get(WORKER_ENV):
        from train.distributed import launch_recipe

        manifest, launched = launch_recipe(doc, run_dir, lifecycle)
        return Outcome(PreflightReport(), None, None, manifest, launched)
    setup = prepare(doc, run_dir)
    report = preflight(setup)
    if not report.ok:
        raise PreflightError(report)
    if dry_run:
        return Outcome(report, setup)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if rank0:
        write_recipe_copy(setup)
    from train.memory_probe import PeakMemory

    _import_training_libraries(doc.recipe)  # so the probe measures the run, not module imports
    with PeakMemory(setup.defaults.device) as probe:
        result = entry_point(doc.recipe.method).train(setup)
    if report.memory:
        result.memory = probe.report(report.memory["estimate_bytes"])
    manifest: dict[str, Any] = {}
    evaluation = None
    if rank0:
        manifest = finish(setup, result, report, lifecycle)
        if doc.recipe.eval is not None:
            evaluation = evaluate_run(setup)
    return Outcome(report, setup, result, manifest, setup.run_dir, evaluation)


def evaluate_run(setup: Setup) -> Any:
    """The recipe's ``eval:`` on the run just trained (by default the trained version's eval split)."""
    from train.eval.runner import evaluate

    r = setup.recipe
    spec = r.eval
    assert spec is not None
    updates: dict[str, Any] = {}
    if not spec.on:
        updates["on"] = [setup.data_manifest.get("resolved") or r.dataset.ref]
    if spec.store is None:
        updates["store"] = str(r.dataset.store)
    if r.dataset.eval_split and "split" not in spec.model_fields_set:
        updates["split"] = r.dataset.eval_split
    return evaluate(str(setup.run_dir), spec.model_copy(update=updates), runs_root=setup.run_dir.parent.parent)


def _import_training_libraries(recipe: Any) -> None:
    """Import TRL (the method's trainer), peft and the adapter's/optimizer's packages before the memory
    probe starts, so that it measures training, not module imports."""
    import importlib

    import peft  # noqa: F401
    import trl

    for name in ("SFTTrainer", "DPOTrainer", "KTOTrainer", "RewardTrainer", f"{recipe.method.upper()}Trainer"):
        getattr(trl, name, None)
    o = recipe.optimizer.type
    needed = (
        (recipe.adapter.type == "qlora", "bitsandbytes"),
        (o == "badam", "badam"),
        (o.startswith("galore"), "galore_torch"),
    )
    for wanted, package in needed:
        if wanted:
            importlib.import_module(package)


def finish(
    setup: Setup, result: TrainResult, report: PreflightReport, lifecycle: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge (when asked) and write the manifest and model card of a finished run."""
    from schemas.provenance import code_version
    from train.adapters import merge_adapter
    from train.lineage import hardware, library_versions, write_lineage

    r = setup.recipe
    merged = None
    if r.output.merge and result.output_kind == "adapter":
        merged = merge_adapter(setup.source.folder, result.output_dir, setup.run_dir / "merged", result.task)
    dm = setup.data_manifest
    manifest = {
        "name": r.name,
        "run_id": setup.run_dir.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": r.method,
        "task": result.task,
        "adapter": r.adapter.model_dump(),
        "base_model": setup.source.identity(),
        "reference_model": r.reference.model,
        "dataset": {
            "ref": dm.get("resolved"),
            "requested": r.dataset.ref,
            "split": r.dataset.split,
            "eval_split": r.dataset.eval_split,
            "content_hash": dm.get("content_hash"),
            "kind": setup.kind,
            "rows": len(setup.train_dataset),
            "store": r.dataset.store,
        },
        "recipe": {"file": setup.doc.file, "sha256": recipe_digest(setup.doc), "text": setup.doc.text},
        # the recipe's loop settings with the per-device defaults resolved to what actually ran
        "training": {
            **r.training.model_dump(),
            "precision": setup.defaults.precision,
            "device": setup.defaults.device,
            "gradient_checkpointing": setup.defaults.gradient_checkpointing,
        },
        "code_version": code_version().model_dump(),
        "libraries": library_versions(),
        "hardware": hardware(setup.defaults.device),
        "distributed": _distributed_info(),
        "metrics": {
            **result.metrics,
            "train_seconds": round(result.seconds, 3),
            "train_cpu_seconds": round(result.cpu_seconds, 3),
        },
        "logs": setup.logs,
        # pre-flight estimate beside the measured peak (train.memory_probe): estimate / measured = ratio
        "memory": result.memory or None,
        "ref_cache": result.ref_cache_events,
        **result.extra,
        "preflight": report.as_dict(),
        **({"lifecycle": lifecycle} if lifecycle else {}),
        "output": {
            "kind": result.output_kind,
            "path": str(result.output_dir),
            "merged": str(merged) if merged else None,
        },
    }
    write_lineage(setup.run_dir, manifest)
    from train.registry import register_run

    if setup.run_dir.parent.name == r.name:  # a run in output.dir/NAME/ (not a caller's own folder)
        register_run(setup.run_dir)  # becomes the immutable version NAME@N
    return manifest


def _distributed_info() -> dict[str, Any]:
    """World size and backend of the process group, when this run was launched distributed."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return {"world_size": 1}
    return {"world_size": dist.get_world_size(), "backend": str(dist.get_backend())}
