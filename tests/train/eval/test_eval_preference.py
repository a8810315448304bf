"""Preference metrics on the tiny model: batched log-probs equal the one-at-a-time loop, win rates
equal a hand count, implicit rewards with the adapter off, reward accuracy flips with the labels, and
a random-weights model sits near 0.5 on real OpenAssistant preferences."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from train.eval.base import EvalError
from train.eval.logprobs import completion_logprobs, naive_completion_logprob
from train.eval.metrics import get_metric


def _m(role: str, content: str) -> list[dict[str, str]]:
    return [{"role": role, "content": content}]


def _pairs(n: int = 8) -> pl.DataFrame:
    words = ["water", "sun", "moon", "cat", "dog", "tree", "house", "car", "city", "river", "book", "code"]
    return pl.DataFrame(
        {
            "prompt": [_m("user", f"What is the {words[i % 12]}?") for i in range(n)],
            "chosen": [_m("assistant", f"The {words[i % 12]} is good." + " yes" * (i % 3)) for i in range(n)],
            "rejected": [_m("assistant", f"No {words[(i + 5) % 12]} " * (1 + i % 4)) for i in range(n)],
        }
    )


def test_batched_logprobs_equal_the_per_item_loop(tiny) -> None:
    model, tok = tiny
    rows = _pairs()
    prompts = [*rows["prompt"].to_list(), [*_m("user", "hi"), *_m("assistant", "hello"), *_m("user", "and the sun?")]]
    comps = [c for c in rows["chosen"].to_list()] + ["The sun is hot."]
    s, n = completion_logprobs(model, tok, prompts, comps, batch_size=3)
    for i in range(len(prompts)):
        ref, k = naive_completion_logprob(model, tok, prompts[i], comps[i])
        assert s[i] == pytest.approx(ref, abs=1e-3) and n[i] == k > 1


def test_logprob_win_rate_is_the_hand_count(tiny, make_ctx) -> None:
    model, tok = tiny
    rows = _pairs()
    raw, norm = get_metric("logprob_win_rate").compute(make_ctx(rows, "preference", {"name": "logprob_win_rate"}))
    hand = [
        (naive_completion_logprob(model, tok, p, c), naive_completion_logprob(model, tok, p, r))
        for p, c, r in zip(rows["prompt"].to_list(), rows["chosen"].to_list(), rows["rejected"].to_list(), strict=True)
    ]
    assert raw.value == pytest.approx(np.mean([c[0] > r[0] for c, r in hand]))
    assert norm.value == pytest.approx(np.mean([c[0] / c[1] > r[0] / r[1] for c, r in hand]))
    assert raw.n == norm.n == 8 and raw.unit == "pairs" and raw.ci_low <= raw.value <= raw.ci_high


def test_implicit_reward_accuracy_with_adapter_disabled(tiny, make_ctx) -> None:
    from peft import LoraConfig, get_peft_model

    model, tok = tiny
    import copy

    policy = get_peft_model(
        copy.deepcopy(model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    ).eval()
    rows = _pairs()
    [acc] = get_metric("implicit_reward_accuracy").compute(
        make_ctx(rows, "preference", {"name": "implicit_reward_accuracy"}, model=(policy, tok))
    )
    wins = []
    for p, c, r in zip(rows["prompt"].to_list(), rows["chosen"].to_list(), rows["rejected"].to_list(), strict=True):
        pc, pr = naive_completion_logprob(policy, tok, p, c)[0], naive_completion_logprob(policy, tok, p, r)[0]
        with policy.disable_adapter():
            rc, rr = naive_completion_logprob(policy, tok, p, c)[0], naive_completion_logprob(policy, tok, p, r)[0]
        wins.append((pc - rc) > (pr - rr))
    assert acc.value == pytest.approx(np.mean(wins)) and acc.details["beta"] == 0.1
    # the same model as its own reference: every margin is 0, every pair a tie
    [same] = get_metric("implicit_reward_accuracy").compute(
        make_ctx(
            rows, "preference", {"name": "implicit_reward_accuracy", "against": "self"}, load_other=lambda ref: tiny
        )
    )
    assert same.value == 0.5 and same.details["mean_margin"] == 0.0
    with pytest.raises(EvalError, match="reference model"):
        get_metric("implicit_reward_accuracy").compute(
            make_ctx(rows, "preference", {"name": "implicit_reward_accuracy"})
        )


def test_reward_accuracy_flips_with_the_labels(tiny_lm, make_ctx) -> None:
    from curate.models.trained import load_trained, locate_trained

    rm, tok = load_trained(locate_trained(str(tiny_lm)), task="seq_cls", device="cpu")
    rows = _pairs()
    [a] = get_metric("reward_accuracy").compute(
        make_ctx(rows, "preference", {"name": "reward_accuracy"}, model=(rm, tok))
    )
    swapped = rows.rename({"chosen": "rejected", "rejected": "chosen"})
    [b] = get_metric("reward_accuracy").compute(
        make_ctx(swapped, "preference", {"name": "reward_accuracy"}, model=(rm, tok))
    )
    assert a.n == b.n == 8 and a.value + b.value == pytest.approx(1.0)
    assert 0.0 < a.value < 1.0 or a.details["mean_margin"] != 0  # a real classifier's scores, not constants
    with pytest.raises(EvalError, match="needs a reward model"):
        get_metric("reward_accuracy").compute(make_ctx(rows, "preference", {"name": "reward_accuracy"}))


def test_random_model_logprob_win_rate_near_half_on_oasst(tiny, make_ctx, shared_file) -> None:
    """Random weights know nothing of quality: the length-normalized win rate's interval holds 0.5."""
    rows = []
    for line in shared_file("oasst_en_100_tree.jsonl").read_text(encoding="utf-8").splitlines():
        root = json.loads(line)["prompt"]
        replies = sorted((r for r in root.get("replies", []) if r.get("rank") is not None), key=lambda r: r["rank"])
        if len(replies) >= 2:
            rows.append(
                {
                    "prompt": _m("user", root["text"][:300]),
                    "chosen": _m("assistant", replies[0]["text"][:300]),
                    "rejected": _m("assistant", replies[-1]["text"][:300]),
                }
            )
    df = pl.DataFrame(rows[:60])
    _raw, norm = get_metric("logprob_win_rate").compute(make_ctx(df, "preference", {"name": "logprob_win_rate"}))
    assert norm.n >= 40
    assert norm.ci_low <= 0.5 <= norm.ci_high, norm.interval()
