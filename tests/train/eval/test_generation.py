"""Evaluation generates exactly as AI feedback does, over the already-loaded model, without touching
the caller's tokenizer; an unanswerable prompt is an error item, not an empty answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.models.backend import Request
from curate.models.hf_backend import TransformersBackend
from train.eval.generation import as_messages, generate, generate_completions

PROMPTS = [
    [{"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "Say hello to the team, please."}],
]


def test_same_answers_as_the_feedback_backend(tiny_lm: Path) -> None:
    loaded = TransformersBackend.load(str(tiny_lm), batch_size=2, device="cpu")
    want = [c.text for c in loaded.complete([Request(as_messages(p), max_new_tokens=6) for p in PROMPTS])]
    tok = loaded.tokenizer
    tok.padding_side = "right"
    got = generate(loaded.model, tok, PROMPTS, max_new_tokens=6, batch_size=2)
    assert got == want and all(isinstance(t, str) for t in got)
    assert tok.padding_side == "right"  # the caller's tokenizer is left as it was


def test_too_long_prompt_is_an_error_item(tiny_lm: Path) -> None:
    loaded = TransformersBackend.load(str(tiny_lm), batch_size=2, device="cpu")
    context = loaded.model.config.max_position_embeddings
    long = [{"role": "user", "content": "word " * (context + 10)}]
    first, second = generate_completions(loaded.model, loaded.tokenizer, [long, PROMPTS[0]], max_new_tokens=4)
    assert not first.ok and "prompt too long" in (first.error or "") and second.ok
    with pytest.raises(ValueError, match="1 of 2 prompts could not be answered"):
        generate(loaded.model, loaded.tokenizer, [long, PROMPTS[0]], max_new_tokens=4)
