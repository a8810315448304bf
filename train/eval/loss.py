"""Held-out loss and perplexity: mean negative log-likelihood per token of the answers in an eval split.

Input: eval rows in TRL's conversational format (sft ``messages``; alpaca/kto ``prompt`` +
``completion``; preference ``prompt`` + ``chosen``), scored as the trainers score them: through
the chat template, loss only on what the assistant says (every assistant turn of a conversation,
given everything before it). Output: ``heldout_loss`` (nats per token, lower is better) and
``perplexity`` = exp(loss), each with n = rows scored (tokens in ``details``) and a bootstrap 95%
interval resampling rows (a row's tokens stay together). Rows longer than the model's context are
left out and counted in ``details.too_long``.

Example:
    >>> import numpy as np
    >>> round(float(np.exp(np.log(4.0))), 6)      # perplexity of a model that spreads mass over 4 tokens
    4.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schemas.evaluation import MetricValue
from train.eval.base import EvalContext, Metric, ratio_ci, register
from train.eval.logprobs import Chat, completion_logprobs, split_turns


def answer_items(rows: Any, kind: str) -> tuple[list[int], list[Chat], list[Chat]]:
    """(row index, prompt, completion) for every scored answer of ``rows`` (a polars DataFrame)."""
    owners: list[int] = []
    prompts: list[Chat] = []
    completions: list[Chat] = []
    if kind == "sft":
        for r, messages in enumerate(rows["messages"].to_list()):
            for p, c in split_turns(messages):
                owners.append(r)
                prompts.append(p)
                completions.append(c)
        return owners, prompts, completions
    answer = "chosen" if kind == "preference" else "completion"
    prompts = rows["prompt"].to_list()
    completions = rows[answer].to_list()
    return list(range(len(prompts))), prompts, completions


@register
class HeldoutLoss(Metric):
    """``heldout_loss`` and ``perplexity`` of the model's answers on held-out rows."""

    name = "heldout_loss"
    kinds = frozenset({"sft", "alpaca", "kto", "preference"})
    higher_is_better = False

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        owners, prompts, completions = answer_items(ctx.rows, ctx.kind)
        lp, n = completion_logprobs(ctx.model, ctx.tokenizer, prompts, completions, ctx.batch_size)
        rows = len(ctx.rows)
        nll = np.zeros(rows)
        tokens = np.zeros(rows)
        owner = np.asarray(owners, dtype=np.int64)
        ok = n > 0
        np.add.at(nll, owner[ok], -lp[ok])
        np.add.at(tokens, owner[ok], n[ok])
        # a row with any answer too long for the context is left out whole, not scored on a part
        too_long = np.zeros(rows, dtype=bool)
        np.logical_or.at(too_long, owner[~ok], True)
        keep = ~too_long & (tokens > 0)
        num, den = nll[keep], tokens[keep]
        loss = float(num.sum() / den.sum()) if den.sum() else float("nan")
        lo, hi = ratio_ci(num, den, ctx.bootstrap, ctx.seed)
        details = {"tokens": int(den.sum()), "too_long": int(too_long.sum()), "answers": int(ok.sum())}
        return [
            MetricValue(
                metric="heldout_loss",
                value=loss,
                n=int(keep.sum()),
                ci_low=lo,
                ci_high=hi,
                higher_is_better=False,
                details=details,
            ),
            MetricValue(
                metric="perplexity",
                value=float(np.exp(loss)),
                n=int(keep.sum()),
                ci_low=float(np.exp(lo)),
                ci_high=float(np.exp(hi)),
                higher_is_better=False,
                details=details,
            ),
        ]
