from __future__ import annotations

import gzip
import json
from pathlib import Path

import datasets
import polars as pl
import pytest
import zstandard

from curate.ingest import InputError, discover, read_batches
from curate.ingest.files import InputFile
from curate.ingest.readers import iter_lines


def _read(path: Path, fmt: str, **kw: object) -> tuple[list[int], list[dict], dict[int, str]]:
    f = discover([str(path)], fmt, path.parent)[0]
    rows, recs, errs = [], [], {}
    for b in read_batches(f, batch_rows=2, **kw):  # tiny batches exercise batch boundaries
        rows += b.rows
        recs += b.records
        errs.update({e.row: e.reason for e in b.errors})
    return rows, recs, errs


def test_jsonl_rows_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"a": 1}\n\n{bad\n[1, 2]\n\xff\xfe\n{"a": 2}')  # no trailing newline on the last row
    rows, recs, errs = _read(p, "auto")
    assert rows == [0, 5]
    assert recs == [{"a": 1}, {"a": 2}]
    assert errs == {1: "empty_row", 2: "invalid_json", 3: "not_an_object", 4: "invalid_utf8"}


@pytest.mark.parametrize("suffix,opener", [(".gz", gzip.compress), (".zst", zstandard.ZstdCompressor().compress)])
def test_compressed_jsonl(tmp_path: Path, suffix: str, opener) -> None:
    p = tmp_path / f"a.jsonl{suffix}"
    p.write_bytes(opener(b"".join(json.dumps({"i": i}).encode() + b"\n" for i in range(5))))
    f = discover([str(p)], "auto", tmp_path)[0]
    assert (f.format, f.compression) == ("jsonl", "gzip" if suffix == ".gz" else "zstd")
    rows, _recs, errs = _read(p, "auto")
    assert rows == list(range(5)) and not errs


def test_compression_detected_by_magic_bytes(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(gzip.compress(b'{"x": 1}\n'))
    assert discover([str(p)], "auto", tmp_path)[0].compression == "gzip"
    assert _read(p, "auto")[1] == [{"x": 1}]


def test_truncated_gzip_quarantines_the_rest(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl.gz"
    data = gzip.compress(b"".join(b'{"i": %d}\n' % i for i in range(2000)))
    p.write_bytes(data[: len(data) // 2])
    rows, _, errs = _read(p, "auto")
    assert list(errs.values()) == ["truncated_file"]
    assert list(errs) == [len(rows)]  # the error sits right after the last readable row
    assert rows == list(range(len(rows))) and len(rows) > 900  # every complete line before the break is kept


def test_overlong_line_is_cut_and_reported(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"a": 1}\n{"a": "' + b"x" * 5000 + b'"}\n{"a": 3}\n')
    rows, _recs, errs = _read(p, "auto", max_line_bytes=100)
    assert rows == [0, 2] and errs == {1: "too_long"}


def test_iter_lines_bounded_over_chunk_boundaries() -> None:
    import io

    data = b"ab\n" + b"z" * 50 + b"\ncd"
    got = list(iter_lines(io.BytesIO(data), max_line_bytes=10, chunk=7))
    assert got == [(b"ab", False), (b"z" * 10, True), (b"cd", False)]


def test_json_array_and_broken_array(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text(json.dumps([{"a": 1}, 5, {"a": 2}]))
    rows, recs, errs = _read(p, "auto")
    assert rows == [0, 2] and recs == [{"a": 1}, {"a": 2}] and errs == {1: "not_an_object"}
    p.write_text('[{"a": 1}, {"a": 2}, {"a": ')
    rows, _recs, errs = _read(p, "auto")
    assert rows == [0, 1] and errs == {2: "invalid_json"}


def test_json_file_holding_json_lines(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text('{"a": 1}\n{"a": 2}\n')
    assert _read(p, "auto")[1] == [{"a": 1}, {"a": 2}]


def test_csv_ragged_and_multiline(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text('q,a\nhi,"multi\nline"\nx,y,z\n,\nok,fine\n')
    _rows, recs, errs = _read(p, "auto")
    assert recs == [{"q": "hi", "a": "multi\nline"}, {"q": "ok", "a": "fine"}]
    # CSV rows are numbered by the physical line they start on (row n is line n + 1)
    assert _rows == [1, 5] and errs == {3: "wrong_field_count", 4: "empty_row"}


def test_parquet_and_text_and_hf_disk(tmp_path: Path) -> None:
    pq = tmp_path / "a.parquet"
    pl.DataFrame({"text": ["a", "b", "c"]}).write_parquet(pq)
    assert _read(pq, "auto")[1] == [{"text": "a"}, {"text": "b"}, {"text": "c"}]
    txt = tmp_path / "b.txt"
    txt.write_text("one\n\ntwo\n")
    _rows, recs, errs = _read(txt, "auto")
    assert recs == [{"text": "one"}, {"text": "two"}] and errs == {1: "empty_row"}
    f = InputFile(txt, "text", "none")
    whole = [r for b in read_batches(f, text_unit="file") for r in b.records]
    assert whole == [{"text": "one\n\ntwo\n"}]
    d = tmp_path / "hf"
    datasets.Dataset.from_dict({"text": ["x", "y"]}).save_to_disk(str(d))
    f = discover([str(d)], "auto", tmp_path)[0]
    assert f.format == "hf_disk"
    assert [r for b in read_batches(f) for r in b.records] == [{"text": "x"}, {"text": "y"}]


def test_corrupt_parquet_is_one_quarantined_row(tmp_path: Path) -> None:
    p = tmp_path / "a.parquet"
    p.write_bytes(b"PAR1 not really")
    assert _read(p, "auto")[2] == {0: "corrupt_file"}


def test_discover_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no input matches"):
        discover(["nothing-*.jsonl"], "auto", tmp_path)
    (tmp_path / "x.weird").write_text("?")
    with pytest.raises(InputError, match="set `format:`"):
        discover(["x.weird"], "auto", tmp_path)
    (tmp_path / "b.jsonl").write_text("{}\n")
    (tmp_path / "a.jsonl").write_text("{}\n")
    assert [f.path.name for f in discover(["*.jsonl", "a.jsonl"], "auto", tmp_path)] == ["a.jsonl", "b.jsonl"]


def test_json_single_object_forms(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text('{"a": 1}\n')
    assert _read(p, "auto")[1] == [{"a": 1}]
    p.write_text('{\n  "a": 1,\n  "b": [1, 2]\n}\n')  # pretty-printed: still one row
    assert _read(p, "auto")[1] == [{"a": 1, "b": [1, 2]}]
    p.write_text('{\n  "a": 1,\n')  # broken pretty-printed object: one quarantined row
    assert _read(p, "auto")[2] == {0: "invalid_json"}
    p.write_text('{"a": 1}\nnot json\n{"a": 2}\n')  # JSON Lines under a .json name, streamed line by line
    rows, recs, errs = _read(p, "auto")
    assert rows == [0, 2] and recs == [{"a": 1}, {"a": 2}] and errs == {1: "invalid_json"}
