"""The pairwise judge: A vs B asked in both orders; a verdict that flips with the order is a tie.

For each pair the judge is asked twice, (x as A, y as B) and (y as A, x as B). A verdict comes
from the log-probabilities of the tokens ``A``/``B`` at the first position when the backend gives
them (``confidence`` is then the winner's probability, averaged over both orders), else from the
text (the first standalone ``A`` or ``B``; ``[[A]]`` also works). Both orders naming the same
response is a consistent verdict; a flip is recorded as an inconsistent tie. An answer that names
neither, or a backend error, is a failure carrying the raw text and the reason: never a guess.

Example:
    >>> parse_verdict("B. It is more accurate.")
    'B'
    >>> parse_verdict("Both are fine") is None
    True
    >>> combine("A", "B", 0.9, 0.8).winner, combine("A", "A", None, None).consistent
    (0, False)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from curate.feedback.cache import RequestCache, cached_complete
from curate.feedback.prompts import PAIRWISE, prompt_hash
from curate.models.backend import Backend, Completion, Messages, Request

_VERDICT = re.compile(r"\[\[([AB])\]\]|(?<![A-Za-z])([AB])(?![A-Za-z])")


def parse_verdict(text: str) -> str | None:
    """``A`` or ``B`` from a judge's answer (the first standalone letter), else None."""
    m = _VERDICT.search(text.strip()[:400])
    return (m.group(1) or m.group(2)) if m else None


@dataclass
class Comparison:
    """One judged pair: ``winner`` 0 (the first response), 1 (the second) or None (a tie)."""

    winner: int | None
    consistent: bool
    confidence: float | None
    verdicts: tuple[str | None, str | None]
    raw: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "winner": self.winner,
            "consistent": self.consistent,
            "confidence": self.confidence,
            "verdicts": list(self.verdicts),
            "raw": self.raw,
            "error": self.error,
        }


def combine(first: str, second: str | None, p_first: float | None, p_second: float | None) -> Comparison:
    """Merge the verdicts of the two orders (``second`` None: asked once, without the swap).

    ``first`` is the verdict with x shown as A; ``second`` with y shown as A. ``p_*``: the
    probability each order gave its own verdict (None without log-probs).
    """
    x_first = first == "A"
    if second is None:
        return Comparison(0 if x_first else 1, True, p_first, (first, None))
    x_second = second == "B"
    if x_first != x_second:
        return Comparison(None, False, None, (first, second))
    conf = None if p_first is None or p_second is None else (p_first + p_second) / 2
    return Comparison(0 if x_first else 1, True, conf, (first, second))


def _verdict(c: Completion, use_logprobs: bool) -> tuple[str | None, float | None]:
    if use_logprobs and c.choice_logprobs:
        la, lb = c.choice_logprobs.get("A", -math.inf), c.choice_logprobs.get("B", -math.inf)
        if la > -math.inf or lb > -math.inf:
            m = max(la, lb)
            pa = math.exp(la - m) / (math.exp(la - m) + math.exp(lb - m))
            return ("A", pa) if pa >= 0.5 else ("B", 1 - pa)
    return parse_verdict(c.text), None


def _render(prompt: Messages) -> str:
    return "\n".join(text if role == "user" else f"({role}) {text}" for role, text in prompt)


class PairwiseJudge:
    """Judges pairs of responses to the same prompt; ``compare`` is its one method."""

    kind = "pairwise"

    def __init__(
        self,
        backend: Backend,
        cache: RequestCache | None = None,
        template: str | None = None,
        swap: bool = True,
        logprobs: bool = True,
        max_new_tokens: int = 48,
    ) -> None:
        self.backend, self.cache = backend, cache
        self.template = template or PAIRWISE
        self.swap, self.logprobs, self.max_new_tokens = swap, logprobs, max_new_tokens
        self.calls = 0

    def identity(self) -> dict[str, Any]:
        """What identifies this judge in records and manifests."""
        return {"kind": self.kind, "model": self.backend.identity(), "prompt_hash": prompt_hash(self.template)}

    def _request(self, prompt: Messages, a: str, b: str) -> Request:
        text = self.template.format(prompt=_render(prompt), a=a, b=b)
        choices = ("A", "B") if self.logprobs else ()
        return Request((("user", text),), max_new_tokens=self.max_new_tokens, temperature=0.0, choices=choices)

    def compare(self, pairs: list[tuple[Messages, str, str]]) -> list[Comparison]:
        """Judge each ``(prompt, x, y)``; returns one :class:`Comparison` per pair, in order."""
        reqs = [self._request(p, x, y) for p, x, y in pairs]
        if self.swap:
            reqs += [self._request(p, y, x) for p, x, y in pairs]
        answers, calls = cached_complete(self.backend, reqs, self.cache)
        self.calls += calls
        out = []
        n = len(pairs)
        for i in range(n):
            got = [answers[i]] + ([answers[n + i]] if self.swap else [])
            raw = [c.text for c in got]
            failed = next((c.error for c in got if not c.ok), None)
            if failed:
                out.append(Comparison(None, False, None, (None, None), raw, f"judge_error: {failed}"))
                continue
            (v1, p1), *rest = [_verdict(c, self.logprobs) for c in got]
            v2, p2 = rest[0] if rest else (None, None)
            if v1 is None or (self.swap and v2 is None):
                out.append(Comparison(None, False, None, (v1, v2), raw, "unparsable_verdict"))
                continue
            comp = combine(v1, v2 if self.swap else None, p1, p2)
            comp.raw = raw
            out.append(comp)
        return out
