"""Building blocks for message lists: vectorized constructors and the nested-input normalizer.

Vectorized helpers build ``list<struct<role, content>>`` columns from string columns. Nested inputs
(ShareGPT turns, OpenAI messages, rating lists) arrive as Python objects and are normalized once per
row by :func:`normalize_turns`, the only per-row Python in conversion, because their shape varies.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"q": ["hi"], "a": ["hello"]})
    >>> df.select(messages_expr([("user", pl.col("q")), ("assistant", pl.col("a"))])).item().to_list()
    [{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'hello'}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from schemas.kinds import MESSAGES, ROLES


def message_expr(role: str | pl.Expr, content: pl.Expr) -> pl.Expr:
    """One message struct from a role (literal or expression) and a content expression."""
    role_expr = pl.lit(role) if isinstance(role, str) else role
    return pl.struct(role_expr.cast(pl.String).alias("role"), content.cast(pl.String).alias("content"))


def messages_expr(turns: Sequence[tuple[str | pl.Expr, pl.Expr]]) -> pl.Expr:
    """A message list from ``(role, content)`` pairs, in order."""
    return pl.concat_list([message_expr(r, c) for r, c in turns]).cast(MESSAGES)


def messages_column(
    df: pl.DataFrame,
    turns: Sequence[tuple[str | pl.Expr, pl.Expr, pl.Expr | None]],
    name: str = "messages",
) -> pl.Series:
    """A message-list column built from per-row turns, assembled as fixed-size lists.

    ``turns`` are ``(role, content, present)``; ``present`` (or ``None`` for always) says whether
    the turn exists in a row, so optional turns (a system prompt) need no second list. This is
    several times faster than ``pl.concat_list`` of structs (slow in polars 2.x), which otherwise
    dominates conversion time on large inputs.

    Example:
        >>> df = pl.DataFrame({"s": ["be brief", None], "q": ["hi", "yo"], "a": ["hello", "hey"]})
        >>> col = messages_column(df, [("system", pl.col("s"), pl.col("s").is_not_null()),
        ...                            ("user", pl.col("q"), None), ("assistant", pl.col("a"), None)])
        >>> [len(m) for m in col.to_list()], col.to_list()[1][0]
        ([3, 2], {'role': 'user', 'content': 'yo'})
    """
    n, k = df.height, len(turns)
    exprs: list[pl.Expr] = []
    for i, (role, content, present) in enumerate(turns):
        role_expr = pl.lit(role, dtype=pl.String) if isinstance(role, str) else role.cast(pl.String)
        exprs += [
            role_expr.alias(f"r{i}"),
            content.cast(pl.String).alias(f"c{i}"),
            (pl.lit(True) if present is None else present.fill_null(False)).alias(f"p{i}"),
        ]
    if n == 0:
        return pl.Series(name, [], dtype=MESSAGES)
    wide = df.select(exprs).with_columns(pl.col(f"p{i}").cast(pl.Boolean) for i in range(k))
    used = [i for i in range(k) if wide[f"p{i}"].any()]  # a turn no row has is left out entirely
    if len(used) < k:
        wide = wide.select(c for i in used for c in (f"r{i}", f"c{i}", f"p{i}")).rename(
            {f"{x}{i}": f"{x}{j}" for j, i in enumerate(used) for x in "rcp"}
        )
        k = len(used)
    if k == 0:
        return pl.Series(name, [[]] * n, dtype=MESSAGES)
    # column-major stack of the k turns, reordered row-major, then reshaped into fixed-size lists
    order = np.arange(k * n, dtype=np.int64).reshape(k, n).T.ravel()
    flat = pl.DataFrame(
        {
            "role": pl.concat([wide[f"r{i}"] for i in range(k)]).gather(order),
            "content": pl.concat([wide[f"c{i}"] for i in range(k)]).gather(order),
        }
    ).to_struct("m")
    present = np.column_stack([wide[f"p{i}"].to_numpy() for i in range(k)])
    fixed = flat.reshape((n, k))
    lists = fixed.cast(pl.List(fixed.dtype.inner)).alias(name)  # type: ignore[union-attr]
    if present.all():
        return lists.cast(MESSAGES)
    lead = present.argmax(axis=1)
    if (present == (np.arange(k) >= lead[:, None])).all() and present.any(axis=1).all():
        # absent turns only at the start (an optional system prompt): a per-row offset suffices
        return lists.to_frame().select(pl.col(name).list.slice(pl.lit(pl.Series(lead)))).to_series().cast(MESSAGES)
    masked = flat.to_frame().select(pl.when(pl.Series(present.ravel())).then(pl.col("m"))).to_series()
    fixed = masked.reshape((n, k))
    return fixed.cast(pl.List(fixed.dtype.inner)).list.drop_nulls().alias(name).cast(MESSAGES)  # type: ignore[union-attr]


def single_turn(role: str, content: pl.Expr) -> pl.Expr:
    """A one-message list."""
    return messages_expr([(role, content)])


def _content_text(content: Any) -> str | None:
    """Text of a message content: a string, or OpenAI-style parts whose text parts are joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text"):
                text = part.get("text")
                if not isinstance(text, str):
                    return None
                texts.append(text)
            else:
                return None  # an image/audio/file part: not text, cannot be kept faithfully
        return "\n".join(texts)
    return None


def normalize_turns(
    values: Sequence[Any],
    *,
    role_key: str,
    content_key: str,
    role_map: Mapping[str, str],
    field: str,
) -> tuple[list[list[dict[str, str]] | None], list[str | None]]:
    """Normalize nested turn lists into contract messages.

    Args:
        values: one entry per row: a list of dicts such as ``{"from": "human", "value": "hi"}``.
        role_key, content_key: where the role and the text live in each dict.
        role_map: source role -> contract role (``system/user/assistant/tool``).
        field: the input field name, used in reasons.

    Returns:
        ``(messages, reasons)``: per row either a message list and ``None``, or ``None`` and why.

    Example:
        >>> normalize_turns([[{"from": "human", "value": "hi"}], "x"], role_key="from",
        ...     content_key="value", role_map={"human": "user"}, field="conversations")
        ([[{'role': 'user', 'content': 'hi'}], None], [None, 'wrong_type: conversations must be a list of turns'])
    """
    out: list[list[dict[str, str]] | None] = []
    reasons: list[str | None] = []
    for turns in values:
        msgs: list[dict[str, str]] | None = []
        reason = None
        if not isinstance(turns, list):
            msgs, reason = None, f"wrong_type: {field} must be a list of turns"
        else:
            for i, turn in enumerate(turns):
                if not isinstance(turn, dict):
                    msgs, reason = None, f"wrong_type: {field}[{i}] is not an object"
                    break
                raw_role = turn.get(role_key)
                role = role_map.get(raw_role) if isinstance(raw_role, str) else None
                if role not in ROLES:
                    msgs, reason = None, f"bad_role: {field}[{i}].{role_key}={raw_role!r} is not a known role"
                    break
                text = _content_text(turn.get(content_key))
                if text is None:
                    msgs = None
                    reason = f"wrong_type: {field}[{i}].{content_key} is missing or not text"
                    break
                msgs.append({"role": role, "content": text})
        out.append(msgs)
        reasons.append(reason)
    return out, reasons


def messages_series(name: str, values: Sequence[list[dict[str, str]] | None]) -> pl.Series:
    """A contract-typed message-list Series from normalized Python values."""
    return pl.Series(name, values, dtype=MESSAGES)
