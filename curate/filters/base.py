"""The filter contract: one small base, one abstract method.

A filter looks at one text field of a batch of records and returns, per row, ``null`` to keep it
or a reason ``"<rule>: <detail>"`` to drop it. Rules are polars expressions over the field, so a
whole batch is judged at once (no per-row Python). The base turns the recipe's field name into
the expression, applies the rule and counts; the stage runner writes dropped rows with their
reasons and does the accounting.

Example:
    >>> import polars as pl
    >>> from curate.filters import get_filter
    >>> from schemas.kinds import Kind
    >>> f = get_filter("length")({"min_words": 2}, field="text")
    >>> f.reasons(pl.DataFrame({"text": ["two words", "one"]}), Kind.TEXT).to_list()
    [None, 'length.min_words: 1 words < 2']
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict

from schemas.fields import field_expr
from schemas.kinds import Kind


class FilterParams(BaseModel):
    """Base of filter parameters: unknown keys are errors; defaults are the published thresholds."""

    model_config = ConfigDict(extra="forbid")


class Filter(ABC):
    """Base class. Subclasses set ``name``, ``Params`` and implement :meth:`rule`."""

    name: ClassVar[str]
    Params: ClassVar[type[FilterParams]] = FilterParams
    summary: ClassVar[str] = ""
    default_field: ClassVar[str] = "response"

    def __init__(self, params: FilterParams | dict[str, Any] | None = None, field: str | None = None):
        self.params = params if isinstance(params, FilterParams) else self.Params.model_validate(params or {})
        self.field = field or self.default_field

    @abstractmethod
    def rule(self, text: pl.Expr) -> pl.Expr:
        """A String expression over the field's text: null to keep, ``"<rule>: <detail>"`` to drop."""

    def reasons(self, df: pl.DataFrame, kind: Kind) -> pl.Series:
        """Reason per row of ``df`` (a frame of ``kind`` records); null where the row is kept."""
        text = field_expr(kind, self.field)
        # with_columns broadcasts a rule that reduced to a literal (no checks configured) to every row
        return df.with_columns(self.rule(text).cast(pl.String).alias("__reason"))["__reason"].alias("reason")


def first_reason(checks: list[tuple[pl.Expr, pl.Expr | str]]) -> pl.Expr:
    """Combine ``(broken, reason)`` checks into one expression giving the first broken rule's reason."""
    out: pl.Expr = pl.lit(None, dtype=pl.String)
    for broken, reason in reversed(checks):
        text = pl.lit(reason) if isinstance(reason, str) else reason
        out = pl.when(broken.fill_null(False)).then(text).otherwise(out)
    return out


def fmt(value: pl.Expr, decimals: int = 3) -> pl.Expr:
    """A number as text for reason details."""
    return value.round(decimals).cast(pl.String)


_REGISTRY: dict[str, type[Filter]] = {}


def register(cls: type[Filter]) -> type[Filter]:
    """Class decorator adding a filter to the registry under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"filter {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def get_filter(name: str) -> type[Filter]:
    """The filter class called ``name``; ``KeyError`` lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown filter {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_filters() -> dict[str, type[Filter]]:
    return dict(sorted(_REGISTRY.items()))
