"""Reference sets for decontamination: read eval/benchmark files into one text per row.

Example:
    >>> import tempfile, pathlib
    >>> from schemas.stages import ReferenceSpec
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "eval.jsonl").write_text('{"q": "What is 2+2?"}\\n')
    >>> ref = load_reference(ReferenceSpec(name="eval", path="eval.jsonl", column="q"), d)
    >>> ref.texts.to_list(), ref.rows
    (['What is 2+2?'], [0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from curate.convert import get_converter
from curate.convert.registry import ROW, InputField
from curate.engine.batch import conform
from curate.ingest import discover, extract, read_batches
from schemas.fields import field_expr
from schemas.stages import ReferenceSpec
from schemas.validate import check_rules


@dataclass
class Reference:
    """Texts of a reference set with where each came from (uri, row)."""

    name: str
    texts: pl.Series
    uris: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)


def load_reference(spec: ReferenceSpec, base: Path, max_chars: int = 1_000_000) -> Reference:
    """Read every file of ``spec``; rows without usable text are skipped (they cannot leak)."""
    texts: list[pl.Series] = []
    uris: list[str] = []
    rows: list[int] = []
    chain = [get_converter(c) for c in ([spec.convert] if isinstance(spec.convert, str) else spec.convert or [])]
    for f in discover(spec.paths, spec.format, base):
        for batch in read_batches(f):
            if spec.column is not None:
                frame, _ = extract(batch.records, batch.rows, (InputField(spec.column, "str"),), {})
                frame = frame.rename({spec.column: "__text"})
            else:
                frame, _ = extract(batch.records, batch.rows, chain[0].fields, {})
                for conv in chain:
                    res = conv(frame)
                    frame = conform(res.ok, conv.output)
                    frame = frame.filter(check_rules(frame, conv.output, max_chars).is_null())
                assert spec.field is not None
                frame = frame.select(ROW, field_expr(chain[-1].output, spec.field).alias("__text"))
            texts.append(frame["__text"])
            rows.extend(frame[ROW].to_list())
            uris.extend([f.uri] * frame.height)
    joined = pl.concat(texts) if texts else pl.Series("__text", [], dtype=pl.String)
    return Reference(spec.name, joined, uris, rows)
