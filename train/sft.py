"""Supervised fine-tuning: a recipe with ``method: sft`` onto TRL's SFTTrainer.

Reads top to bottom: config from the recipe, model with its adapter, trainer, train.

Example:
    >>> # from train.common import prepare; result = train(prepare(doc))   # see train/run.py
"""

from __future__ import annotations

from train.common import Setup, TrainResult, build_model, config_kwargs, progress_callback, run_trainer


def train(setup: Setup) -> TrainResult:
    """Train with SFT on ``setup``'s dataset (``messages`` or prompt/completion); returns the result."""
    from trl import SFTConfig, SFTTrainer

    r = setup.recipe
    config = SFTConfig(
        **config_kwargs(setup),
        packing=r.training.packing,
        packing_strategy="bfd",
        assistant_only_loss=r.training.assistant_only_loss,
        completion_only_loss=r.method_spec().completion_only_loss,
    )
    model, optimizers = build_model(setup, task="causal", lr=config.learning_rate)
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=setup.train_dataset,
        eval_dataset=setup.eval_dataset,
        processing_class=setup.tokenizer,
        optimizers=optimizers,
        callbacks=[progress_callback(setup)],
    )
    return run_trainer(setup, trainer, task="causal")
