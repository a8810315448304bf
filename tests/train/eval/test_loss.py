"""Held-out loss and perplexity against a hand calculation on the tiny model; kinds are checked first."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
import torch

from schemas.evaluation import MetricSpec
from train.eval.base import EvalContext
from train.eval.logprobs import encode
from train.eval.metrics import get_metric

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
    [(ids, start)] = encode(tok, [prompt], [answer])
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


def test_wrong_kind_is_refused_before_anything_runs() -> None:
    from train.eval.base import EvalError

    with pytest.raises(EvalError, match="logprob_win_rate scores preference records, not sft"):
        get_metric("logprob_win_rate").check("sft")
