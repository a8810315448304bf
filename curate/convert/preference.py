"""Helpers shared by the converters that produce preference pairs.

Example:
    >>> import polars as pl
    >>> pl.select(judge_expr("ai", model="gpt-4")).item()
    {'kind': 'ai', 'model': 'gpt-4', 'annotators': None}
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from curate.convert.registry import ROW
from schemas.kinds import JUDGE, MESSAGES, Kind, content_schema

JudgeKind = Literal["human", "ai", "dataset"]


def judge_expr(
    kind: JudgeKind,
    model: str | pl.Expr | None = None,
    annotators: pl.Expr | None = None,
) -> pl.Expr:
    """A ``judge`` struct: ``kind`` literal, ``model`` and ``annotators`` literal/expression or null."""
    model_expr = model if isinstance(model, pl.Expr) else pl.lit(model, dtype=pl.String)
    annot_expr = annotators if annotators is not None else pl.lit(None, dtype=pl.List(pl.String))
    return pl.struct(
        pl.lit(kind, dtype=pl.String).alias("kind"),
        model_expr.cast(pl.String).alias("model"),
        annot_expr.cast(pl.List(pl.String)).alias("annotators"),
    ).cast(JUDGE)


def preference_frame(df: pl.DataFrame) -> pl.DataFrame:
    """``__row`` + every preference content column in contract order, typed; missing optional columns null."""
    cols: list[pl.Expr] = [pl.col(ROW).cast(pl.Int64)]
    for name, dtype in content_schema(Kind.PREFERENCE).items():
        expr = pl.col(name) if name in df.columns else pl.lit(None)
        cols.append(expr.cast(MESSAGES if dtype == MESSAGES else dtype).alias(name))
    return df.select(cols)
