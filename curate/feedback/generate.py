"""Candidate responses: ``n`` per prompt from each generator, through the request cache.

Candidate ``i`` of a generator uses ``seed + i`` (so its ``n`` samples differ and a rerun reproduces
them); the generator's ``system`` message, when set, is prepended. Each generator's requests go to
its backend in one call (the in-process backend batches them; an endpoint sends them
concurrently), answered from the cache where a request was seen before. A request that fails
(after the backend's retries) is a candidate with ``error`` and whatever raw text came back: the
caller quarantines it, and the prompt goes on with its other candidates.

Example:
    >>> # cands, calls = generate(prompts, spec.generators, {g.name: build_backend(g) for g in spec.generators}, cache)
    >>> # [c.generator for c in cands[0]] -> ['smol', 'smol']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from curate.feedback.cache import RequestCache, cached_complete
from curate.feedback.inputs import Prompt
from curate.models.backend import Backend, Request
from schemas.feedback import GeneratorSpec


@dataclass(frozen=True)
class Candidate:
    """One response to a prompt: who wrote it (a generator, or ``input``: the record's own)."""

    generator: str
    text: str
    seed: int | None = None
    error: str | None = None
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def requests_for(prompt: Prompt, g: GeneratorSpec) -> list[Request]:
    """The ``g.n`` requests generator ``g`` answers for ``prompt``."""
    messages = ((("system", g.system),) if g.system else ()) + prompt.messages
    return [
        Request(messages, max_new_tokens=g.max_new_tokens, temperature=g.temperature, top_p=g.top_p, seed=g.seed + i)
        for i in range(g.n)
    ]


def generate(
    prompts: list[Prompt],
    generators: list[GeneratorSpec],
    backends: dict[str, Backend],
    cache: RequestCache | None,
) -> tuple[list[list[Candidate]], int]:
    """Candidates per prompt (the record's own responses first, then each generator's in order).

    Prompts with a ``reason`` (no user turn) get no requests. Returns the candidates and the
    number of requests that reached a model (the rest came from ``cache``).
    """
    out: list[list[Candidate]] = [[Candidate("input", r) for r in p.responses] for p in prompts]
    calls = 0
    live = [i for i, p in enumerate(prompts) if p.reason is None]
    for g in generators:
        reqs = [(i, r) for i in live for r in requests_for(prompts[i], g)]
        answers, n = cached_complete(backends[g.name], [r for _, r in reqs], cache)
        calls += n
        for (i, r), c in zip(reqs, answers, strict=True):
            out[i].append(Candidate(g.name, c.text, r.seed, c.error, c.finish_reason))
    return out, calls
