"""Preference pairs out of eval rows: ``(prompt, chosen, rejected)`` conversations, sampled to a limit.

Example:
    >>> import polars as pl
    >>> m = lambda r, c: [{"role": r, "content": c}]
    >>> rows = pl.DataFrame({"prompt": [m("user", "Hi")], "chosen": [m("assistant", "Hello!")],
    ...                      "rejected": [m("assistant", "Go away.")]})
    >>> p, c, r = preference_pairs(rows)
    >>> p[0][0]["content"], c[0][-1]["content"], r[0][-1]["content"]
    ('Hi', 'Hello!', 'Go away.')
"""

from __future__ import annotations

from typing import Any

from train.eval.generation import Conversation


def limited(rows: Any, limit: int | None, seed: int) -> Any:
    """At most ``limit`` rows: a seeded sample in the original order (all rows when ``limit`` is None)."""
    if limit is None or len(rows) <= limit:
        return rows

    return rows.with_row_index("_i").sample(limit, seed=seed).sort("_i").drop("_i")


def _msgs(conv: list[dict[str, Any]]) -> Conversation:
    return [{"role": m["role"], "content": m["content"]} for m in conv]


def preference_pairs(rows: Any) -> tuple[list[Conversation], list[Conversation], list[Conversation]]:
    """The prompts, chosen and rejected completions (as message lists) of preference rows."""
    return (
        [_msgs(p) for p in rows["prompt"].to_list()],
        [_msgs(c) for c in rows["chosen"].to_list()],
        [_msgs(r) for r in rows["rejected"].to_list()],
    )


def pair_wins(a: Any, b: Any) -> Any:
    """Per pair 1.0 where ``a > b``, 0.5 on an exact tie, 0.0 otherwise (NaN pairs are the caller's)."""
    import numpy as np

    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))
