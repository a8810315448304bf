"""GRPO (RLHF phase 3): a recipe with ``method: grpo`` onto TRL's GRPOTrainer.

The policy samples ``grpo.num_generations`` completions per prompt; each completion's advantage is
its reward relative to its group (scaled by ``scale_rewards``), so no value model is needed. Rewards
come from a reward model trained by ``curate train`` and/or rule-based functions (see
:mod:`train.online`). Without vLLM, TRL generates with ``model.generate``, so this runs on CPU.

Example:
    >>> # result = train(prepare(doc))   # see train/run.py
"""

from __future__ import annotations

from train.common import Setup, TrainResult
from train.online import config_args, train_online


def train(setup: Setup) -> TrainResult:
    """Train the policy with GRPO on ``setup``'s prompts; returns the result."""
    from trl import GRPOConfig, GRPOTrainer

    spec = setup.recipe.method_spec()
    kw = config_args(setup, spec)
    config = GRPOConfig(**{"loss_type": spec.loss_type, "scale_rewards": spec.scale_rewards, **kw})
    return train_online(setup, config, GRPOTrainer)
