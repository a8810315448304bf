"""A file that changes while a run reads it: lineage (sha256) and rows describe the same bytes.

``hash_file`` records the size first and hashes exactly that many bytes; ``ingest`` reads the same
bytes only. A file that only grew is ingested as hashed (with a warning); one whose hashed bytes
changed stops the run with an InputError (exit 2 in the CLI) instead of mislabelled lineage.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest

from curate.engine.steps import hash_file, ingest, prepare
from curate.ingest import InputError
from schemas.recipe_loader import load_recipe_doc


def _rows(start: int, n: int) -> bytes:
    return b"".join(orjson.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + b"\n" for i in range(start, start + n))


def _prep(tmp_path: Path):  # noqa: ANN202, RUF100
    recipe = f"""
name: grow
output: {{kind: sft, dir: {tmp_path / "runs"}}}
sources:
  - {{name: s, path: {tmp_path / "in.jsonl"}, convert: alpaca_to_messages}}
"""
    return prepare(load_recipe_doc(recipe, str(tmp_path / "r.yaml")), report=False)


def test_appended_rows_are_not_ingested_and_lineage_matches(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = tmp_path / "in.jsonl"
    first = _rows(0, 1000)
    p.write_bytes(first)
    prep = _prep(tmp_path)
    job = hash_file(prep, 0, 0)
    assert job.sha256 == hashlib.sha256(first).hexdigest() and job.size == len(first)
    with p.open("ab") as fh:  # a writer appends while the run goes on
        fh.write(_rows(1000, 500))
    with caplog.at_level(logging.WARNING):
        ref = ingest(prep, job)
    assert ref.tally["input_rows"] == 1000 and ref.sha256 == job.sha256
    rows = pl.concat([pl.from_arrow(pq.read_table(part)) for part in ref.parts])
    assert sorted(rows["source"].struct.field("row").to_list()) == list(range(1000))
    assert "grew from" in caplog.text


def test_rewritten_file_stops_the_run(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    p.write_bytes(_rows(0, 100))
    prep = _prep(tmp_path)
    job = hash_file(prep, 0, 0)
    p.write_bytes(_rows(50, 120))  # replaced by other content (longer) after hashing
    with pytest.raises(InputError, match="changed while this run read it"):
        ingest(prep, job)
    assert not list((prep.work / "shards").iterdir())  # no shard cached under the old content's key
