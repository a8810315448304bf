"""Preference metrics on pairs: log-prob win rate, implicit reward accuracy, reward-model accuracy.

All three score preference records (``prompt``, ``chosen``, ``rejected``) and report the share of
pairs the model orders like the data (chosen above rejected; an exact tie counts half), with ``n``
pairs and a bootstrap 95% interval over pairs. Log-probs come from
:func:`train.eval.logprobs.completion_logprobs` (batched); a pair past the model's context is left
out and counted in ``details.skipped``.

- ``logprob_win_rate``: log P(chosen | prompt) > log P(rejected | prompt), summed over completion
  tokens through the chat template; also ``logprob_win_rate_norm`` on per-token means.
- ``implicit_reward_accuracy``: a DPO/KTO policy against its reference: beta * (log pi(c) - log
  ref(c)) > beta * (log pi(r) - log ref(r)). The reference is ``against`` when set, else the model
  with its LoRA adapter disabled (no second load), else ``ctx.load_other(None)`` (the base model).
- ``reward_accuracy``: a reward model's score of chosen > rejected; the reward model is
  ``reward_model`` when set, else the model under test when it is a reward run / classifier.

Example (YAML):
    eval: {metrics: [logprob_win_rate, {name: implicit_reward_accuracy, options: {beta: 0.1}}]}
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from schemas.evaluation import MetricValue
from train.eval.base import EvalContext, EvalError, Metric, register, value_with_ci
from train.eval.logprobs import completion_logprobs
from train.eval.pairs import limited, pair_wins, preference_pairs


def _pair_logprobs(model: Any, tok: Any, rows: Any, batch_size: int) -> tuple[np.ndarray, ...]:
    """Summed log-probs and token counts of chosen and rejected, one batched pass over both."""
    prompts, chosen, rejected = preference_pairs(rows)
    s, n = completion_logprobs(model, tok, prompts + prompts, chosen + rejected, batch_size)
    k = len(prompts)
    return s[:k], n[:k], s[k:], n[k:]


@register
class LogprobWinRate(Metric):
    """Share of pairs where the model gives the chosen answer the higher log-probability."""

    name = "logprob_win_rate"
    kinds = frozenset({"preference"})
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        rows = limited(ctx.rows, ctx.spec.limit, ctx.seed)
        sc, nc, sr, nr = _pair_logprobs(ctx.model, ctx.tokenizer, rows, ctx.batch_size)
        ok = np.isfinite(sc) & np.isfinite(sr)
        _require(ok, self.name)
        raw = pair_wins(sc[ok], sr[ok])
        norm = pair_wins(sc[ok] / np.maximum(nc[ok], 1), sr[ok] / np.maximum(nr[ok], 1))
        details = {
            "skipped": int((~ok).sum()),
            "mean_logp_chosen": float(sc[ok].mean()) if ok.any() else None,
            "mean_logp_rejected": float(sr[ok].mean()) if ok.any() else None,
        }
        return [
            value_with_ci(self.name, raw, True, ctx, unit="pairs", details=details),
            value_with_ci(f"{self.name}_norm", norm, True, ctx, unit="pairs", details=details),
        ]


def _reference(ctx: EvalContext) -> tuple[Any, Any, contextlib.AbstractContextManager[Any]]:
    """The reference model and tokenizer, and the context to score it in (adapter off for a LoRA policy)."""
    if ctx.spec.against is None and hasattr(ctx.model, "disable_adapter"):
        return ctx.model, ctx.tokenizer, ctx.model.disable_adapter()
    if ctx.load_other is None:
        raise EvalError(
            "metrics: implicit_reward_accuracy needs the reference model: set `against:` (the base model "
            "the policy was trained from) or evaluate a LoRA run"
        )
    model, tok = ctx.load_other(ctx.spec.against)
    return model, tok, contextlib.nullcontext()


@register
class ImplicitRewardAccuracy(Metric):
    """Share of pairs where the policy's implicit reward (vs its reference) ranks chosen first."""

    name = "implicit_reward_accuracy"
    kinds = frozenset({"preference"})
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        beta = float(ctx.spec.options.get("beta", 0.1))
        if beta <= 0:
            raise EvalError(f"metrics: implicit_reward_accuracy options.beta must be > 0, not {beta}")
        rows = limited(ctx.rows, ctx.spec.limit, ctx.seed)
        pc, _, pr, _ = _pair_logprobs(ctx.model, ctx.tokenizer, rows, ctx.batch_size)
        ref_model, ref_tok, scope = _reference(ctx)
        with scope:
            rc, _, rr, _ = _pair_logprobs(ref_model, ref_tok, rows, ctx.batch_size)
        reward_c, reward_r = beta * (pc - rc), beta * (pr - rr)
        ok = np.isfinite(reward_c) & np.isfinite(reward_r)
        _require(ok, self.name)
        margins = reward_c[ok] - reward_r[ok]
        details = {
            "beta": beta,
            "reference": ctx.spec.against or "adapter disabled / base model",
            "mean_margin": float(margins.mean()) if ok.any() else None,
            "skipped": int((~ok).sum()),
        }
        return [value_with_ci(self.name, pair_wins(reward_c[ok], reward_r[ok]), True, ctx, "pairs", details)]


def _require(ok: np.ndarray, name: str) -> None:
    if not ok.any():
        raise EvalError(f"metrics: {name}: no pair could be scored (none fits the model's context, or no rows)")


def _is_classifier(model: Any) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "ForSequenceClassification" in type(inner).__name__


def _reward_judge(ctx: EvalContext) -> Any:
    """A reward-model judge (``curate.feedback``'s) over the reward model this metric uses."""
    from curate.feedback.judges import build_judge, reward_judge_over
    from schemas.feedback import JudgeSpec

    runs_root = ctx.extras.get("runs_root", "runs/train")

    def load(ref: str) -> Any:
        if "@" in ref and not Path(ref).exists():  # a registry reference: its run folder
            from train.registry import resolve

            try:
                ref = str(resolve(ref, runs_root))
            except KeyError as e:
                raise EvalError(f"metrics.reward_accuracy.reward_model: {e}") from None
        try:
            return build_judge(JudgeSpec(kind="reward_model", model=ref, batch_size=ctx.batch_size))
        except ValueError as e:  # ModelError: not a reward model, not found
            raise EvalError(str(e).replace("judge.model", "metrics.reward_accuracy.reward_model")) from None

    if ctx.spec.reward_model:
        return load(ctx.spec.reward_model)
    if _is_classifier(ctx.model):
        return reward_judge_over(ctx.model, ctx.tokenizer, {"model": {"spec": ctx.model_ref}}, ctx.batch_size)
    if ctx.model_ref:
        from curate.models.trained import locate_trained

        src = locate_trained(ctx.model_ref, runs_root)
        if src.method == "reward" or src.adapter_task == "SEQ_CLS":
            return load(ctx.model_ref)
    raise EvalError(
        "metrics: reward_accuracy needs a reward model: set `reward_model:` (a reward run or "
        "sequence-classification folder) or evaluate a reward run"
    )


@register
class RewardAccuracy(Metric):
    """Share of pairs where a reward model scores the chosen answer above the rejected one."""

    name = "reward_accuracy"
    kinds = frozenset({"preference"})
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        rows = limited(ctx.rows, ctx.spec.limit, ctx.seed)
        prompts, chosen, rejected = preference_pairs(rows)
        judge = _reward_judge(ctx)

        def items(completions: list[list[dict[str, str]]]) -> list[Any]:
            return [
                (tuple((m["role"], m["content"]) for m in p), c[-1]["content"])
                for p, c in zip(prompts, completions, strict=True)
            ]

        ratings = judge.rate(items(chosen) + items(rejected))
        scores = np.array([np.nan if r.score is None else r.score for r in ratings], dtype=np.float64)
        k = len(prompts)
        sc, sr = scores[:k], scores[k:]
        ok = np.isfinite(sc) & np.isfinite(sr)
        if not ok.any():
            raise EvalError(
                f"metrics: reward_accuracy: no pair could be scored ({'; '.join(r.error or '' for r in ratings[:3])})"
            )
        errors = sorted({r.error for r in ratings if r.error})[:5]
        details = {
            "reward_model": ctx.spec.reward_model or ctx.model_ref,
            "mean_margin": float((sc[ok] - sr[ok]).mean()) if ok.any() else None,
            "skipped": int((~ok).sum()),
            "errors": errors,
        }
        return [value_with_ci(self.name, pair_wins(sc[ok], sr[ok]), True, ctx, "pairs", details)]
