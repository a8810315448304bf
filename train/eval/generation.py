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
from train.eval.base import EvalError

Conversation = list[dict[str, str]]


def render_prompt(tok: Any, conv: Conversation) -> str:
    """The prompt text the model sees: its chat template with the assistant turn opened."""
    if tok.chat_template:
        return tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
    return "\n".join(f"{m['role']}: {m['content']}" for m in conv) + "\nassistant:"


def _clean(conv: list[dict[str, Any]]) -> Conversation:
    return [{"role": m["role"], "content": m["content"]} for m in conv]


def prompts_and_references(rows: Any, kind: str) -> tuple[list[Conversation], list[str | None]]:
    """Conversations to answer and their reference answers (None where a row has none).

    - ``sft``: the conversation up to its last assistant turn; reference = that turn;
    - ``alpaca`` (TRL columns ``prompt``/``completion``, or stored ``instruction``/``input``/``output``);
    - ``preference``: the prompt; reference = the chosen answer;
    - ``kto``: the prompt; reference = the completion when its label is desirable.
    Raises :class:`EvalError` for another kind or an SFT row without an assistant turn.
    """
    if kind == "sft":
        prompts, refs = [], []
        for i, conv in enumerate(rows["messages"].to_list()):
            last = max((j for j, m in enumerate(conv) if m["role"] == "assistant"), default=None)
            if last is None or last == 0:
                raise EvalError(f"eval rows: sft row {i} has no assistant turn after a prompt; it cannot be scored")
            prompts.append(_clean(conv[:last]))
            refs.append(conv[last]["content"])
        return prompts, refs
    if kind == "alpaca" and "instruction" in rows.columns:
        inputs = rows["input"].fill_null("").to_list() if "input" in rows.columns else [""] * len(rows)
        prompts = [
            [{"role": "user", "content": f"{ins}\n\n{inp}" if inp.strip() else ins}]
            for ins, inp in zip(rows["instruction"].to_list(), inputs, strict=True)
        ]
        return prompts, list(rows["output"].to_list())
    if kind == "alpaca":  # the runner's TRL columns: prompt/completion message lists
        return [_clean(p) for p in rows["prompt"].to_list()], [c[-1]["content"] for c in rows["completion"].to_list()]
    if kind == "preference":
        return [_clean(p) for p in rows["prompt"].to_list()], [c[-1]["content"] for c in rows["chosen"].to_list()]
    if kind == "kto":
        refs = [
            c[-1]["content"] if ok else None
            for c, ok in zip(rows["completion"].to_list(), rows["label"].to_list(), strict=True)
        ]
        return [_clean(p) for p in rows["prompt"].to_list()], refs
    raise EvalError(f"eval rows: cannot take prompts from {kind} records (use sft, alpaca, preference or kto)")


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
