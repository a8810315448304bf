"""Answers of the model under evaluation to chat prompts: greedy, batched, through its chat template.

Input: a loaded model and tokenizer (an adapter stays on its base), prompts as chat messages
(``[{"role": "user", "content": ...}, ...]``), a token budget. Output: one
:class:`curate.models.backend.Completion` per prompt, in order (``error`` set for a prompt that
cannot be answered, e.g. longer than the context: such items are left out of a metric and counted,
never scored as an empty answer). Generation is the in-process backend's own
(:class:`curate.models.hf_backend.TransformersBackend` over the already-loaded model), so AI feedback
and evaluation decode the same way.

Example:
    >>> # texts = generate(model, tok, [[{"role": "user", "content": "Hi"}]], max_new_tokens=16)
    >>> as_messages([{"role": "user", "content": "Hi"}])
    (('user', 'Hi'),)
"""

from __future__ import annotations

from typing import Any

from curate.models.backend import Completion, Messages, Request


def as_messages(prompt: list[dict[str, str]]) -> Messages:
    """A chat prompt as the hashable messages a :class:`Request` carries."""
    return tuple((m["role"], m["content"]) for m in prompt)


def generate_completions(
    model: Any,
    tok: Any,
    prompts: list[list[dict[str, str]]],
    max_new_tokens: int = 128,
    batch_size: int = 8,
    seed: int = 0,
) -> list[Completion]:
    """Greedy completions of ``prompts`` (left-padded batches of similar length)."""
    from curate.models.hf_backend import TransformersBackend

    backend = TransformersBackend.wrap(model, tok, batch_size=batch_size)
    return backend.complete([Request(as_messages(p), max_new_tokens=max_new_tokens, seed=seed) for p in prompts])


def generate(
    model: Any,
    tok: Any,
    prompts: list[list[dict[str, str]]],
    max_new_tokens: int = 128,
    batch_size: int = 8,
    seed: int = 0,
) -> list[str]:
    """The texts of :func:`generate_completions`; raises ``ValueError`` naming the first failed prompt."""
    out = generate_completions(model, tok, prompts, max_new_tokens, batch_size, seed)
    failed = [(i, c.error) for i, c in enumerate(out) if not c.ok]
    if failed:
        raise ValueError(
            f"{len(failed)} of {len(out)} prompts could not be answered; first: #{failed[0][0]}: {failed[0][1]}"
        )
    return [c.text for c in out]
