"""Fates on disk, and finishing a part a slice at a time: the same outputs as reading it whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from curate.engine import fates
from curate.engine.fates import finish_part, read_fates, write_fates

N = 23


def _fates(folder: Path) -> tuple[np.ndarray, pl.DataFrame]:
    alive = np.ones(N, bool)
    removed_rows = np.array([1, 2, 9, 10, 11, 22])
    alive[removed_rows] = False
    stage = np.where(alive, -1, np.array([0 if r < 10 else 1 for r in range(N)])).astype(np.int32)
    sim = np.where(alive, np.nan, 0.9)
    removed = pl.DataFrame(
        {
            "row": removed_rows[::-1].copy(),  # any order: stored sorted
            "reason": [f"r{r}" for r in removed_rows[::-1]],
            "detail": [f"d{r}" for r in removed_rows[::-1]],
            "duplicate_of": [None if r < 10 else f"t{r}" for r in removed_rows[::-1]],
            "representative": [None if r < 10 else f"p{r}" for r in removed_rows[::-1]],
        }
    )
    write_fates(folder, alive, stage, sim, removed)
    return alive, removed


def test_read_fates_gives_each_range_its_rows_and_strings(tmp_path: Path) -> None:
    alive, _ = _fates(tmp_path)
    whole = pl.concat([read_fates(tmp_path, lo, n) for lo, n in ((0, 10), (10, 5), (15, 8))])
    assert whole["alive"].to_numpy().tolist() == alive.tolist()
    reasons = whole["reason"].to_list()
    assert [i for i, r in enumerate(reasons) if r is not None] == [1, 2, 9, 10, 11, 22]
    assert reasons[22] == "r22" and whole["duplicate_of"][10] == "t10" and whole["representative"][1] is None
    assert whole.schema == pl.Schema(fates.STATE_SCHEMA)
    # the per-record file holds no strings: its size follows the records, not what they say
    assert pq.ParquetFile(tmp_path / "state.parquet").schema_arrow.names == ["alive", "stage", "similarity"]


@pytest.mark.parametrize("slice_rows", [4, 7, 1000])
def test_finish_part_in_slices_writes_what_a_whole_read_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slice_rows: int
) -> None:
    monkeypatch.setattr(fates, "SLICE_ROWS", slice_rows)
    monkeypatch.setattr(fates, "ROW_GROUP_ROWS", 5)
    alive, _ = _fates(tmp_path)
    part = tmp_path / "part.parquet"
    pl.DataFrame({"id": [f"id{i}" for i in range(N)], "x": list(range(N))}).write_parquet(part)
    state = read_fates(tmp_path, 0, N)
    out = finish_part(part, state, ["exact_dedup", "too_short"], ["duplicates", "dropped"], tmp_path / "o", "p0")
    assert out.kept == int(alive.sum())
    kept = pl.read_parquet(out.data)
    assert kept["x"].to_list() == np.flatnonzero(alive).tolist()
    dups = pl.read_parquet(out.duplicates)
    assert dups["x"].to_list() == [1, 2, 9] and set(dups["stage"]) == {"exact_dedup"}
    dropped = pl.read_parquet(out.dropped)
    assert dropped["x"].to_list() == [10, 11, 22]
    assert dropped["reason"].to_list() == ["r10", "r11", "r22"] and dropped["duplicate_of"][0] == "t10"
    assert dropped["similarity"].to_list() == [0.9, 0.9, 0.9]
    # row groups gather small slices (a slice of 4 rows keeps 2-4): not one tiny group per slice
    if slice_rows < N:
        assert pq.ParquetFile(out.data).metadata.num_row_groups < -(-N // slice_rows)
