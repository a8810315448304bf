"""Completion log-probabilities through the chat template, batched: the core of the preference metrics.

Input: a causal LM, its tokenizer, prompts (conversations) and completions (the assistant turn(s) that
follow, as messages or a plain string). Output: per item the summed log-probability of the completion
tokens given the prompt, and how many completion tokens there are. The completion tokens are what the
template renders for ``prompt + completion`` past the rendering of ``prompt`` with the assistant turn
opened (TRL's rule for conversational preference data), so the end-of-turn token counts too.

Batching: items are sorted by length, left-padded (every sequence ends at the right edge, so all
completion tokens lie in the last ``K`` columns and the LM head runs on those only:
``logits_to_keep``), positions are counted from each sequence's first real token (so padding changes
nothing), and one forward scores ``batch_size`` sequences. An item longer than the model's context
gets NaN (counted by the caller), never a truncated score. :func:`naive_completion_logprob` is the
one-sequence-per-forward loop the seeds use, kept as the reference the tests and benchmark compare with.

Example:
    >>> # s, n = completion_logprobs(model, tok, [[{"role": "user", "content": "Hi"}]], ["Hello!"])
    >>> # s[0] < 0 and n[0] >= 2   # "Hello!" plus the end-of-turn token
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.eval.generation import Conversation, render_prompt

Completion = str | list[dict[str, Any]]


def _as_messages(c: Completion) -> Conversation:
    if isinstance(c, str):
        return [{"role": "assistant", "content": c}]
    return [{"role": m["role"], "content": m["content"]} for m in c]


def render_full(tok: Any, conv: Conversation) -> str:
    """The text of a whole conversation (no assistant turn opened after it)."""
    if tok.chat_template:
        return tok.apply_chat_template(conv, tokenize=False)
    return "\n".join(f"{m['role']}: {m['content']}" for m in conv) + (tok.eos_token or "")


def encode(tok: Any, prompts: list[Conversation], completions: list[Completion]) -> list[tuple[list[int], int]]:
    """Per item: the token ids of prompt + completion and where the completion starts.

    The start is the common token prefix of the prompt's and the whole conversation's encodings (a
    template may merge tokens across the boundary; what differs is scored as completion).
    """
    p_texts = [render_prompt(tok, p) for p in prompts]
    f_texts = [render_full(tok, [*p, *_as_messages(c)]) for p, c in zip(prompts, completions, strict=True)]
    p_ids = tok(p_texts, add_special_tokens=False)["input_ids"]
    f_ids = tok(f_texts, add_special_tokens=False)["input_ids"]
    out = []
    for p, f in zip(p_ids, f_ids, strict=True):
        n = min(len(p), len(f) - 1)  # at least one completion token
        a, b = np.asarray(p[:n]), np.asarray(f[:n])
        diff = np.flatnonzero(a != b)
        start = int(diff[0]) if len(diff) else n
        out.append((list(f), max(start, 1)))  # the first token has no prediction to score
    return out


def completion_logprobs(
    model: Any,
    tok: Any,
    prompts: list[Conversation],
    completions: list[Completion],
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """``(sum_logp, n_tokens)`` of each completion given its prompt (NaN / 0 for an item past the context)."""
    import torch

    items = encode(tok, prompts, completions)
    n = len(items)
    sums = np.full(n, np.nan)
    counts = np.zeros(n, dtype=np.int64)
    limit = getattr(model.config, "max_position_embeddings", None)
    ok = [i for i in range(n) if not limit or len(items[i][0]) <= limit]
    order = sorted(ok, key=lambda i: -len(items[i][0]))
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    device = next(model.parameters()).device
    for lo in range(0, len(order), batch_size):
        batch = order[lo : lo + batch_size]
        seqs = [items[i][0] for i in batch]
        comp = np.array([len(items[i][0]) - items[i][1] for i in batch])
        width = max(len(s) for s in seqs)
        keep = int(comp.max()) + 1
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            try:
                logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
            except TypeError:  # a model without logits_to_keep: the full logits, sliced below
                logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
            logits = logits[:, -keep:-1].float()
            labels = ids[:, width - keep + 1 :]
            tok_lp = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
            cols = torch.arange(keep - 1, device=device)
            scored = cols.unsqueeze(0) >= torch.tensor(keep - 1 - comp, device=device).unsqueeze(1)
            total = (tok_lp * scored).sum(-1).cpu().numpy()
        sums[batch] = total
        counts[batch] = comp
    return sums, counts


def naive_completion_logprob(model: Any, tok: Any, prompt: Conversation, completion: Completion) -> tuple[float, int]:
    """One item, one unpadded forward over the full vocabulary: the seeds' per-pair reference."""
    import torch

    (ids, start), *_ = encode(tok, [prompt], [completion])
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=x).logits[0, :-1].float(), dim=-1)
        tok_lp = logp.gather(-1, x[0, 1:].unsqueeze(-1)).squeeze(-1)
    return float(tok_lp[start - 1 :].sum()), len(ids) - start
