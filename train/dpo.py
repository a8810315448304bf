"""Direct preference optimisation: a recipe with ``method: dpo`` onto TRL's DPOTrainer.

Reference log-probabilities are precomputed once and served from :mod:`train.refcache` on later runs
over the same dataset version. With an adapter the reference is the base model with the adapter
switched off; ``reference.model`` names a separate one.

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
    """TRL's DPOTrainer with the reference log-prob cache mixed in."""
    from trl import DPOTrainer

    return type("CachedDPOTrainer", (RefCacheMixin, DPOTrainer), {})


def train(setup: Setup) -> TrainResult:
    """Train with DPO on ``setup``'s preference pairs; returns the result."""
    from trl import DPOConfig

    spec = setup.recipe.method_spec()
    config = DPOConfig(
        **config_kwargs(setup),
        beta=spec.beta,
        loss_type=[spec.loss_type],
        label_smoothing=spec.label_smoothing,
        precompute_ref_log_probs=True,  # one reference pass, then cached per dataset version
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
