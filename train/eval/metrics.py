"""The built-in metrics, by name: importing this module imports every metric module, so each registers itself.

Add a new metric module's import here.

Example:
    >>> get_metric("heldout_loss").kinds >= {"sft", "preference"}
    True
"""

from __future__ import annotations

import train.eval.harness  # lm_eval
import train.eval.judge  # judge_win_rate
import train.eval.loss  # heldout_loss, perplexity
import train.eval.overlap  # bleu, rouge_l
import train.eval.preference  # logprob_win_rate, implicit_reward_accuracy, reward_accuracy
import train.eval.safety  # noqa: F401  (refusal_rate, over_refusal_rate)
from train.eval.base import _REGISTRY, EvalError, Metric


def get_metric(name: str) -> Metric:
    """A new instance of the metric ``name``; :class:`EvalError` lists the known names."""
    if name not in _REGISTRY:
        raise EvalError(f"metrics: unknown metric {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()
