"""Reward modelling: a recipe with ``method: reward`` onto TRL's RewardTrainer (Bradley-Terry on pairs).

The model is a sequence classifier with one output; with LoRA the adapter is ``task_type=SEQ_CLS``
so the new score head trains and is saved with it; the tokenizer's pad token tells the model where
each sequence ends.

Example:
    >>> # result = train(prepare(doc))   # see train/run.py
"""

from __future__ import annotations

from train.common import Setup, TrainResult, build_model, config_kwargs, progress_callback, run_trainer


def train(setup: Setup) -> TrainResult:
    """Train a reward model on ``setup``'s preference pairs; returns the result."""
    from trl import RewardConfig, RewardTrainer

    spec = setup.recipe.method_spec()
    config = RewardConfig(**config_kwargs(setup), center_rewards_coefficient=spec.center_rewards_coefficient)
    model, optimizers = build_model(setup, task="seq_cls", lr=config.learning_rate)
    trainer = RewardTrainer(
        model=model,
        args=config,
        train_dataset=setup.train_dataset,
        eval_dataset=setup.eval_dataset,
        processing_class=setup.tokenizer,
        optimizers=optimizers,
        callbacks=[progress_callback(setup)],
    )
    return run_trainer(setup, trainer, task="seq_cls")
