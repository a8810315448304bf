"""RLOO (RLHF phase 3): a recipe with ``method: rloo`` onto TRL's RLOOTrainer.

REINFORCE Leave-One-Out: the policy samples ``rloo.num_generations`` completions per prompt and each
completion's baseline is the mean reward of the other completions of its prompt (no value model).
Rewards come from a reward model trained by ``curate train`` and/or rule-based functions (see
:mod:`train.online`); ``beta`` weighs the KL term to the starting policy.

Example:
    >>> # result = train(prepare(doc))   # see train/run.py
"""

from __future__ import annotations

from train.common import Setup, TrainResult
from train.online import config_args, train_online


def train(setup: Setup) -> TrainResult:
    """Train the policy with RLOO on ``setup``'s prompts; returns the result."""
    from trl import RLOOConfig, RLOOTrainer

    spec = setup.recipe.method_spec()
    kw = config_args(setup, spec)
    config = RLOOConfig(**{"normalize_advantages": spec.normalize_advantages, **kw})
    return train_online(setup, config, RLOOTrainer)
