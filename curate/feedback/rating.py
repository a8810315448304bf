"""The rating judge: one response per call and aspect, a 1-5 score with a rationale.

Each (response, aspect) is one request whose answer starts with a digit. With the log-probs of
the tokens ``1``..``5`` the score is their expected value (renormalized over the five), which
separates responses more finely than the argmax; without them it is the first digit 1-5 of the
text. A response's score is the mean over the recipe's aspects. An answer with no digit, or a
backend error, fails that response with the raw text and reason.

Example:
    >>> parse_rating("4 - clear and correct.")
    4
    >>> parse_rating("Score: 7") is None
    True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from curate.feedback.cache import RequestCache, cached_complete
from curate.feedback.prompts import RATING, prompt_hash
from curate.models.backend import Backend, Completion, Messages, Request
from schemas.feedback import DEFAULT_ASPECTS

_DIGIT = re.compile(r"(?<![0-9])([1-5])(?![0-9])")
_SCALE = ("1", "2", "3", "4", "5")


def parse_rating(text: str) -> int | None:
    """The first standalone digit 1-5 of a judge's answer, else None."""
    head = text.strip()[:200]
    if re.search(r"(?<![0-9])[06-9](?![0-9])", head.split("\n", 1)[0][:20]):
        return None  # "7/10"-style answers are off the scale, not a 1-5 rating
    m = _DIGIT.search(head)
    return int(m.group(1)) if m else None


def _score(c: Completion, use_logprobs: bool) -> float | None:
    if use_logprobs and c.choice_logprobs:
        lps = [c.choice_logprobs.get(s, -math.inf) for s in _SCALE]
        top = max(lps)
        if top > -math.inf:
            w = [math.exp(lp - top) for lp in lps]
            return sum((i + 1) * x for i, x in enumerate(w)) / sum(w)
    r = parse_rating(c.text)
    return None if r is None else float(r)


@dataclass
class Rating:
    """A response's scores per aspect, their mean (``score``), the raw answers, or the failure."""

    score: float | None
    aspects: dict[str, float] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    error: str | None = None


class RatingJudge:
    """Scores single responses on named aspects; ``rate`` is its one method."""

    kind = "rating"

    def __init__(
        self,
        backend: Backend,
        cache: RequestCache | None = None,
        aspects: dict[str, str] | None = None,
        template: str | None = None,
        logprobs: bool = True,
        max_new_tokens: int = 48,
    ) -> None:
        self.backend, self.cache = backend, cache
        self.aspects = dict(aspects or DEFAULT_ASPECTS)
        self.template = template or RATING
        self.logprobs, self.max_new_tokens = logprobs, max_new_tokens
        self.calls = 0

    def identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.backend.identity(),
            "prompt_hash": prompt_hash(self.template, *(f"{k}={v}" for k, v in sorted(self.aspects.items()))),
        }

    def rate(self, items: list[tuple[Messages, str]]) -> list[Rating]:
        """Score each ``(prompt, response)``; one :class:`Rating` per item, in order."""
        names = list(self.aspects)
        reqs = []
        for prompt, response in items:
            ptext = "\n".join(t for _, t in prompt)
            for a in names:
                text = self.template.format(
                    aspect=a.replace("_", " "), description=self.aspects[a], prompt=ptext, response=response
                )
                choices = _SCALE if self.logprobs else ()
                reqs.append(Request((("user", text),), self.max_new_tokens, temperature=0.0, choices=choices))
        answers, calls = cached_complete(self.backend, reqs, self.cache)
        self.calls += calls
        out = []
        for i in range(len(items)):
            got = dict(zip(names, answers[i * len(names) : (i + 1) * len(names)], strict=True))
            raw = {a: c.text for a, c in got.items()}
            failed = next((f"{a}: {c.error}" for a, c in got.items() if not c.ok), None)
            if failed:
                out.append(Rating(None, raw=raw, error=f"judge_error: {failed}"))
                continue
            scores = {a: _score(c, self.logprobs) for a, c in got.items()}
            missing = [a for a, s in scores.items() if s is None]
            if missing:
                out.append(Rating(None, raw=raw, error=f"unparsable_rating: {', '.join(missing)}"))
                continue
            vals = {a: round(s, 4) for a, s in scores.items() if s is not None}
            out.append(Rating(round(sum(vals.values()) / len(vals), 4), vals, raw))
        return out
