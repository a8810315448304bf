"""BLEU and ROUGE-L of generated answers against the references, with ``sacrebleu`` and ``rouge-score``.

Both metrics generate greedy answers (:func:`train.eval.generation.generate`, ``max_new_tokens`` from
the spec) to the eval rows' prompts and compare them with the rows' reference answers (sft: the last
assistant turn; alpaca: the output; see :func:`train.eval.generation.prompts_and_references`). The
libraries are called directly (HF ``evaluate.load`` fetches metric code from the hub):

- ``bleu``: ``sacrebleu`` corpus BLEU (0-100, its default 13a tokenizer and exp smoothing). Its
  interval resamples items and recomputes corpus BLEU from the resampled items' summed n-gram
  statistics (corpus BLEU is not a mean of sentence BLEUs);
- ``rouge_l``: the mean ROUGE-L F-measure of ``RougeScorer(["rougeL"], use_stemmer=True)`` (target
  first), its interval over items.

Answers are generated once per context and ``max_new_tokens`` (``ctx.extras["generations"]``), so a
spec asking for both metrics generates once.

Example:
    >>> round(corpus_bleu_ci(["the cat sat on the mat"], [["the cat sat on the mat"]], 100, 0)[0], 1)
    100.0
    >>> rouge_l_scores(["the cat"], ["the cat"])[:, 2].tolist()
    [1.0]
"""

from __future__ import annotations

import numpy as np

from schemas.evaluation import MetricValue
from train.eval.base import EvalContext, EvalError, Metric, register, value_with_ci
from train.eval.generation import generate, prompts_and_references
from train.eval.pairs import limited

KINDS = frozenset({"sft", "alpaca"})


def bleu_stats(hyps: list[str], refs: list[list[str]]) -> np.ndarray:
    """Per item sacrebleu's sufficient statistics: ``[hyp_len, ref_len, correct_1..4, total_1..4]``."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU()
    out = np.zeros((len(hyps), 10), dtype=np.int64)
    for i, (h, r) in enumerate(zip(hyps, refs, strict=True)):
        s = bleu.sentence_score(h, r)
        out[i] = [s.sys_len, s.ref_len, *s.counts, *s.totals]
    return out


def bleu_from_stats(stats: np.ndarray) -> float:
    """Corpus BLEU of summed statistics (sacrebleu's formula, its corpus-level exp smoothing)."""
    from sacrebleu.metrics import BLEU

    s = [int(x) for x in stats]
    return float(BLEU.compute_bleu(s[2:6], s[6:10], s[0], s[1], smooth_method="exp").score)


def corpus_bleu_ci(hyps: list[str], refs: list[list[str]], resamples: int, seed: int) -> tuple[float, float, float]:
    """``(bleu, ci_low, ci_high)``: corpus BLEU of ``hyps`` against ``refs`` (references per item) and
    its bootstrap 95% interval over items."""
    stats = bleu_stats(hyps, refs)
    value = bleu_from_stats(stats.sum(0))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(stats), size=(resamples, len(stats)))
    sums = stats[idx].sum(1)  # resamples x 10: each resample's corpus statistics
    boot = np.array([bleu_from_stats(row) for row in sums])
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return value, float(lo), float(hi)


def rouge_l_scores(hyps: list[str], refs: list[str]) -> np.ndarray:
    """Per item ROUGE-L ``[precision, recall, f-measure]`` (rouge-score, stemmed, target first)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    out = np.zeros((len(hyps), 3))
    for i, (h, r) in enumerate(zip(hyps, refs, strict=True)):
        s = scorer.score(r, h)["rougeL"]
        out[i] = [s.precision, s.recall, s.fmeasure]
    return out


def answers(ctx: EvalContext) -> tuple[list[str], list[str], int]:
    """Generated answers and references of the rows with a reference, and how many rows had none."""
    rows = limited(ctx.rows, ctx.spec.limit, ctx.seed)
    prompts, refs = prompts_and_references(rows, ctx.kind)
    keep = [i for i, r in enumerate(refs) if r is not None]
    if not keep:
        raise EvalError(f"metrics: {ctx.spec.name} found no reference answers in the {ctx.kind} eval rows")
    cache = ctx.extras.setdefault("generations", {})
    key = (ctx.spec.max_new_tokens, ctx.spec.limit, len(rows))
    if key not in cache:
        cache[key] = generate(
            ctx.model, ctx.tokenizer, [prompts[i] for i in keep], ctx.spec.max_new_tokens, ctx.batch_size, ctx.seed
        )
    return cache[key], [refs[i] for i in keep], len(refs) - len(keep)


@register
class Bleu(Metric):
    """Corpus BLEU (sacrebleu) of generated answers against the references."""

    name = "bleu"
    kinds = KINDS
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        hyps, refs, missing = answers(ctx)
        value, lo, hi = corpus_bleu_ci(hyps, [[r] for r in refs], ctx.bootstrap, ctx.seed)
        details = {
            "tokenizer": "13a",
            "no_reference": missing,
            "examples": [{"answer": h, "reference": r} for h, r in zip(hyps[:3], refs[:3], strict=True)],
        }
        return [
            MetricValue(
                metric=self.name,
                value=value,
                n=len(hyps),
                unit="rows",
                ci_low=lo,
                ci_high=hi,
                higher_is_better=True,
                details=details,
            )
        ]


@register
class RougeL(Metric):
    """Mean ROUGE-L F-measure (rouge-score, stemmed) of generated answers against the references."""

    name = "rouge_l"
    kinds = KINDS
    higher_is_better = True

    def compute(self, ctx: EvalContext) -> list[MetricValue]:
        hyps, refs, missing = answers(ctx)
        scores = rouge_l_scores(hyps, refs)
        details = {
            "precision": float(scores[:, 0].mean()),
            "recall": float(scores[:, 1].mean()),
            "no_reference": missing,
        }
        return [value_with_ci(self.name, scores[:, 2], True, ctx, unit="rows", details=details)]
