"""The converter contract and registry.

A converter turns a frame of input rows into a frame of one record kind. Inputs are either raw
records (``input is None``: the fields it reads are declared, type-checked by ingest and renamed by
the recipe's column map) or records of another kind (chained conversions such as preference -> KTO).

Every frame carries ``__row``: the input row each record came from, so accounting can tell which
input rows were kept. A converter never drops a row silently: a row it cannot convert goes to
``rejected`` with a ``reason`` of the form ``"<code>: <detail>"``.

Example:
    >>> from curate.convert import get_converter
    >>> conv = get_converter("alpaca_to_messages")
    >>> [f.name for f in conv.fields], conv.output.value
    (['instruction', 'input', 'output', 'system'], 'sft')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict

from schemas.kinds import Kind

FieldType = Literal["str", "number", "bool", "scalar", "list", "dict", "any"]
"""JSON type a raw field must have: ``scalar`` is any of str/number/bool read as text;
``list``/``dict``/``any`` are kept as Python objects for converters that walk nested data."""

ROW = "__row"
REJECT_SCHEMA = pl.Schema({ROW: pl.Int64(), "reason": pl.String()})


class NoOptions(BaseModel):
    """Options of a converter that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class InputField:
    """A raw field a converter reads; ``name`` is the converter's name, the recipe maps columns to it."""

    name: str
    type: FieldType
    required: bool = True
    doc: str = ""
    nullable: bool = False
    """With ``required``: the key must be present but ``null`` is a meaningful value (passed on)."""


@dataclass
class ConvertResult:
    """Converted records (``__row`` + content columns) and rejected input rows (``__row``, ``reason``)."""

    ok: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))

    @staticmethod
    def split(df: pl.DataFrame, reason: pl.Expr, keep: list[str]) -> ConvertResult:
        """Split ``df`` by a reason expression (null = ok); keep ``__row`` + ``keep`` on the ok side."""
        df = df.with_columns(reason.alias("__reason"))
        ok = df.filter(pl.col("__reason").is_null()).select([ROW, *keep])
        bad = df.filter(pl.col("__reason").is_not_null()).select(ROW, pl.col("__reason").alias("reason"))
        return ConvertResult(ok, bad)


ConvertFn = Callable[[pl.DataFrame, Any], ConvertResult]


@dataclass(frozen=True)
class Converter:
    """A registered conversion. ``example`` is a recipe snippet shown by ``curate converters``."""

    name: str
    input: Kind | None
    output: Kind
    fn: ConvertFn
    summary: str
    fields: tuple[InputField, ...] = ()
    options: type[BaseModel] = NoOptions
    example: str = ""

    def __call__(self, df: pl.DataFrame, options: BaseModel | dict[str, Any] | None = None) -> ConvertResult:
        opts = options if isinstance(options, BaseModel) else self.options.model_validate(options or {})
        return self.fn(df, opts)


_REGISTRY: dict[str, Converter] = {}


def register(conv: Converter) -> Converter:
    """Add ``conv`` to the registry (names are unique)."""
    if conv.name in _REGISTRY:
        raise ValueError(f"converter {conv.name!r} registered twice")
    _REGISTRY[conv.name] = conv
    return conv


def converter(
    name: str,
    *,
    input: Kind | None,
    output: Kind,
    summary: str,
    fields: tuple[InputField, ...] = (),
    options: type[BaseModel] = NoOptions,
    example: str = "",
) -> Callable[[ConvertFn], ConvertFn]:
    """Decorator registering a conversion function under ``name``."""

    def wrap(fn: ConvertFn) -> ConvertFn:
        register(Converter(name, input, output, fn, summary, fields, options, example))
        return fn

    return wrap


def get_converter(name: str) -> Converter:
    """The converter called ``name``; ``KeyError`` lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown converter {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_converters() -> dict[str, Converter]:
    """All registered converters by name."""
    return dict(sorted(_REGISTRY.items()))
