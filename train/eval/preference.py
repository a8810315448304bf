"""Preference metrics: does the model (or its reward) rank the chosen answer above the rejected one?

Input: preference rows (``prompt``, ``chosen``, ``rejected`` as message lists). Output, each with n =
pairs scored and a bootstrap 95% interval over pairs:

- ``logprob_win_rate``: share of pairs with log P(chosen | prompt) > log P(rejected | prompt),
  completion-token log-probs summed through the chat template; ``logprob_win_rate_norm`` compares
  per-token means instead (a long answer is not penalized for its length). Batched: one forward per
  batch of answers, not two per pair.
- ``implicit_reward_accuracy``: for a DPO/KTO policy, share of pairs whose implicit reward
  log pi(y|x) - log pi_ref(y|x) is higher for the chosen answer (beta > 0 does not change the order;
  the mean margin is in ``details``). The reference is the base without the adapter (the adapter is
  switched off, nothing loads twice), or ``against``.
- ``reward_accuracy``: share of pairs a reward model scores chosen > rejected; the reward model is
  ``reward_model``, or the model under test when it is one (``curate train`` method reward).

Pairs with an answer longer than the context are left out and counted in ``details.too_long``.

Example:
    >>> import numpy as np
    >>> wins(np.array([-1.0, -5.0]), np.array([-2.0, -1.0])).tolist()
    [1.0, 0.0]
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import numpy as np

from schemas.evaluation import MetricValue
from train.eval.base import EvalContext, EvalError, Metric, register, value_with_ci
from train.eval.logprobs import completion_logprobs


def wins(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """1.0 where the chosen score is higher, else 0.0 (ties lose: the model did not prefer chosen)."""
    return (np.asarray(chosen) > np.asarray(rejected)).astype(np.float64)


def pair_logprobs(model: Any, tok: Any, rows: Any, batch_size: int) -> tuple[np.ndarray, ...]:
    """(lp_chosen, n_chosen, lp_rejected, n_rejected) for every pair, both answers in one batched pass."""
    prompts = rows["prompt"].to_list()
    lp, n = completion_logprobs(
        model, tok, prompts + prompts, rows["chosen"].to_list() + rows["rejected"].to_list(), batch_size
    )
    k = len(prompts)
    return lp[:k], n[:k], lp[k:], n[k:]


@register
class LogprobWinRate(Metric):
    """``logprob_win_rate`` and ``logprob_win_rate_norm`` on preference pairs."""

    name = "logprob_win_rate"
    kinds = frozenset({"preference"})
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        lc, nc, lr, nr = pair_logprobs(ctx.model, ctx.tokenizer, ctx.rows, ctx.batch_size)
        ok = (nc > 0) & (nr > 0)
        details = {"too_long": int((~ok).sum()), "mean_logp_chosen": float(lc[ok].mean()) if ok.any() else None}
        raw = wins(lc[ok], lr[ok])
        norm = wins(lc[ok] / nc[ok], lr[ok] / nr[ok])
        return [
            value_with_ci("logprob_win_rate", raw, True, ctx, unit="pairs", details=details),
            value_with_ci("logprob_win_rate_norm", norm, True, ctx, unit="pairs", details=details),
        ]


@register
class ImplicitRewardAccuracy(Metric):
    """``implicit_reward_accuracy`` of a policy against its reference."""

    name = "implicit_reward_accuracy"
    kinds = frozenset({"preference"})
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        policy = pair_logprobs(ctx.model, ctx.tokenizer, ctx.rows, ctx.batch_size)
        if ctx.spec.against is not None:
            if ctx.load_other is None:
                raise EvalError("metrics.implicit_reward_accuracy.against: this run cannot load another model")
            ref_model, ref_tok = ctx.load_other(ctx.spec.against)
            reference = pair_logprobs(ref_model, ref_tok, ctx.rows, ctx.batch_size)
            against = ctx.spec.against
        elif hasattr(ctx.model, "disable_adapter"):
            with ctx.model.disable_adapter() if hasattr(ctx.model, "disable_adapter") else nullcontext():
                reference = pair_logprobs(ctx.model, ctx.tokenizer, ctx.rows, ctx.batch_size)
            against = "the base without the adapter"
        else:
            raise EvalError(
                "metrics.implicit_reward_accuracy.against: the model has no adapter to switch off; name the "
                "reference model (against: MODEL)"
            )
        lc, nc, lr, nr = policy
        rc, _, rr, _ = reference
        ok = (nc > 0) & (nr > 0) & np.isfinite(rc) & np.isfinite(rr)
        margin = (lc[ok] - rc[ok]) - (lr[ok] - rr[ok])
        details = {
            "reference": against,
            "mean_margin": float(margin.mean()) if ok.any() else None,
            "too_long": int((~ok).sum()),
        }
        return [value_with_ci("implicit_reward_accuracy", wins(margin, 0.0), True, ctx, unit="pairs", details=details)]


@register
class RewardAccuracy(Metric):
    """``reward_accuracy`` of a reward model on preference pairs."""

    name = "reward_accuracy"
    kinds = frozenset({"preference"})
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        from curate.feedback.reward import RewardModelJudge

        ref = ctx.spec.reward_model or ctx.model_ref
        if not ref:
            raise EvalError("metrics.reward_accuracy.reward_model: name the reward model (a `curate train` reward run)")
        try:
            judge = RewardModelJudge.load(
                ref, batch_size=ctx.batch_size, runs_root=ctx.extras.get("runs_root", "runs/train")
            )
        except ValueError as e:  # ModelError: not a reward model, not found
            raise EvalError(str(e).replace("judge.model", "metrics.reward_accuracy.reward_model")) from None
        prompts = [tuple((m["role"], m["content"]) for m in p) for p in ctx.rows["prompt"].to_list()]
        answers = {
            col: [" ".join(m["content"] for m in c) for c in ctx.rows[col].to_list()] for col in ("chosen", "rejected")
        }
        rated = {col: judge.rate(list(zip(prompts, answers[col], strict=True))) for col in answers}
        sc = np.array([np.nan if r.score is None else r.score for r in rated["chosen"]])
        sr = np.array([np.nan if r.score is None else r.score for r in rated["rejected"]])
        ok = np.isfinite(sc) & np.isfinite(sr)
        failures = [r.error for r in rated["chosen"] + rated["rejected"] if r.error][:5]
        details = {
            "reward_model": ref,
            "failed": int((~ok).sum()),
            "errors": failures,
            "mean_margin": float((sc - sr)[ok].mean()) if ok.any() else None,
        }
        return [value_with_ci("reward_accuracy", wins(sc[ok], sr[ok]), True, ctx, unit="pairs", details=details)]
