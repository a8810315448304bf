"""Kahneman-Tversky optimisation: a recipe with ``method: kto`` onto TRL's KTOTrainer.

Unpaired examples (prompt, completion, label); desirable/undesirable weights balance the two labels.
Reference log-probabilities come from :mod:`train.refcache` as for DPO. KTO's KL term compares
examples within a batch, so the per-device batch must be at least 2 (``train/compat.py``).

Example:
    >>> # result = train(prepare(doc))   # see train/run.py
"""

from __future__ import annotations

from typing import Any

from curate.models.source import load_model
from train.common import (
    Setup,
    TrainResult,
    build_model,
    config_kwargs,
    progress_callback,
    ref_cache,
    reference_source,
    run_trainer,
)
from train.refcache import RefCacheMixin


def trainer_class() -> Any:
    """TRL's KTOTrainer with the reference log-prob cache mixed in."""
    from trl import KTOTrainer

    return type("CachedKTOTrainer", (RefCacheMixin, KTOTrainer), {})


def train(setup: Setup) -> TrainResult:
    """Train with KTO on ``setup``'s labelled completions; returns the result."""
    from trl import KTOConfig

    spec = setup.recipe.method_spec()
    config = KTOConfig(
        **config_kwargs(setup),
        beta=spec.beta,
        loss_type=spec.loss_type,
        desirable_weight=spec.desirable_weight,
        undesirable_weight=spec.undesirable_weight,
        precompute_ref_log_probs=True,
    )
    model, optimizers = build_model(setup, task="causal", lr=config.learning_rate)
    ref = reference_source(setup)
    trainer = trainer_class()(
        model=model,
        ref_model=load_model(ref) if ref else None,
        args=config,
        train_dataset=setup.train_dataset,
        eval_dataset=setup.eval_dataset,
        processing_class=setup.tokenizer,
        optimizers=optimizers,
        callbacks=[progress_callback(setup)],
        ref_cache=ref_cache(setup),
    )
    return run_trainer(setup, trainer, task="causal")
