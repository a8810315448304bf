"""What became of each record: the decision's per-record fates on disk, each part's survivors and
audit rows, and the accounting of every input row.

Fates are stored in a decision folder in two files, so their size follows the removed records,
not the dataset (13 bytes a record plus the strings of the few removed ones):

- ``state.parquet``: per record, in part order, ``alive``, ``stage`` (index of the stage that
  removed it, -1 while alive) and ``similarity`` (to its kept twin; NaN when none);
- ``removed.parquet``: per removed record, its global ``row`` and the strings ``reason``,
  ``detail``, ``duplicate_of`` and ``representative``.

:func:`read_fates` joins them back for one range of records (one part), as :data:`STATE_SCHEMA`.
:func:`finish_part` and :func:`settle` read a part a slice at a time, so no step here holds a
whole part or the whole run.

Example:
    >>> import numpy as np, polars as pl, tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> removed = pl.DataFrame({"row": [1], "reason": ["exact_dedup"], "detail": ["duplicate of a"],
    ...                         "duplicate_of": ["a"], "representative": ["a"]})
    >>> write_fates(d, np.array([True, False, True]), np.array([-1, 0, -1], np.int32),
    ...             np.array([np.nan, 1.0, np.nan]), removed)
    >>> read_fates(d, 1, 2)["reason"].to_list()
    ['exact_dedup', None]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.engine.accounting import Ledger

SLICE_ROWS = 65_536
"""Records decoded at a time when a stage, finishing or settling reads a part (bounds transient memory)."""
ROW_GROUP_ROWS = 131_072
"""Rows gathered before a row group is written (small filtered slices would make tiny groups)."""

STATE_SCHEMA = {
    "alive": pl.Boolean,
    "stage": pl.Int32,
    "reason": pl.String,
    "detail": pl.String,
    "duplicate_of": pl.String,
    "similarity": pl.Float64,
    "representative": pl.String,
}
"""One part's fates as :func:`read_fates` returns them (strings null for records that stay)."""
REMOVED_SCHEMA = {
    "row": pl.Int64,
    "reason": pl.String,
    "detail": pl.String,
    "duplicate_of": pl.String,
    "representative": pl.String,
}
"""``removed.parquet``: the strings of removed records only, by global record index."""

AUDIT_COLUMNS = pa.schema(
    [
        ("stage", pa.large_string()),
        ("reason", pa.large_string()),
        ("detail", pa.large_string()),
        ("duplicate_of", pa.large_string()),
        ("similarity", pa.float64()),
        ("representative", pa.large_string()),
    ]
)


def write_fates(
    folder: Path, alive: np.ndarray, stage: np.ndarray, similarity: np.ndarray, removed: pl.DataFrame
) -> None:
    """Write ``state.parquet`` (per record) and ``removed.parquet`` (:data:`REMOVED_SCHEMA`) into ``folder``."""
    pl.DataFrame(
        {"alive": alive, "stage": stage, "similarity": similarity},
        schema={"alive": pl.Boolean, "stage": pl.Int32, "similarity": pl.Float64},
    ).write_parquet(folder / "state.parquet")
    removed.select(list(REMOVED_SCHEMA)).cast(REMOVED_SCHEMA).sort("row").write_parquet(folder / "removed.parquet")


def read_fates(folder: Path, lo: int, n: int) -> pl.DataFrame:
    """The fates of records ``lo`` .. ``lo + n - 1`` (:data:`STATE_SCHEMA`): a lazy slice reads only them."""
    base = pl.scan_parquet(folder / "state.parquet").slice(lo, n).collect()
    removed = pl.scan_parquet(folder / "removed.parquet").filter(pl.col("row").is_between(lo, lo + n - 1)).collect()
    at = (removed["row"] - lo).to_numpy()

    def column(name: str) -> pl.Series:
        base_ = pl.repeat(None, n, dtype=pl.String, eager=True).alias(name)
        return base_.scatter(at, removed[name]) if at.size else base_

    return pl.DataFrame(
        {
            "alive": base["alive"],
            "stage": base["stage"],
            "reason": column("reason"),
            "detail": column("detail"),
            "duplicate_of": column("duplicate_of"),
            "similarity": base["similarity"],
            "representative": column("representative"),
        },
        schema=STATE_SCHEMA,
    )


@dataclass
class PartOutput:
    """What :func:`finish_part` wrote for one part: survivors and the audit rows of removed records."""

    kept: int
    data: str | None = None
    dropped: str | None = None
    duplicates: str | None = None


class _GroupedWriter:
    """A Parquet file written from many small tables, in row groups of about :data:`ROW_GROUP_ROWS`."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema = path, schema
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self.pending.append(table)
            self.rows += table.num_rows
            if self.rows >= ROW_GROUP_ROWS:
                self._flush()

    def _flush(self) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd", use_dictionary=False)
        table = pa.concat_tables(self.pending) if self.pending else self.schema.empty_table()
        self.writer.write_table(table, row_group_size=max(self.rows, 1))
        self.pending, self.rows = [], 0

    def close(self) -> None:
        if self.pending or self.writer is None:
            self._flush()
        assert self.writer is not None
        self.writer.close()


def finish_part(
    part: Path, state: pl.DataFrame, names: list[str], outcomes: list[str], out: Path, label: str
) -> PartOutput:
    """Phase 3 (per part): write the survivors of ``part`` and its removed records with their reasons.

    ``state`` is the part's fates (:func:`read_fates`); ``names``/``outcomes`` name each stage index.
    Writes ``out/LABEL.parquet`` (survivors, same schema as ``part``), ``out/LABEL.dropped.parquet``
    and ``out/LABEL.duplicates.parquet`` (records plus stage, reason, detail, duplicate_of, similarity,
    representative: the id of the row the removed one was verified against, their Jaccard, and the id of
    the row that stays for it). The part is read :data:`SLICE_ROWS` records at a time.
    """
    out.mkdir(parents=True, exist_ok=True)
    alive = state["alive"].to_numpy()
    result = PartOutput(int(alive.sum()))
    pf = pq.ParquetFile(part, pre_buffer=False, buffer_size=1 << 20)
    audit_schema = pa.schema(list(pf.schema_arrow) + list(AUDIT_COLUMNS))
    index = list(range(len(names)))
    gone = (
        state.with_row_index("__i")
        .filter(~pl.col("alive"))
        .with_columns(
            pl.col("stage").replace_strict(index, names, return_dtype=pl.String).alias("stage_name"),
            pl.col("stage").replace_strict(index, outcomes, return_dtype=pl.String).alias("outcome"),
        )
    )
    writers: dict[str, _GroupedWriter] = {}
    if alive.any():
        result.data = str(out / f"{label}.parquet")
        writers["data"] = _GroupedWriter(Path(result.data), pf.schema_arrow)
    audits = {o: gone.filter(pl.col("outcome") == o) for o in ("dropped", "duplicates")}
    for outcome, sel in audits.items():
        if sel.height:
            path = out / f"{label}.{outcome}.parquet"
            setattr(result, outcome, str(path))
            writers[outcome] = _GroupedWriter(path, audit_schema)
    lo = 0
    for batch in pf.iter_batches(batch_size=SLICE_ROWS, use_threads=False):
        hi = lo + batch.num_rows
        if "data" in writers:
            writers["data"].add(pa.Table.from_batches([batch]).filter(pa.array(alive[lo:hi])))
        for outcome, sel in audits.items():
            here = sel.filter(pl.col("__i").is_between(lo, hi - 1))
            if here.height == 0:
                continue
            rows = pl.from_arrow(pa.Table.from_batches([batch]).take(pa.array(here["__i"].to_numpy() - lo)))
            assert isinstance(rows, pl.DataFrame)
            extra = here.select(
                pl.col("stage_name").alias("stage"), "reason", "detail", "duplicate_of", "similarity", "representative"
            )
            writers[outcome].add(pl.concat([rows, extra], how="horizontal").to_arrow().cast(audit_schema))
        lo = hi
    for w in writers.values():
        w.close()
    return result


def settle(parts: list[Path], states: Iterable[pl.DataFrame], outcomes: list[str], ledger: Ledger) -> None:
    """Settle every input row's outcome in ``ledger`` from the records' fates.

    ``states``: the fates of each part in turn (:func:`read_fates`, one part at a time). An input
    row is kept while any of its records survives; otherwise the earliest stage that removed one of
    its records names its outcome and reason. Also sets each file's output record count.

    Reads one part's provenance at a time: per part, only input rows with a removed record (and the
    first and last row, whose records may continue in the neighbouring part) are carried on.
    """
    if not parts:
        return
    per_file: dict[tuple[str, str], int] = {}
    partial = []
    for path, state in zip(parts, states, strict=True):
        src = pl.read_parquet(path, columns=["source"]).select(pl.col("source").struct.field("name", "uri", "row"))
        if state.height != src.height:
            raise ValueError(f"{path} holds {src.height} records, its fates {state.height}")
        df = pl.concat([src, state.select("alive", "stage", "reason")], how="horizontal").with_row_index("__i")
        for name, uri, n in df.group_by("name", "uri").agg(pl.col("alive").sum()).iter_rows():
            per_file[(name, uri)] = per_file.get((name, uri), 0) + int(n)
        edge = (pl.col("__i") == 0) | (pl.col("__i") == df.height - 1)
        keys = df.filter(~pl.col("alive") | edge).select("name", "uri", "row").unique()
        rows = df.join(keys, on=["name", "uri", "row"], how="semi", maintain_order="left").drop("__i")
        partial.append(rows)
    for (name, uri), n in per_file.items():
        ledger.set_output_records(name, uri, n)
    df = pl.concat(partial)
    per_row = (
        df.sort("stage", maintain_order=True)
        .group_by("name", "uri", "row")
        .agg(
            pl.col("alive").any().alias("kept"),
            pl.col("stage").filter(~pl.col("alive")).first(),
            pl.col("reason").filter(~pl.col("alive")).first(),
        )
        .filter(~pl.col("kept"))
    )
    counts = per_row.group_by("name", "uri", "stage", "reason").len()
    for name, uri, stage, reason, n in counts.iter_rows():
        ledger.move(name, uri, outcomes[stage], reason, n)
