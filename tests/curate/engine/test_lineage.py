"""What was read of each input, in the run summary and the version's manifest: rows that span
physical lines (quoted newlines in CSV) and a file that grew while it was read (the bytes ingested)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from curate.engine.local import LocalExecutor, run_recipe
from curate.engine.sequence import Step, run_sequence
from curate.engine.steps import prepare
from curate.ingest import InputFile, read_batches
from curate.store import Store
from schemas.recipe_loader import load_recipe_doc

CSV = (
    "question,answer\n"
    "q0,plain answer\n"
    'q1,"an answer\nover three\nlines"\n'  # lines 3-5: one row, kept
    "q2,another plain answer\n"
    '"q3\nasked on two lines",fine\n'  # lines 7-8
    "q4,last\n"
)


def _recipe(tmp_path: Path, path: str, extra: str = "") -> Any:
    text = f"""
name: lin
output: {{kind: sft, dir: {tmp_path / "runs"}}}
sources:
  - {{name: s, path: {path}, convert: alpaca_to_messages{extra}}}
publish: {{store: {tmp_path / "store"}}}
"""
    return load_recipe_doc(text, str(tmp_path / "r.yaml"))


def test_the_reader_names_the_lines_of_a_kept_row(tmp_path: Path) -> None:
    p = tmp_path / "faq.csv"
    p.write_text(CSV)
    (batch,) = read_batches(InputFile(p, "csv", "none"))
    assert batch.rows == [1, 2, 5, 6, 8] and not batch.errors
    assert batch.spans == {2: 5, 6: 8}  # row 2 starts on line 3 and ends on line 5
    assert batch.records[1]["answer"] == "an answer\nover three\nlines"


def test_kept_multiline_rows_are_listed_in_the_run_and_the_manifest(tmp_path: Path) -> None:
    p = tmp_path / "faq.csv"
    p.write_text(CSV)
    res = run_recipe(
        _recipe(tmp_path, "faq.csv", ", columns: {instruction: question, output: answer}"), show_progress=False
    )
    (f,) = res.summary["sources"]["s"]["files"]
    assert (f["input_rows"], f["kept"], f["multiline_rows"]) == (5, 5, 2)
    assert f["bytes"] == p.stat().st_size and f.get("changed_while_read") is None
    assert res.summary["outputs"]["multiline_rows"] == "multiline_rows.jsonl"
    listed = [json.loads(line) for line in (res.run_dir / "multiline_rows.jsonl").read_text().splitlines()]
    assert [(e["row"], e["lines"]) for e in listed] == [(2, [3, 5]), (6, [7, 8])]
    assert all(e["uri"] == f["uri"] and e["source"] == "s" for e in listed)
    # the records themselves still name their first line (source.row), as every other row does
    rows = pl.read_parquet(res.run_dir / "data")["source"].struct.field("row").sort().to_list()
    assert rows == [1, 2, 5, 6, 8]
    (inp,) = Store(tmp_path / "store").manifest("lin@1")["inputs"]
    assert (inp["multiline_rows"], inp["bytes"]) == (2, p.stat().st_size) and "changed_while_read" not in inp


def test_a_run_without_multiline_rows_lists_none(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b'{"instruction": "q", "output": "a"}\n')
    res = run_recipe(_recipe(tmp_path, "a.jsonl"), show_progress=False)
    assert "multiline_rows" not in res.summary["outputs"] and not (res.run_dir / "multiline_rows.jsonl").exists()
    assert res.summary["sources"]["s"]["files"][0]["multiline_rows"] == 0


class AppendAfterHashing(LocalExecutor):
    """The local executor, with a writer appending to the input once every file is hashed."""

    def __init__(self, path: Path, more: bytes):
        super().__init__(show_progress=False)
        self.path, self.more = path, more

    def map(self, step: Step, prep: Any, calls: Sequence[tuple[Any, ...]], label: str = "") -> list[Any]:
        out = super().map(step, prep, calls, label)
        if step.name == "hash-file":
            with self.path.open("ab") as fh:
                fh.write(self.more)
        return out


def _rows(start: int, n: int) -> bytes:
    return b"".join(orjson.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + b"\n" for i in range(start, start + n))


def test_a_file_that_grew_while_read_says_so_in_the_manifest(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    first, later = _rows(0, 300), _rows(300, 120)
    p.write_bytes(first)
    prep = prepare(_recipe(tmp_path, "in.jsonl"), report=False)
    outcome = run_sequence(prep, AppendAfterHashing(p, later), False, [])
    assert p.stat().st_size == len(first) + len(later)  # the writer did append mid-run

    (f,) = outcome.result.summary["sources"]["s"]["files"]
    grew = {"size_when_hashed": len(first), "size_after_read": len(first) + len(later)}
    assert f["changed_while_read"] == grew and f["bytes"] == len(first) and f["input_rows"] == 300
    summary = json.loads((outcome.result.run_dir / "summary.json").read_text())
    assert summary["sources"]["s"]["files"][0]["changed_while_read"] == grew

    manifest = Store(tmp_path / "store").manifest("lin@1")
    (inp,) = manifest["inputs"]
    # lineage describes exactly the bytes ingested: the first `bytes` bytes, whose sha256 it records
    assert inp["changed_while_read"] == grew and inp["bytes"] == len(first) and inp["rows"] == 300
    assert inp["sha256"] == hashlib.sha256(p.read_bytes()[: inp["bytes"]]).hexdigest()
    assert manifest["rows"] == 300

    # the next run reads the whole, now stable file: no change reported, the new bytes counted
    again = run_recipe(_recipe(tmp_path, "in.jsonl"), show_progress=False)
    (g,) = again.summary["sources"]["s"]["files"]
    assert g.get("changed_while_read") is None and g["bytes"] == p.stat().st_size and g["input_rows"] == 420
