"""Shared helpers for converter tests (fixture ``h``) and the public datasets folder (fixture ``datasets``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from curate.convert.registry import REJECT_SCHEMA, ROW, ConvertResult
from schemas.kinds import Kind, content_schema

DATASETS = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"


def make_frame(**columns: Any) -> pl.DataFrame:
    """A converter input frame: ``__row`` 0..n-1 plus the columns. A ``pl.Series`` is used as given
    (build Object fields with ``pl.Series(name, values, dtype=pl.Object)``); a list becomes a column."""
    n = len(next(iter(columns.values())))
    series = [v.alias(k) if isinstance(v, pl.Series) else pl.Series(k, v) for k, v in columns.items()]
    return pl.DataFrame([pl.Series(ROW, range(n), dtype=pl.Int64), *series])


def objects(name: str, values: list[Any]) -> pl.Series:
    """An Object column holding raw Python values, as ingest delivers ``list``/``dict``/``any`` fields."""
    return pl.Series(name, values, dtype=pl.Object)


def check_accounted(df: pl.DataFrame, result: ConvertResult, kind: Kind) -> None:
    """Every input row is in ``ok`` or ``rejected`` (not both), and both frames have the contract shape."""
    assert result.rejected.schema == REJECT_SCHEMA
    assert result.ok.columns[0] == ROW and result.ok.schema[ROW] == pl.Int64
    expected = content_schema(kind)
    for name in result.ok.columns[1:]:
        assert name in expected, f"unexpected column {name}"
        assert result.ok.schema[name] == expected[name], name
    kept, rejected = set(result.ok[ROW].to_list()), result.rejected[ROW].to_list()
    assert len(rejected) == len(set(rejected)), "a row rejected twice"
    assert kept.isdisjoint(rejected), "a row both kept and rejected"
    assert kept | set(rejected) == set(df[ROW].to_list()), "a row lost"
    assert result.rejected["reason"].str.contains(r"^[a-z_]+: .+").all(), result.rejected["reason"].to_list()


def all_columns(df: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    """``ok`` with every content column (optional ones null when absent), for ``check_rules``."""
    cols = [pl.col(c) if c in df.columns else pl.lit(None, dtype=t).alias(c) for c, t in content_schema(kind).items()]
    return df.select(cols)


class Helpers:
    """The helpers above as a fixture (test modules cannot import each other under importlib mode)."""

    frame = staticmethod(make_frame)
    obj = staticmethod(objects)
    accounted = staticmethod(check_accounted)
    full = staticmethod(all_columns)


@pytest.fixture(scope="session")
def h() -> type[Helpers]:
    return Helpers


@pytest.fixture
def datasets() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"public datasets not present at {DATASETS}")
    return DATASETS
