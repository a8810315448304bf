"""BLEU and ROUGE-L: the libraries' documented examples by hand, and a generated run on the tiny model."""

from __future__ import annotations

import polars as pl
import pytest
import sacrebleu

from train.eval.base import EvalError
from train.eval.generation import generate, prompts_and_references
from train.eval.metrics import get_metric
from train.eval.overlap import corpus_bleu_ci, rouge_l_scores


def test_bleu_matches_sacrebleu_readme_example() -> None:
    # sacrebleu's README: two reference streams; corpus BLEU = 48.53
    refs = [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ]
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    per_item = [list(r) for r in zip(*refs, strict=True)]
    value, lo, hi = corpus_bleu_ci(hyps, per_item, resamples=300, seed=0)
    assert round(value, 2) == 48.53 == round(sacrebleu.corpus_bleu(hyps, refs).score, 2)
    assert lo <= value <= hi and hi - lo > 1  # a real spread from resampling 3 items


def test_rouge_l_by_hand_on_rouge_score_readme_example() -> None:
    # LCS of "the quick brown fox jump over the lazi dog" (9) and "the quick brown dog jump on the log" (8)
    # is "the quick brown jump the" (5): P = 5/8, R = 5/9, F = 2*5/(8+9)
    [[p, r, f]] = rouge_l_scores(
        ["The quick brown dog jumps on the log."], ["The quick brown fox jumps over the lazy dog"]
    )
    assert (p, r) == pytest.approx((5 / 8, 5 / 9)) and f == pytest.approx(10 / 17)


def test_prompts_and_references_per_kind() -> None:
    sft = pl.DataFrame(
        {
            "messages": [
                [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                    {"role": "assistant", "content": "d"},
                ]
            ]
        }
    )
    prompts, refs = prompts_and_references(sft, "sft")
    assert [m["content"] for m in prompts[0]] == ["a", "b", "c"] and refs == ["d"]
    with pytest.raises(EvalError, match="no assistant turn"):
        prompts_and_references(pl.DataFrame({"messages": [[{"role": "user", "content": "a"}]]}), "sft")


def test_generated_bleu_and_rouge_on_tiny_model(tiny, make_ctx) -> None:
    model, tok = tiny
    rows = pl.DataFrame(
        {
            "instruction": [f"What is {w}?" for w in ("water", "the sun", "a cat", "a tree", "python")],
            "input": ["", "", "sky", "", ""],
            "output": ["Water is wet.", "The sun is hot.", "A cat is small.", "A tree is big.", "Python is code."],
        }
    )
    ctx = make_ctx(rows, "alpaca", {"name": "bleu", "max_new_tokens": 12})
    [bleu] = get_metric("bleu").compute(ctx)
    [rouge] = get_metric("rouge_l").compute(
        make_ctx(rows, "alpaca", {"name": "rouge_l", "max_new_tokens": 12}, extras=ctx.extras)
    )
    prompts, refs = prompts_and_references(rows, "alpaca")
    hyps = generate(model, tok, prompts, 12, batch_size=1)  # unbatched: left padding must change nothing
    assert hyps == next(iter(ctx.extras["generations"].values()))
    assert bleu.value == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert bleu.n == rouge.n == 5 and bleu.ci_low <= bleu.value <= bleu.ci_high
    assert rouge.value == pytest.approx(rouge_l_scores(hyps, refs)[:, 2].mean())


def test_bleu_refuses_preference_rows(make_ctx) -> None:
    with pytest.raises(EvalError, match="scores alpaca, sft records"):
        get_metric("bleu").check("preference")
