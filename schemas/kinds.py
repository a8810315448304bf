"""Record kinds and their columnar schemas (polars and Arrow), the canonical in-memory form.

Every kind has an ``id`` column first (a content hash, see :mod:`schemas.ids`) and a ``source``
provenance struct last. Chat messages are ``list<struct<role: str, content: str>>``, the
conversational form TRL's trainers accept.

Example:
    >>> from schemas.kinds import Kind, polars_schema
    >>> list(polars_schema(Kind.ALPACA))
    ['id', 'instruction', 'input', 'output', 'source']
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl
import pyarrow as pa


class Kind(StrEnum):
    """The record kinds of the data contract."""

    TEXT = "text"
    SFT = "sft"
    ALPACA = "alpaca"
    PREFERENCE = "preference"
    KTO = "kto"


ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
MESSAGES = pl.List(MESSAGE)
SOURCE = pl.Struct({"name": pl.String, "uri": pl.String, "sha256": pl.String, "row": pl.Int64})
JUDGE = pl.Struct({"kind": pl.String, "model": pl.String, "annotators": pl.List(pl.String)})
"""Who judged a preference: ``kind`` is ``human``, ``ai`` or ``dataset`` (label came with the data)."""

JUDGE_KINDS: tuple[str, ...] = ("human", "ai", "dataset")

_CONTENT: dict[Kind, dict[str, pl.DataType]] = {
    Kind.TEXT: {"text": pl.String()},
    Kind.SFT: {"messages": MESSAGES},
    Kind.ALPACA: {"instruction": pl.String(), "input": pl.String(), "output": pl.String()},
    Kind.PREFERENCE: {
        "prompt": MESSAGES,
        "chosen": MESSAGES,
        "rejected": MESSAGES,
        "score_chosen": pl.Float64(),
        "score_rejected": pl.Float64(),
        "margin": pl.Float64(),
        "judge": JUDGE,
    },
    Kind.KTO: {"prompt": MESSAGES, "completion": MESSAGES, "label": pl.Boolean()},
}

IDENTITY_COLUMNS: dict[Kind, tuple[str, ...]] = {
    Kind.TEXT: ("text",),
    Kind.SFT: ("messages",),
    Kind.ALPACA: ("instruction", "input", "output"),
    Kind.PREFERENCE: ("prompt", "chosen", "rejected"),
    Kind.KTO: ("prompt", "completion", "label"),
}
"""Columns whose content defines a row's ``id``; scores and judges do not change identity."""

OPTIONAL_COLUMNS: dict[Kind, frozenset[str]] = {
    Kind.TEXT: frozenset(),
    Kind.SFT: frozenset(),
    Kind.ALPACA: frozenset(),
    Kind.PREFERENCE: frozenset({"score_chosen", "score_rejected", "margin", "judge"}),
    Kind.KTO: frozenset(),
}
"""Content columns a converter may leave out; they are filled with nulls."""


def content_schema(kind: Kind) -> dict[str, pl.DataType]:
    """The content columns of ``kind`` (no ``id``/``source``), in contract order."""
    return dict(_CONTENT[kind])


def polars_schema(kind: Kind) -> pl.Schema:
    """Full polars schema of ``kind``: ``id``, the content columns, ``source``."""
    return pl.Schema({"id": pl.String(), **_CONTENT[kind], "source": SOURCE})


def arrow_schema(kind: Kind) -> pa.Schema:
    """Arrow schema matching :func:`polars_schema`, with the kind recorded in the metadata."""
    empty = pl.DataFrame(schema=polars_schema(kind)).to_arrow()
    return empty.schema.with_metadata({b"curate.kind": kind.value.encode()})


KIND_SCHEMAS: dict[Kind, pl.Schema] = {k: polars_schema(k) for k in Kind}
