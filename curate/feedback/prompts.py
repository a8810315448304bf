"""The judges' prompt templates (Python format strings) and their hashes.

A template's SHA-256 goes into every record it judged (``judge.prompt_hash``) and into the
manifest, so a changed prompt is a different judge. ``curate feedback prompts`` prints them; a
recipe overrides one with ``judge.template`` (same placeholders).

Example:
    >>> PAIRWISE.format(prompt="2+2?", a="4", b="5").splitlines()[0]
    'You are an impartial judge comparing two responses to the same user request.'
    >>> len(prompt_hash(PAIRWISE))
    16
"""

from __future__ import annotations

import hashlib

PAIRWISE = """You are an impartial judge comparing two responses to the same user request.

[Request]
{prompt}

[Response A]
{a}

[Response B]
{b}

Which response is more helpful, honest and harmless? Do not let the order, the length or the style of \
the responses decide. Answer with a single letter, A or B, then one sentence of reason."""

RATING = """You are an impartial judge rating one response to a user request on {aspect}.
A 5 means: {description}

[Request]
{prompt}

[Response]
{response}

Answer with a single digit from 1 (poor) to 5 (excellent) first, then one sentence of rationale."""

CRITIQUE = """Critique the response to the user request against these principles:
{principles}

[Request]
{prompt}

[Response]
{response}

List the ways the response breaks a principle, in two or three sentences."""

REVISE = """Rewrite the response so that it follows every principle and fixes the critique.

Principles:
{principles}

[Request]
{prompt}

[Response]
{response}

[Critique]
{critique}

Write only the improved response."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "pairwise": (PAIRWISE,),
    "rating": (RATING,),
    "critique_revise": (CRITIQUE, REVISE),
    "reward_model": (),
}
"""The default templates of each judge kind, in the order the judge uses them."""


def prompt_hash(*templates: str) -> str:
    """Short SHA-256 of the judge's templates (the ``judge.prompt_hash`` of its records)."""
    return hashlib.sha256("\x00".join(templates).encode()).hexdigest()[:16]
