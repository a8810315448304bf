"""One batch through conversion and validation, with an outcome for every input row.

:func:`process_batch` is the unit both ``curate run`` and the flows call per batch: raw batch in,
contract records (with ``id`` and ``source``) plus quarantine entries out. Every input row of the
batch is either kept (it produced at least one valid record) or quarantined with the first reason
found; records rejected from rows that still produced others are reported separately.

Example:
    >>> from curate.ingest import RawBatch
    >>> from curate.convert import get_converter
    >>> from schemas.kinds import Kind
    >>> b = RawBatch(rows=[0, 1], records=[{"instruction": "Hi", "output": "Hello"}, {"instruction": "Hi"}])
    >>> out = process_batch(b, [get_converter("alpaca_to_messages")], [None], {}, Kind.SFT,
    ...                     SourceInfo("demo", "file:///d.jsonl", "ab"), max_chars=1000)
    >>> out.records.height, [q["reason"] for q in out.quarantine]
    (1, ['missing_field'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl
from pydantic import BaseModel

from curate.convert import Converter
from curate.convert.registry import ROW
from curate.ingest import RawBatch, extract
from curate.ingest.extract import columnar_fields, extract_table
from curate.ingest.readers import snippet
from schemas.ids import id_series
from schemas.kinds import Kind, content_schema, polars_schema
from schemas.validate import check_rules


@dataclass(frozen=True)
class SourceInfo:
    """Provenance of a file: source name, URI and content hash."""

    name: str
    uri: str
    sha256: str


@dataclass
class BatchOutcome:
    records: pl.DataFrame
    input_rows: int
    kept_rows: int
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    multiline: list[dict[str, Any]] = field(default_factory=list)
    """Kept rows read from several physical lines: source, uri, row and ``lines`` ``[first, last]`` (1-based)."""

    @property
    def quarantined_by_reason(self) -> Counter[str]:
        return Counter(q["reason"] for q in self.quarantine)

    @property
    def rejected_by_reason(self) -> Counter[str]:
        return Counter(r["reason"] for r in self.rejected)


def split_reason(reason: str) -> tuple[str, str]:
    """``"code: detail"`` -> ``("code", "detail")``."""
    code, _, detail = reason.partition(": ")
    return code, detail


def conform(df: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    """Add missing optional content columns as nulls and cast to the contract types (keeps ``__row``)."""
    schema = content_schema(kind)
    cols = [pl.col(ROW)]
    for name, dtype in schema.items():
        cols.append(pl.col(name).cast(dtype) if name in df.columns else pl.lit(None, dtype=dtype).alias(name))
    return df.select(cols)


def finalize(df: pl.DataFrame, kind: Kind, src: SourceInfo) -> pl.DataFrame:
    """Attach ``id`` and ``source`` and order columns as the contract says."""
    source = pl.struct(
        pl.lit(src.name).alias("name"),
        pl.lit(src.uri).alias("uri"),
        pl.lit(src.sha256).alias("sha256"),
        pl.col(ROW).alias("row"),
    ).alias("source")
    return df.with_columns(id_series(df, kind), source).select(list(polars_schema(kind)))


def process_batch(
    batch: RawBatch,
    chain: Sequence[Converter],
    options: Sequence[BaseModel | None],
    columns: Mapping[str, str],
    kind: Kind,
    src: SourceInfo,
    max_chars: int,
) -> BatchOutcome:
    """Convert and validate one batch; see the module docstring."""
    reasons: dict[int, str] = {e.row: f"{e.reason}: {e.detail}" for e in batch.errors}
    raw_of: dict[int, str] = {e.row: e.raw for e in batch.errors}
    spans: dict[int, int] = {e.row: e.line_end for e in batch.errors if e.line_end is not None} | batch.spans
    if batch.table is not None and columnar_fields(chain[0].fields, columns) is not None:
        frame, rejects = extract_table(batch.table, batch.rows, chain[0].fields, columns)
    else:
        batch = batch.parsed()
        frame, rejects = extract(batch.records, batch.rows, chain[0].fields, columns)
    rejected_frames: list[pl.DataFrame] = [pl.DataFrame(rejects, schema=[ROW, "reason"], orient="row")]
    for conv, opts in zip(chain, options, strict=True):
        res = conv(frame, opts)
        rejected_frames.append(res.rejected)
        # Validate every step's output, not only the last: a defect in an intermediate kind (an
        # identical preference pair) must not slip through a fan-out such as preference -> KTO.
        frame = conform(res.ok, conv.output)
        invalid = check_rules(frame, conv.output, max_chars)
        bad = invalid.is_not_null()
        rejected_frames.append(frame.filter(bad).select(ROW, invalid.filter(bad).alias("reason")))
        frame = frame.filter(~bad)
    if chain[-1].output != kind:
        raise ValueError(f"the chain ends in {chain[-1].output} records, not {kind}")

    rejected_all = pl.concat([f.cast({ROW: pl.Int64, "reason": pl.String}) for f in rejected_frames])
    if not reasons and rejected_all.is_empty() and frame[ROW].n_unique() == len(batch.rows):
        # the common clean batch: every row kept, nothing to say; skips per-row sets of row numbers
        multiline = _multiline(src, batch.spans.keys(), batch.spans)
        return BatchOutcome(finalize(frame, kind, src), batch.size, len(batch.rows), [], [], multiline)
    kept = set(frame[ROW].unique().to_list())
    partial: list[dict[str, Any]] = []
    for row, reason in rejected_all.iter_rows():
        if row in kept:
            code, detail = split_reason(reason)
            partial.append({"source": src.name, "uri": src.uri, "row": row, "reason": code, "detail": detail})
        else:
            reasons.setdefault(row, reason)

    # a columnar batch parses the raw line of a quarantined row on demand (few rows, not the batch)
    record_of = dict(zip(batch.rows, batch.records, strict=True)) if batch.raw is None else None
    quarantine = []
    for row in sorted(set(batch.rows) - kept | set(reasons) - kept):
        # A converter that returned neither a record nor a reason would lose the row silently;
        # name it so the defect is visible instead.
        code, detail = split_reason(
            reasons.get(row, "internal_no_reason: the converter produced no record and no reason")
        )
        raw = raw_of.get(row)
        record = batch.record(row) if record_of is None else record_of.get(row)
        if raw is None and record is not None:
            raw = snippet(orjson.dumps(record, default=str))
        entry = {"source": src.name, "uri": src.uri, "row": row, "reason": code, "detail": detail, "raw": raw or ""}
        if row in spans:  # a row read from several physical lines names them all
            entry["line_end"] = spans[row]
        quarantine.append(entry)
    multiline = _multiline(src, kept & batch.spans.keys(), spans)
    return BatchOutcome(finalize(frame, kind, src), batch.size, len(kept), quarantine, partial, multiline)


def _multiline(src: SourceInfo, rows: Iterable[int], spans: Mapping[int, int]) -> list[dict[str, Any]]:
    """The multi-line entries of kept ``rows`` (``spans``: row -> last physical line, 1-based)."""
    return [{"source": src.name, "uri": src.uri, "row": row, "lines": [row + 1, spans[row]]} for row in sorted(rows)]
