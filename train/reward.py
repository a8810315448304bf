"""Reward modelling: a recipe with ``method: reward`` onto TRL's RewardTrainer (Bradley-Terry on pairs).

The model is a sequence classifier with one output; with LoRA the adapter is ``task_type=SEQ_CLS``
so the new score head trains and is saved with it; the tokenizer's pad token tells the model where
each sequence ends.

Example:
    >>> # result = train(prepare(doc))   # see train/run.py
"""

from __future__ import annotations

from typing import Any

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
    if setup.recipe.adapter.type == "qlora":
        keep_head_in_compute_dtype(trainer.model, config)
    return run_trainer(setup, trainer, task="seq_cls")


def keep_head_in_compute_dtype(model: Any, config: Any) -> None:
    """Undo TRL's bf16 cast of the score head for QLoRA when training in fp32.

    RewardTrainer casts every trainable QLoRA parameter to bf16 (QLoRA paper), including the new score
    head, whose input (the last hidden state) stays fp32 on CPU: the head's matmul then fails with a
    dtype mismatch. The LoRA matrices handle the mix; the head is put back in fp32.
    """
    import torch

    if config.bf16 or config.fp16:
        return
    for name, param in model.named_parameters():
        if param.requires_grad and "score" in name:
            param.data = param.data.to(torch.float32)
