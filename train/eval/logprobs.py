"""Log-probabilities of completions given prompts, batched: the core of loss, perplexity and log-prob metrics.

Input: the model, its tokenizer, chat prompts (message lists) and completions (assistant message
lists), rendered through the tokenizer's chat template exactly as TRL renders a conversational
prompt-completion example: the prompt with the assistant turn opened (``add_generation_prompt``),
the completion tokens being whatever the full conversation adds after that prefix. Output: per item,
the summed log-probability of the completion tokens and their count (``(sum_logp, n_tokens)`` as
numpy arrays, in input order).

Items are sorted by length and packed into right-padded batches of at most ``batch_size`` items and
``max_batch_tokens`` tokens (the logits of a batch are items x tokens x vocabulary floats: 2,048
tokens of a 49k vocabulary is 400 MB), one forward per batch, no gradients. An item longer than the
model's context is not truncated (a cut completion would be scored on what it does not say): its
count is 0 and its log-prob NaN, and the caller leaves it out and counts it.

Example:
    >>> # lp, n = completion_logprobs(model, tok, [[{"role": "user", "content": "2+2?"}]],
    >>> #                             [[{"role": "assistant", "content": "4"}]])
    >>> split_turns([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    [([{'role': 'user', 'content': 'a'}], [{'role': 'assistant', 'content': 'b'}])]
"""

from __future__ import annotations

from typing import Any

import numpy as np

Chat = list[dict[str, str]]


def split_turns(messages: Chat) -> list[tuple[Chat, Chat]]:
    """Each assistant turn of a conversation as (everything before it, that turn): assistant-only loss."""
    return [(messages[:i], [m]) for i, m in enumerate(messages) if m["role"] == "assistant" and i > 0]


def _render(tok: Any, prompt: Chat, completion: Chat) -> tuple[list[int], int]:
    """Token ids of prompt + completion and where the completion starts."""
    if tok.chat_template:
        p = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(prompt + completion, tokenize=False)
    else:  # a base model without a template: plain "role: content" lines, as the feedback backend does
        p = "\n".join(f"{m['role']}: {m['content']}" for m in prompt) + "\nassistant:"
        full = p + " " + "\n".join(m["content"] for m in completion)
    p_ids = tok(p, add_special_tokens=False)["input_ids"]
    ids = tok(full, add_special_tokens=False)["input_ids"]
    # templates render the prompt as a prefix of the full conversation; where a tokenizer merges
    # across the boundary, the completion starts at the first token that differs
    start = next((i for i, (a, b) in enumerate(zip(p_ids, ids, strict=False)) if a != b), min(len(p_ids), len(ids)))
    return ids, start


def completion_logprobs(
    model: Any,
    tok: Any,
    prompts: list[Chat],
    completions: list[Chat],
    batch_size: int = 8,
    max_batch_tokens: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed completion-token log-probs and token counts per item (see the module docstring)."""
    rendered = [_render(tok, p, c) for p, c in zip(prompts, completions, strict=True)]
    return token_logprobs(model, rendered, tok.pad_token_id or 0, batch_size, max_batch_tokens)


def token_logprobs(
    model: Any,
    rendered: list[tuple[list[int], int]],
    pad_id: int,
    batch_size: int = 8,
    max_batch_tokens: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-probs of ``ids[start:]`` given ``ids[:start]`` for each ``(ids, start)``; see above."""
    import torch

    n = len(rendered)
    sums = np.full(n, np.nan)
    counts = np.zeros(n, dtype=np.int64)
    context = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    device = next(model.parameters()).device
    order = sorted(
        (i for i in range(n) if not context or len(rendered[i][0]) <= context), key=lambda i: len(rendered[i][0])
    )
    batches: list[list[int]] = []
    for i in order:
        width = len(rendered[i][0])  # sorted ascending: the newest item is the widest of its batch
        if batches and len(batches[-1]) < batch_size and width * (len(batches[-1]) + 1) <= max(max_batch_tokens, width):
            batches[-1].append(i)
        else:
            batches.append([i])
    with torch.inference_mode():
        for batch in batches:
            width = max(len(rendered[i][0]) for i in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attn = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.bool)  # completion tokens to score
            for row, i in enumerate(batch):
                toks, start = rendered[i]
                ids[row, : len(toks)] = torch.tensor(toks)
                attn[row, : len(toks)] = 1
                mask[row, max(start, 1) : len(toks)] = True  # token 0 has nothing before it to predict it
            logits = model(input_ids=ids.to(device), attention_mask=attn.to(device)).logits.float()
            # position t predicts token t+1
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            target = ids[:, 1:].to(device)
            picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            m = mask[:, 1:].to(device)
            s = (picked * m).sum(-1).cpu().numpy()
            c = m.sum(-1).cpu().numpy()
            for row, i in enumerate(batch):
                sums[i], counts[i] = s[row], c[row]
    return sums, counts
