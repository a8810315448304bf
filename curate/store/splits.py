"""Deterministic train/eval/test splits from a hash of each row's split key.

A row's split depends only on its key text (normalized) and the seed, never on the other rows, so
adding rows never moves an existing one, and rows sharing a prompt always land on the same side.

Example:
    >>> import polars as pl
    >>> from schemas.kinds import Kind
    >>> from schemas.recipe import SplitSpec
    >>> df = pl.DataFrame({"text": [f"doc {i}" for i in range(1000)]})
    >>> s = assign_splits(df, Kind.TEXT, SplitSpec(eval=0.1))
    >>> sorted(s.value_counts().rows())[0][0], 60 < (s == "eval").sum() < 140
    ('eval', True)
"""

from __future__ import annotations

import polars as pl
import polars_hash  # noqa: F401  (registers .nchash)

from curate.dedup.normalize import normalize_series
from schemas.fields import key_expr
from schemas.kinds import Kind
from schemas.recipe import SplitSpec
from schemas.stages import Normalization

BUCKETS = 1_000_000


def split_key_fields(kind: Kind, spec: SplitSpec) -> list[str]:
    """The fields deciding the split: the recipe's, else the prompt (the text for text records)."""
    return spec.key or (["text"] if kind is Kind.TEXT else ["prompt"])


def assign_splits(df: pl.DataFrame, kind: Kind, spec: SplitSpec) -> pl.Series:
    """``"train"``, ``"eval"`` or ``"test"`` per row of ``df`` (records of ``kind``)."""
    return splits_of_keys(df.select(key_expr(kind, split_key_fields(kind, spec))).to_series(), spec)


def splits_of_keys(keys: pl.Series, spec: SplitSpec) -> pl.Series:
    """:func:`assign_splits` from the rows' split keys (``key_expr`` of :func:`split_key_fields`),
    for a caller that needs the keys too."""
    norm = normalize_series(keys, Normalization())
    salted = (pl.lit(f"{spec.seed}\x1d") + pl.col("k")).nchash.xxhash64()
    bucket = norm.to_frame("k").select((salted % BUCKETS).alias("b")).to_series()
    eval_cut, test_cut = int(spec.eval * BUCKETS), int((spec.eval + spec.test) * BUCKETS)
    return (
        pl.select(
            pl.when(bucket < eval_cut)
            .then(pl.lit("eval"))
            .when(bucket < test_cut)
            .then(pl.lit("test"))
            .otherwise(pl.lit("train"))
        )
        .to_series()
        .alias("split")
    )
