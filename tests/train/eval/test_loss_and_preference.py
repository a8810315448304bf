"""Held-out loss against a hand calculation, batched log-probs against one-at-a-time forwards, and the
preference metrics on real tiny models (plain, with an adapter, with random weights)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from schemas.evaluation import MetricSpec
from train.eval.base import EvalContext, get_metric
from train.eval.logprobs import _render, completion_logprobs

U, A = "user", "assistant"


def _m(role: str, text: str) -> dict[str, str]:
    return {"role": role, "content": text}


@pytest.fixture(scope="module")
def tiny(tiny_lm: Path) -> tuple[object, object]:
    from curate.models.trained import load_trained, locate_trained

    return load_trained(locate_trained(str(tiny_lm)), device="cpu")


def _ctx(model: object, tok: object, rows: pl.DataFrame, kind: str, name: str, **kw: object) -> EvalContext:
    return EvalContext(
        model=model, tokenizer=tok, rows=rows, kind=kind, spec=MetricSpec(name=name, **kw), batch_size=3, bootstrap=200
    )


def _by_hand(
    model: object, tok: object, prompt: list[dict[str, str]], answer: list[dict[str, str]]
) -> tuple[float, int]:
    """Summed log-prob of the answer tokens from one unbatched forward, token by token."""
    ids, start = _render(tok, prompt, answer)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    return sum(float(logp[t - 1, ids[t]]) for t in range(start, len(ids))), len(ids) - start


def test_perplexity_is_exp_of_mean_nll_by_hand(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    rows = pl.DataFrame(
        {
            "messages": [
                [_m(U, "Say something."), _m(A, "The cat sat on the mat.")],
                [_m(U, "And again?"), _m(A, "Dogs bark at night.")],
            ]
        }
    )
    loss, ppl = get_metric("heldout_loss").compute(_ctx(model, tok, rows, "sft", "heldout_loss"))
    parts = [_by_hand(model, tok, m[:1], m[1:]) for m in rows["messages"].to_list()]
    nll = -sum(lp for lp, _ in parts) / sum(n for _, n in parts)
    assert loss.value == pytest.approx(nll, rel=1e-5) and ppl.value == pytest.approx(math.exp(nll), rel=1e-5)
    assert loss.n == 2 and loss.details["tokens"] == sum(n for _, n in parts)
    assert loss.ci_low <= loss.value <= loss.ci_high


def test_every_assistant_turn_is_scored(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    conv = [_m(U, "Hi"), _m(A, "Hello."), _m(U, "Bye"), _m(A, "See you.")]
    [loss, _] = get_metric("heldout_loss").compute(
        _ctx(model, tok, pl.DataFrame({"messages": [conv]}), "sft", "heldout_loss")
    )
    first, second = _by_hand(model, tok, conv[:1], conv[1:2]), _by_hand(model, tok, conv[:3], conv[3:])
    assert loss.details["tokens"] == first[1] + second[1]
    assert loss.value == pytest.approx(-(first[0] + second[0]) / (first[1] + second[1]), rel=1e-5)


def test_batched_logprobs_equal_one_pair_at_a_time(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    prompts = [[_m(U, f"Question number {i} " + "word " * i)] for i in range(7)]
    answers = [[_m(A, "answer " * (7 - i))] for i in range(7)]
    lp, n = completion_logprobs(model, tok, prompts, answers, batch_size=3, max_batch_tokens=64)
    for i in range(7):
        want, count = _by_hand(model, tok, prompts[i], answers[i])
        assert n[i] == count and lp[i] == pytest.approx(want, abs=1e-3)


def _pairs(n: int = 12) -> pl.DataFrame:
    good = [f"The answer to question {i} is {i + 1}." for i in range(n)]
    bad = [f"zq xv {i} wq" for i in range(n)]
    return pl.DataFrame(
        {
            "prompt": [[_m(U, f"What is {i} plus one?")] for i in range(n)],
            "chosen": [[_m(A, g)] for g in good],
            "rejected": [[_m(A, b)] for b in bad],
        }
    )


def test_logprob_win_rate_counts_pairs(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    rows = _pairs()
    raw, norm = get_metric("logprob_win_rate").compute(_ctx(model, tok, rows, "preference", "logprob_win_rate"))
    lp, _ = completion_logprobs(
        model, tok, rows["prompt"].to_list() * 2, rows["chosen"].to_list() + rows["rejected"].to_list()
    )
    assert raw.value == pytest.approx(float(np.mean(lp[:12] > lp[12:])))
    assert raw.n == norm.n == 12 and 0 <= raw.ci_low <= raw.value <= raw.ci_high <= 1


def test_implicit_reward_of_an_untrained_adapter_is_a_coin_with_no_margin(tiny: tuple[object, object]) -> None:
    from peft import LoraConfig, get_peft_model

    model, tok = tiny
    # a fresh LoRA adapter is the identity (B = 0): policy == reference, every margin is 0, no pair is won
    peft = get_peft_model(model, LoraConfig(r=2, target_modules="all-linear", task_type="CAUSAL_LM")).eval()
    [acc] = get_metric("implicit_reward_accuracy").compute(
        _ctx(peft, tok, _pairs(), "preference", "implicit_reward_accuracy")
    )
    peft.unload()
    assert acc.value == 0.0 and acc.details["mean_margin"] == pytest.approx(0.0, abs=1e-4)
    assert acc.details["reference"] == "the base without the adapter"


def test_wrong_kind_is_refused_before_anything_runs() -> None:
    from train.eval.base import EvalError

    with pytest.raises(EvalError, match="logprob_win_rate scores preference records, not sft"):
        get_metric("logprob_win_rate").check("sft")
