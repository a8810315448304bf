"""Vectorized validation of frames against the record contract.

:func:`check_rules` returns, for a frame of one kind's content columns, a ``reason`` per row: null
when the row is valid, otherwise ``"<code>: <detail>"`` naming the first rule it breaks. Rules are
polars expressions, evaluated for the whole batch at once.

Example:
    >>> import polars as pl
    >>> from schemas.kinds import Kind
    >>> df = pl.DataFrame({"instruction": ["Add 2+2", " "], "input": ["", ""], "output": ["4", "4"]})
    >>> check_rules(df, Kind.ALPACA, max_chars=1000).to_list()
    [None, 'empty_field: instruction is empty']
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from schemas.kinds import JUDGE_KINDS, ROLES, Kind

Rule = tuple[pl.Expr, str]
"""(expression true where the row breaks the rule, reason text)."""


def _a(word: str) -> str:
    return ("an " if word == "assistant" else "a ") + word


def _blank(expr: pl.Expr) -> pl.Expr:
    return expr.is_null() | (expr.str.strip_chars().str.len_chars() == 0)


def _text_rules(name: str, max_chars: int, allow_empty: bool = False) -> Iterator[Rule]:
    col = pl.col(name)
    if allow_empty:
        yield col.is_null(), f"missing_field: {name} is null"
    else:
        yield _blank(col), f"empty_field: {name} is empty"
    yield col.str.len_chars() > max_chars, f"too_long: {name} exceeds {max_chars} characters"


def _message_rules(name: str, max_chars: int, first_role: str | None, last_role: str | None) -> Iterator[Rule]:
    col = pl.col(name)
    roles = col.list.eval(pl.element().struct.field("role"))
    contents = col.list.eval(pl.element().struct.field("content"))
    yield col.is_null() | (col.list.len() == 0), f"empty_field: {name} has no messages"
    bad_role = roles.list.eval(~pl.element().is_in(ROLES) | pl.element().is_null()).list.any()
    yield bad_role, f"bad_role: {name} has a role outside {'/'.join(ROLES)}"
    empty = contents.list.eval(_blank(pl.element())).list.any()
    yield empty, f"empty_content: {name} has a message with empty content"
    too_long = contents.list.eval(pl.element().str.len_chars() > max_chars).list.any()
    yield too_long, f"too_long: a message in {name} exceeds {max_chars} characters"
    late_system = roles.list.slice(1).list.eval(pl.element() == "system").list.any()
    yield late_system, f"misplaced_system: {name} has a system message after the first position"
    if first_role is not None:
        yield roles.list.first() != first_role, f"bad_turns: {name} must start with {_a(first_role)} message"
    if last_role is not None:
        yield roles.list.last() != last_role, f"bad_turns: {name} must end with {_a(last_role)} message"


def rules(kind: Kind, max_chars: int) -> list[Rule]:
    """The rules for ``kind``, most basic first (the first broken rule is reported)."""
    out: list[Rule] = []
    if kind is Kind.TEXT:
        out += _text_rules("text", max_chars)
    elif kind is Kind.ALPACA:
        out += _text_rules("instruction", max_chars)
        out += _text_rules("input", max_chars, allow_empty=True)
        out += _text_rules("output", max_chars)
    elif kind is Kind.SFT:
        out += _message_rules("messages", max_chars, None, "assistant")
        roles = pl.col("messages").list.eval(pl.element().struct.field("role"))
        out.append((~roles.list.contains("user"), "bad_turns: messages has no user message"))
    elif kind is Kind.PREFERENCE:
        out += _message_rules("prompt", max_chars, None, "user")
        out += _message_rules("chosen", max_chars, "assistant", None)
        out += _message_rules("rejected", max_chars, "assistant", None)
        out.append((pl.col("chosen") == pl.col("rejected"), "identical_pair: chosen equals rejected"))
        judge_kind = pl.col("judge").struct.field("kind")
        out.append(
            (
                judge_kind.is_not_null() & ~judge_kind.is_in(JUDGE_KINDS),
                "bad_judge: judge.kind must be human/ai/dataset",
            )
        )
    elif kind is Kind.KTO:
        out += _message_rules("prompt", max_chars, None, "user")
        out += _message_rules("completion", max_chars, "assistant", None)
        out.append((pl.col("label").is_null(), "missing_field: label is null"))
    return out


def check_rules(df: pl.DataFrame, kind: Kind, max_chars: int) -> pl.Series:
    """Per-row reason string for the first rule broken, or null for valid rows."""
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for broken, text in reversed(rules(kind, max_chars)):
        reason = pl.when(broken.fill_null(True)).then(pl.lit(text)).otherwise(reason)
    return df.select(reason.alias("reason")).to_series()
