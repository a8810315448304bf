"""ORPO and CPO (reference-free preference methods from ``trl.experimental``).

Example:
    >>> # result = train(prepare(doc))   # method: orpo or cpo; see train/run.py
"""

from __future__ import annotations

from train.common import Setup, TrainResult, build_model, config_kwargs, progress_callback, run_trainer


def train(setup: Setup) -> TrainResult:
    """Train with ORPO or CPO (``setup.recipe.method``) on preference pairs; returns the result."""
    if setup.recipe.method == "orpo":
        from trl.experimental.orpo import ORPOConfig as Config
        from trl.experimental.orpo import ORPOTrainer as Trainer
    else:
        from trl.experimental.cpo import CPOConfig as Config
        from trl.experimental.cpo import CPOTrainer as Trainer

    config = Config(**config_kwargs(setup), beta=setup.recipe.method_spec().beta)
    model, optimizers = build_model(setup, task="causal", lr=config.learning_rate)
    trainer = Trainer(
        model=model,
        args=config,
        train_dataset=setup.train_dataset,
        eval_dataset=setup.eval_dataset,
        processing_class=setup.tokenizer,
        optimizers=optimizers,
        callbacks=[progress_callback(setup)],
    )
    return run_trainer(setup, trainer, task="causal")
