"""Position swap: it changes nothing for an order-consistent judge and turns a biased one's verdicts
into ties; unparsable answers and backend errors are failures with the raw text, never guesses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.feedback.cache import RequestCache
from curate.feedback.pairwise import PairwiseJudge, parse_verdict
from curate.models.backend import Completion, Request
from curate.models.hf_backend import TransformersBackend


class RuleJudge:
    """A judge model with a known rule, to prove what the swap does: ``first`` always answers A
    (position bias), ``longer`` names whichever shown response is longer (order-consistent)."""

    def __init__(self, rule: str) -> None:
        self.rule = rule

    def identity(self) -> dict[str, Any]:
        return {"backend": "rule", "rule": self.rule}

    def complete(self, requests: list[Request]) -> list[Completion]:
        out = []
        for r in requests:
            text = r.messages[-1][1]
            a = text.split("[Response A]\n", 1)[1].split("\n\n[Response B]", 1)[0]
            b = text.split("[Response B]\n", 1)[1].split("\n\nWhich response", 1)[0]
            if self.rule == "first":
                out.append(Completion(text="A"))
            elif self.rule == "longer":
                out.append(Completion(text="A" if len(a) >= len(b) else "B"))
            else:
                out.append(Completion(text="I cannot decide between them."))
        return out


PAIRS = [((("user", "q1"),), "short", "a much longer answer"), ((("user", "q2"),), "long enough answer", "tiny")]


def test_swap_changes_nothing_for_a_consistent_judge() -> None:
    with_swap = PairwiseJudge(RuleJudge("longer")).compare(PAIRS)
    without = PairwiseJudge(RuleJudge("longer"), swap=False).compare(PAIRS)
    assert [c.winner for c in with_swap] == [c.winner for c in without] == [1, 0]
    assert all(c.consistent for c in with_swap)


def test_swap_turns_a_position_biased_judge_into_ties() -> None:
    unswapped = PairwiseJudge(RuleJudge("first"), swap=False).compare(PAIRS)
    assert [c.winner for c in unswapped] == [0, 0]  # without the swap the bias passes as verdicts
    swapped = PairwiseJudge(RuleJudge("first")).compare(PAIRS)
    assert [c.winner for c in swapped] == [None, None]
    assert all(not c.consistent and c.error is None and c.verdicts == ("A", "A") for c in swapped)


def test_unparsable_answers_are_failures_with_raw_text() -> None:
    [c] = PairwiseJudge(RuleJudge("vague")).compare(PAIRS[:1])
    assert c.winner is None and c.error == "unparsable_verdict"
    assert c.raw == ["I cannot decide between them."] * 2


def test_parse_verdict() -> None:
    assert parse_verdict("[[B]]") == "B" and parse_verdict("Answer: A") == "A"
    assert parse_verdict("Assistant A is better") == "A"
    assert parse_verdict("ABBA") is None and parse_verdict("") is None


def test_a_real_model_judges_with_log_probs(tiny_lm: Path, tmp_path: Path) -> None:
    judge = PairwiseJudge(TransformersBackend.load(str(tiny_lm)), RequestCache(tmp_path / "c.sqlite"))
    out = judge.compare(PAIRS)
    # log-probs always give a verdict per order: a consistent one carries a confidence in [0.5, 1]
    for c in out:
        assert c.error is None and c.verdicts[0] in ("A", "B") and c.verdicts[1] in ("A", "B")
        assert (c.confidence is not None and 0.5 <= c.confidence <= 1) if c.consistent else c.winner is None
    assert judge.calls == 4
    again = PairwiseJudge(TransformersBackend.load(str(tiny_lm)), RequestCache(tmp_path / "c.sqlite"))
    assert [c.winner for c in again.compare(PAIRS)] == [c.winner for c in out] and again.calls == 0
    assert again.identity()["prompt_hash"] == judge.identity()["prompt_hash"]
