"""The critique-and-revise judge (Constitutional AI): a critique against written principles, then a rewrite.

Input: ``(prompt, response)`` items; output: one :class:`Revision` per item, in order. The judge
model is asked twice through the shared request cache: first for every item's critique (the
:data:`curate.feedback.prompts.CRITIQUE` template, one batch), then for every revision (the
:data:`curate.feedback.prompts.REVISE` template with that critique, one batch). The revision is
meant to be published as ``chosen`` with the original as ``rejected``, so it must be usable: a
backend failure (``judge_error: ...``), an empty critique (``empty_critique``), an empty revision
(``empty_revision``), one identical to the original (``unchanged_revision``) or one cut off at
``revise_max_new_tokens`` (``truncated_revision``) is an error with the reason, and the raw texts
(``raw["critique"]``, ``raw["revision"]``) are kept. Give ``revise_max_new_tokens`` at least the
budget the original responses were generated with, or long answers end up truncated.

Example:
    >>> check_revision("Paris.", "The capital of France is Paris.", "stop")
    >>> check_revision("Paris.", " Paris. ", "stop")
    'unchanged_revision'
    >>> format_principles(["Be correct.", "Be brief."])
    '1. Be correct.\\n2. Be brief.'
    >>> # judge = CritiqueReviseJudge(backend, cache, list(DEFAULT_PRINCIPLES))
    >>> # [rev] = judge.revise([((("user", "Capital of France?"),), "Lyon.")])
    >>> # rev.revised, rev.critique   # ('The capital of France is Paris.', 'The response is wrong: ...')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curate.feedback.cache import RequestCache, cached_complete
from curate.feedback.prompts import CRITIQUE, REVISE, prompt_hash
from curate.models.backend import Backend, Completion, Messages, Request


def format_principles(principles: list[str]) -> str:
    """The principles as a numbered list (how both templates show them)."""
    return "\n".join(f"{i}. {p}" for i, p in enumerate(principles, 1))


def check_revision(original: str, revised: str, finish_reason: str | None) -> str | None:
    """Why ``revised`` cannot stand as ``chosen`` against ``original``, or None when it can."""
    if not revised.strip():
        return "empty_revision"
    if revised.strip() == original.strip():
        return "unchanged_revision"
    if finish_reason == "length":
        return "truncated_revision"
    return None


@dataclass
class Revision:
    """One item's critique and revised response, the raw answers, or the failure."""

    critique: str | None
    revised: str | None
    raw: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"critique": self.critique, "revised": self.revised, "raw": self.raw, "error": self.error}


class CritiqueReviseJudge:
    """Rewrites responses to follow written principles; ``revise`` is its one method."""

    kind = "critique_revise"

    def __init__(
        self,
        backend: Backend,
        cache: RequestCache | None,
        principles: list[str],
        max_new_tokens: int = 48,
        revise_max_new_tokens: int = 256,
        critique_template: str | None = None,
        revise_template: str | None = None,
    ) -> None:
        if not principles:
            raise ValueError("judge.principles: critique_revise needs at least one principle")
        self.backend, self.cache = backend, cache
        self.principles = list(principles)
        self.max_new_tokens, self.revise_max_new_tokens = max_new_tokens, revise_max_new_tokens
        self.critique_template = critique_template or CRITIQUE
        self.revise_template = revise_template or REVISE
        self.calls = 0  # requests the model answered (cache hits excluded)

    def identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.backend.identity(),
            "prompt_hash": prompt_hash(self.critique_template, self.revise_template, *self.principles),
            "max_new_tokens": self.max_new_tokens,
            "revise_max_new_tokens": self.revise_max_new_tokens,
        }

    def _ask(self, texts: list[str], max_new_tokens: int) -> list[Completion]:
        reqs = [Request((("user", t),), max_new_tokens, temperature=0.0) for t in texts]
        answers, calls = cached_complete(self.backend, reqs, self.cache)
        self.calls += calls
        return answers

    def revise(self, items: list[tuple[Messages, str]]) -> list[Revision]:
        """Critique then revise each ``(prompt, response)``; one :class:`Revision` per item, in order."""
        rules = format_principles(self.principles)
        prompts = ["\n".join(t for _, t in p) for p, _ in items]
        critiques = self._ask(
            [
                self.critique_template.format(principles=rules, prompt=pt, response=r)
                for pt, (_, r) in zip(prompts, items, strict=True)
            ],
            self.max_new_tokens,
        )
        out: list[Revision | None] = [None] * len(items)
        todo = []
        for i, c in enumerate(critiques):
            raw = {"critique": c.text}
            if not c.ok:
                out[i] = Revision(None, None, raw, f"judge_error: critique: {c.error}")
            elif not c.text.strip():
                out[i] = Revision(None, None, raw, "empty_critique")
            else:
                todo.append(i)
        revisions = self._ask(
            [
                self.revise_template.format(
                    principles=rules, prompt=prompts[i], response=items[i][1], critique=critiques[i].text.strip()
                )
                for i in todo
            ],
            self.revise_max_new_tokens,
        )
        for i, c in zip(todo, revisions, strict=True):
            critique, raw = critiques[i].text.strip(), {"critique": critiques[i].text, "revision": c.text}
            if not c.ok:
                out[i] = Revision(critique, None, raw, f"judge_error: revision: {c.error}")
                continue
            why = check_revision(items[i][1], c.text, c.finish_reason)
            if why == "truncated_revision":
                why += f": stopped at revise_max_new_tokens={self.revise_max_new_tokens}; raise it"
            out[i] = Revision(critique, None if why else c.text.strip(), raw, why)
        return [r if r is not None else Revision(None, None, error="not revised") for r in out]
