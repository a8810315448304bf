"""A shard's part files: the same files whether written in line or behind, and write errors surface."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.engine.shards import _PartFiles

SCHEMA = pa.schema([("text", pa.large_string()), ("n", pa.int64())])


def _batches() -> list[pl.DataFrame]:
    return [
        pl.DataFrame({"text": [f"row {i}-{j}" for j in range(k)], "n": list(range(k))})
        for i, k in enumerate([5, 7, 1, 9])
    ]


@pytest.mark.parametrize("behind", [False, True])
def test_parts_roll_over_at_rows_per_file(tmp_path: Path, behind: bool) -> None:
    files = _PartFiles(tmp_path, Path("/final"), SCHEMA, rows_per_file=6, behind=behind)
    for b in _batches():
        files.add(b)
    files.close()
    assert files.parts == [f"/final/records-{i:05d}.parquet" for i in range(4)]
    tables = [pq.read_table(tmp_path / Path(p).name) for p in files.parts]
    assert [t.num_rows for t in tables] == [6, 6, 6, 4]
    assert all(t.schema.equals(SCHEMA) for t in tables)
    got = pl.concat([pl.from_arrow(t) for t in tables])
    assert got.equals(pl.concat(_batches()))


def test_a_background_write_error_is_raised_as_itself(tmp_path: Path) -> None:
    files = _PartFiles(tmp_path, tmp_path, SCHEMA, rows_per_file=100, behind=True)
    files.add(pl.DataFrame({"text": ["ok"], "n": [1]}))
    files.add(pl.DataFrame({"text": ["bad"], "n": ["not a number"]}))  # fails on the writer thread
    with pytest.raises(pa.ArrowInvalid):
        files.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("curate-shard-write")]


def test_abort_waits_for_the_write_in_flight_and_keeps_the_callers_error(tmp_path: Path) -> None:
    files = _PartFiles(tmp_path, tmp_path, SCHEMA, rows_per_file=100, behind=True)
    files.add(pl.DataFrame({"text": ["bad"], "n": ["x"]}))
    files.abort()  # the caller is raising its own error: the write's error is not raised over it
    assert files._pending is None and files._pool is None
    assert not [t for t in threading.enumerate() if t.name.startswith("curate-shard-write")]
