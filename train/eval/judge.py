"""Judge win rate: the model and another (the champion, a reference) answer the same prompts, and a
pairwise judge compares each pair in both orders (a verdict that flips with the order is a tie).

Input: eval rows of any kind :func:`train.eval.generation.prompts_and_references` reads, the spec's
``judge`` (a pairwise :class:`schemas.feedback.JudgeSpec`, built with
:func:`curate.feedback.judges.build_judge`) and ``against`` (loaded through ``ctx.load_other``; None
lets the runner choose, the champion by default). A caller may hand a ready judge object with a
``compare(pairs)`` method as ``ctx.extras["judge"]`` (tests use a rule-based backend that way).

Output: ``judge_win_rate`` = (wins + 0.5 * ties) / judged prompts, with a bootstrap interval over
prompts; ``details`` holds wins, losses, ties (of which order-inconsistent), failed comparisons
(judge errors, unparsable verdicts: left out of n, never counted as ties), the decisive win rate
wins / (wins + losses), and ``longer_wins_share``: of the decisive verdicts between answers of
different lengths, the share the longer answer won (a judge near 1.0 there may be rewarding length).

Example (YAML):
    eval:
      metrics:
        - {name: judge_win_rate, against: quickstart-sft@champion, max_new_tokens: 96,
           judge: {kind: pairwise, endpoint: {base_url: "http://127.0.0.1:8000/v1", model: judge}}}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schemas.evaluation import MetricValue
from train.eval.base import EvalContext, EvalError, Metric, register, value_with_ci
from train.eval.generation import generate, prompts_and_references
from train.eval.pairs import limited


def _judge(ctx: EvalContext) -> Any:
    if "judge" in ctx.extras:
        return ctx.extras["judge"]
    spec = ctx.spec.judge
    if spec is None or spec.kind != "pairwise":
        raise EvalError(
            "metrics: judge_win_rate needs `judge:` of kind pairwise, e.g. "
            "{kind: pairwise, endpoint: {base_url: http://127.0.0.1:8000/v1, model: judge}}"
        )
    from curate.feedback.judges import build_judge

    return build_judge(spec)


def tally(
    winners: list[int | None], consistent: list[bool], failed: list[bool], len_x: list[int], len_y: list[int]
) -> dict[str, Any]:
    """Counts of a judged run (``winner`` 0: x won, 1: y won, None: tie) and per-prompt scores for x.

    Example:
        >>> t = tally([0, 1, None, 0], [True, True, False, True], [False] * 4, [5, 3, 4, 2], [3, 5, 4, 9])
        >>> t["wins"], t["losses"], t["ties"], t["scores"].tolist(), t["longer_wins_share"]
        (2, 1, 1, [1.0, 0.0, 0.5, 1.0], 0.6666666666666666)
    """
    scores, longer = [], []
    wins = losses = ties = inconsistent = n_failed = 0
    for w, c, f, lx, ly in zip(winners, consistent, failed, len_x, len_y, strict=True):
        if f:
            n_failed += 1
            continue
        if w is None:
            ties += 1
            inconsistent += int(not c)
            scores.append(0.5)
            continue
        wins, losses = wins + (w == 0), losses + (w == 1)
        scores.append(1.0 if w == 0 else 0.0)
        if lx != ly:
            longer.append((lx > ly) == (w == 0))
    return {
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "inconsistent": inconsistent,
        "failed": n_failed,
        "decisive_win_rate": wins / (wins + losses) if wins + losses else None,
        "longer_wins_share": float(np.mean(longer)) if longer else None,
        "scores": np.array(scores, dtype=np.float64),
    }


@register
class JudgeWinRate(Metric):
    """Share of prompts where a pairwise judge prefers the model's answer to the other model's (ties half)."""

    name = "judge_win_rate"
    kinds = frozenset({"sft", "alpaca", "preference", "kto"})
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        judge = _judge(ctx)
        if ctx.load_other is None:
            raise EvalError(
                "metrics: judge_win_rate needs a model to compare with: set `against:` (e.g. NAME@champion)"
            )
        rows = limited(ctx.rows, ctx.spec.limit, ctx.seed)
        prompts, _ = prompts_and_references(rows, ctx.kind)
        mine = generate(ctx.model, ctx.tokenizer, prompts, ctx.spec.max_new_tokens, ctx.batch_size, ctx.seed)
        other_model, other_tok = ctx.load_other(ctx.spec.against)
        theirs = generate(other_model, other_tok, prompts, ctx.spec.max_new_tokens, ctx.batch_size, ctx.seed)
        pairs = [
            (tuple((m["role"], m["content"]) for m in p), x, y) for p, x, y in zip(prompts, mine, theirs, strict=True)
        ]
        comps = judge.compare(pairs)
        t = tally(
            [c.winner for c in comps],
            [c.consistent for c in comps],
            [c.error is not None for c in comps],
            [len(x) for x in mine],
            [len(y) for y in theirs],
        )
        scores = t.pop("scores")
        if not len(scores):
            errors = sorted({c.error for c in comps if c.error})[:3]
            raise EvalError(f"metrics: judge_win_rate: every comparison failed ({'; '.join(errors)}); check the judge")
        t["against"] = ctx.spec.against
        t["win_rate_definition"] = "(wins + 0.5 * ties) / judged; decisive_win_rate = wins / (wins + losses)"
        t["examples"] = [
            {"prompt": p[-1]["content"], "model": x, "other": y}
            for p, x, y in zip(prompts[:2], mine[:2], theirs[:2], strict=True)
        ]
        return [value_with_ci(self.name, scores, True, ctx, unit="prompts", details=t)]
