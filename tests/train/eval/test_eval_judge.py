"""judge_win_rate through the real PairwiseJudge, over a deterministic rule-based backend.

The backend (the same Backend interface as the LLM judges) answers the pairwise prompt by a rule:
the answer with more words of the reference vocabulary wins; on a tie of that count it names the
first-shown answer (a position bias, which the swap must turn into an inconsistent tie). What this
proves: the metric generates with both models, asks both orders, counts wins, losses and ties as the
rule dictates (recomputed here from the generated texts), and reports n, interval and the
longer-answer share. It does not prove that an LLM judge prefers a good model: no reasonable model
generates fast enough on this machine's shared CPU for a test (SmolLM2 took ~30 s per prompt).
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from curate.feedback.pairwise import PairwiseJudge
from curate.models.backend import Completion, Request
from train.eval.generation import generate, prompts_and_references
from train.eval.judge import tally
from train.eval.metrics import get_metric
from train.tiny import _WORDS

TEMPLATE = "Q: {prompt}\n<<A>>{a}<</A>>\n<<B>>{b}<</B>>\nWhich is better, A or B?"
VOCAB = set(_WORDS)


def _score(text: str) -> int:
    return sum(w in VOCAB for w in re.findall(r"[a-z]+", text.lower()))


class RuleBackend:
    """Says ``A`` or ``B`` by :func:`_score`; the first-shown answer on a tie (position bias)."""

    def identity(self) -> dict[str, Any]:
        return {"backend": "rules"}

    def complete(self, requests: list[Request]) -> list[Completion]:
        out = []
        for r in requests:
            text = r.messages[-1][1]
            a = re.search(r"<<A>>(.*?)<</A>>", text, re.S).group(1)
            b = re.search(r"<<B>>(.*?)<</B>>", text, re.S).group(1)
            out.append(Completion(text="B" if _score(b) > _score(a) else "A"))
        return out

    def close(self) -> None:
        pass


def test_judge_win_rate_counts_what_the_rule_decides(tiny, tiny_lm, tmp_path, make_ctx) -> None:
    from curate.models.trained import load_trained, locate_trained
    from train.tiny import build_tiny_model

    other = load_trained(locate_trained(str(build_tiny_model(tmp_path / "other", seed=1))), device="cpu")
    rows = pl.DataFrame({"instruction": [f"Tell me about the {w}." for w in _WORDS[40:46]], "output": ["ok"] * 6})
    judge = PairwiseJudge(RuleBackend(), template=TEMPLATE, logprobs=False)
    spec = {"name": "judge_win_rate", "max_new_tokens": 10, "against": "seed-1"}
    ctx = make_ctx(rows, "alpaca", spec, load_other=lambda ref: other, extras={"judge": judge})
    [v] = get_metric("judge_win_rate").compute(ctx)

    prompts, _ = prompts_and_references(rows, "alpaca")
    mine, theirs = generate(*tiny, prompts, 10, 4), generate(*other, prompts, 10, 4)
    expect = [
        0 if _score(x) > _score(y) else 1 if _score(y) > _score(x) else None for x, y in zip(mine, theirs, strict=True)
    ]
    t = tally(expect, [w is not None for w in expect], [False] * 6, [len(x) for x in mine], [len(y) for y in theirs])
    assert judge.calls == 12  # both orders of every prompt
    assert (v.details["wins"], v.details["losses"], v.details["ties"]) == (t["wins"], t["losses"], t["ties"])
    assert v.details["inconsistent"] == v.details["ties"]  # every tie here is the position bias, undone by the swap
    assert v.value == t["scores"].mean() and v.n == 6 and v.unit == "prompts"
    assert v.ci_low <= v.value <= v.ci_high
    assert v.details["longer_wins_share"] == t["longer_wins_share"]
