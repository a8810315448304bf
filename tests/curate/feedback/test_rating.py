"""The rating judge: digits or log-probs to scores, the mean over aspects, failures kept raw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.feedback.rating import RatingJudge, parse_rating
from curate.models.backend import Completion, Request
from curate.models.hf_backend import TransformersBackend


class Scripted:
    """A judge model that answers each aspect with a fixed text (to check the parsing and the mean)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def identity(self) -> dict[str, Any]:
        return {"backend": "scripted"}

    def complete(self, requests: list[Request]) -> list[Completion]:
        out = []
        for r in requests:
            aspect = next(a for a in self.answers if a.replace("_", " ") in r.messages[0][1].split("\n", 1)[0])
            out.append(Completion(text=self.answers[aspect]))
        return out


def test_mean_over_aspects() -> None:
    judge = RatingJudge(
        Scripted({"helpfulness": "4 good", "honesty": "2 invents a date"}),
        aspects={"helpfulness": "h", "honesty": "o"},
        logprobs=False,
    )
    [r] = judge.rate([((("user", "q"),), "answer")])
    assert r.error is None and r.aspects == {"helpfulness": 4.0, "honesty": 2.0} and r.score == 3.0
    assert r.raw["honesty"] == "2 invents a date"


def test_an_unparsable_aspect_fails_the_response_with_its_raw_text() -> None:
    judge = RatingJudge(
        Scripted({"helpfulness": "great!", "honesty": "3"}),
        aspects={"helpfulness": "h", "honesty": "o"},
        logprobs=False,
    )
    [r] = judge.rate([((("user", "q"),), "answer")])
    assert r.score is None and r.error == "unparsable_rating: helpfulness" and r.raw["helpfulness"] == "great!"


def test_parse_rating() -> None:
    assert parse_rating("5") == 5 and parse_rating("Rating: 3. Fine.") == 3
    assert parse_rating("7/10") is None and parse_rating("none") is None


def test_log_probs_give_an_expected_score_on_a_real_model(tiny_lm: Path) -> None:
    judge = RatingJudge(TransformersBackend.load(str(tiny_lm)), aspects={"helpfulness": "h"})
    [r] = judge.rate([((("user", "what is the sky"),), "blue")])
    assert r.error is None and r.score is not None and 1.0 <= r.score <= 5.0
    assert judge.calls == 1
