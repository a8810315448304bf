"""Hostile inputs from issue 15: one defect costs one row, never the rows behind it.

Each test builds the reported reproduction (bare quotes in TSV/CSV, an over-long CSV field, cut
gzip/zstd files, an over-long line late in a file, JSON nested far past any sane depth) and checks
exactly which rows are kept and which are quarantined, with which reason and at which line.
"""

from __future__ import annotations

import gzip
import resource
import time
import zlib
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
import zstandard

from curate.ingest import discover, read_batches
from curate.ingest.readers import MAX_JSON_DEPTH, ReadError


def _read(path: Path, **kw: object) -> tuple[list[int], list[dict], list[ReadError]]:
    f = discover([str(path)], "auto", path.parent)[0]
    rows, recs, errs = [], [], []
    for b in read_batches(f, **kw):
        b = b.parsed()
        rows += b.rows
        recs += b.records
        errs += b.errors
    return rows, recs, errs


def _tsv_with_bare_quote(n: int, at: int) -> bytes:
    lines = ["id\ttext"] + [f"{i}\tsentence number {i}" for i in range(n)]
    lines[at + 1] = f'{at}\t"a quote that never closes'
    return ("\n".join(lines) + "\n").encode()


def test_tsv_bare_quote_costs_nothing_by_default(tmp_path: Path) -> None:
    p = tmp_path / "a.tsv"
    p.write_bytes(_tsv_with_bare_quote(1000, 10))
    rows, recs, errs = _read(p)
    assert errs == [] and len(recs) == 1000
    assert rows == list(range(1, 1001))  # row n is physical line n + 1
    assert recs[10]["text"] == '"a quote that never closes'


def test_tsv_with_quoting_on_quarantines_only_the_bare_quote_line(tmp_path: Path) -> None:
    p = tmp_path / "a.tsv"
    p.write_bytes(_tsv_with_bare_quote(1000, 10))
    rows, recs, errs = _read(p, csv_quote='"')
    assert [(e.row, e.reason) for e in errs] == [(11, "unterminated_quote")]
    assert "line 12" in errs[0].detail
    assert len(recs) == 999 and 11 not in rows


def test_csv_quote_swallowing_three_lines_keeps_them_as_rows(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text('id,text\n1,"hello\n2,world\n3,foo\n4,bar\n')
    rows, recs, errs = _read(p)
    assert [(e.row, e.reason) for e in errs] == [(1, "unterminated_quote")]
    assert recs == [{"id": "2", "text": "world"}, {"id": "3", "text": "foo"}, {"id": "4", "text": "bar"}]
    assert rows == [2, 3, 4]


def test_csv_real_multiline_field_is_one_row(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text('id,text\n1,"two\nlines"\n2,after\n')
    rows, recs, errs = _read(p)
    assert errs == [] and rows == [1, 3]
    assert recs[0]["text"] == "two\nlines"


def test_csv_bare_quote_pairing_with_a_later_quote_is_not_merged(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text('id,text\n1,"open\n2,a 5" screen\n3,three\n')
    _rows, recs, errs = _read(p)
    assert (1, "unterminated_quote") in [(e.row, e.reason) for e in errs] or (1, "invalid_csv") in [
        (e.row, e.reason) for e in errs
    ]
    assert {"id": "3", "text": "three"} in recs
    assert all("\n" not in r["text"] for r in recs)


@pytest.mark.parametrize("quote", [None, "none", "", "null"])
def test_recipe_can_turn_quoting_off(quote: str | None) -> None:
    from schemas.recipe import CsvOptions

    assert CsvOptions.model_validate({"quote": quote}).quote is None
    assert CsvOptions().quote == "auto"
    with pytest.raises(ValueError, match="one character"):
        CsvOptions.model_validate({"quote": "ab"})


def test_csv_quoting_off_reads_every_line(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text('id,text\n1,"open\n2,two\n')
    _rows, recs, errs = _read(p, csv_quote=None)
    assert errs == [] and recs == [{"id": "1", "text": '"open'}, {"id": "2", "text": "two"}]


def test_csv_field_over_the_limit_costs_one_row(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    good = "".join(f"{i},row {i}\n" for i in range(1000))
    p.write_text("id,text\n" + "0," + "x" * 5000 + "\n" + good)
    rows, recs, errs = _read(p, max_line_bytes=1000)
    assert [(e.row, e.reason) for e in errs] == [(1, "too_long")]
    assert len(recs) == 1000 and rows[0] == 2


def test_csv_quoted_field_over_the_limit_costs_one_row(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    big = '"' + "y\n" * 400 + '"'
    p.write_text("id,text\n0," + big + "\n" + "".join(f"{i},row {i}\n" for i in range(1000)))
    _rows, recs, errs = _read(p, max_line_bytes=500)
    assert errs[0].row == 1 and errs[0].reason == "unterminated_quote"
    assert sum(r["text"].startswith("row ") for r in recs) == 1000
    assert all(r["text"].startswith("row ") for r in recs)  # no fragment of the big field is kept as a row


def _lines(n: int) -> bytes:
    return b"".join(orjson.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + b"\n" for i in range(n))


def _recoverable_lines(data: bytes, cut: bytes, kind: str) -> int:
    """Complete lines a decoder can get from ``cut`` (the ground truth for a cut file)."""
    if kind == "gz":
        out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut)
    else:
        out = zstandard.ZstdDecompressor().decompressobj().decompress(cut)
    assert data.startswith(out)
    return out.count(b"\n")


@pytest.mark.parametrize("kind", ["gz", "zst"])
@pytest.mark.parametrize("columnar", [True, False])
def test_truncated_compressed_file_keeps_every_complete_line(tmp_path: Path, kind: str, columnar: bool) -> None:
    data = _lines(20_000)
    blob = gzip.compress(data) if kind == "gz" else zstandard.ZstdCompressor().compress(data)
    cut = blob[: len(blob) // 2]
    p = tmp_path / f"a.jsonl.{kind}"
    p.write_bytes(cut)
    cols = {"instruction": pa.string(), "output": pa.string()} if columnar else None
    rows, _recs, errs = _read(p, columns=cols, batch_rows=3000)
    complete = _recoverable_lines(data, cut, kind)
    assert complete > 5000
    assert rows == list(range(complete))
    assert [(e.row, e.reason) for e in errs] == [(complete, "truncated_file")]
    assert f"line {complete + 1}" in errs[0].detail


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_truncated_csv_and_text_are_detected(tmp_path: Path, kind: str) -> None:
    data = b"id,text\n" + b"".join(b"%d,row %d\n" % (i, i) for i in range(200_000))
    blob = gzip.compress(data) if kind == "gz" else zstandard.ZstdCompressor().compress(data)
    p = tmp_path / f"a.csv.{kind}"
    p.write_bytes(blob[: len(blob) // 2])
    _rows, recs, errs = _read(p)
    assert errs[-1].reason == "truncated_file"
    assert len(recs) == _recoverable_lines(data, blob[: len(blob) // 2], kind) - 1  # less the header


def test_damaged_gzip_keeps_what_came_before(tmp_path: Path) -> None:
    data = _lines(50_000)
    blob = bytearray(gzip.compress(data))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\x00" * 64
    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(bytes(blob))
    rows, _recs, errs = _read(p)
    assert errs[-1].reason == "corrupt_file" and "compressed byte" in errs[-1].detail
    # deflate has no check before the end of the member: bytes decoded just before the damage
    # cannot be verified, so only the lines well before it are known good
    first_error = min(e.row for e in errs)
    assert first_error > 20_000 and rows[:first_error] == list(range(first_error))


def test_gzip_named_file_that_is_plain_text_is_read(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(_lines(10))
    _rows, recs, errs = _read(p)
    assert errs == [] and len(recs) == 10


def test_long_line_late_in_the_file_is_quarantined(tmp_path: Path) -> None:
    short = _lines(60_000)  # ~2.6 MB of short lines, then a line over the limit, then more
    long = orjson.dumps({"instruction": "x" * 3_100_000, "output": "y"}) + b"\n"
    p = tmp_path / "a.jsonl"
    p.write_bytes(short + long + _lines(3))
    for cols in (None, {"instruction": pa.string(), "output": pa.string()}):
        rows, _recs, errs = _read(p, max_line_bytes=3_000_000, columns=cols)
        assert [(e.row, e.reason) for e in errs] == [(60_000, "too_long")]
        assert len(rows) == 60_003


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("columnar", [True, False])
def test_deep_json_line_is_quarantined_and_bounded(tmp_path: Path, columnar: bool) -> None:
    p = tmp_path / "a.jsonl"
    good = orjson.dumps({"instruction": "q", "output": "a"})
    deep_unused = b'{"instruction": "q", "output": "a", "z": ' + _deep(100_000) + b"}"
    deep_used = b'{"instruction": ' + _deep(30_000) + b', "output": "a"}'
    p.write_bytes(b"\n".join([good, deep_unused, good, deep_used, good]) + b"\n")
    cols = {"instruction": pa.string(), "output": pa.string()} if columnar else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    rows, _recs, errs = _read(p, columns=cols)
    assert time.perf_counter() - t < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300_000  # KB: well under 300 MB more
    assert rows == [0, 2, 4]
    assert [(e.row, e.reason) for e in errs] == [(1, "too_deep"), (3, "too_deep")]
    assert str(MAX_JSON_DEPTH) in errs[0].detail


def test_deep_json_array_item_costs_one_item(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_bytes(b'[{"a": 1}, ' + _deep(100_000) + b', {"a": 2}]')
    rows, recs, errs = _read(p)
    assert recs == [{"a": 1}, {"a": 2}] and rows == [0, 2]
    assert [(e.row, e.reason) for e in errs] == [(1, "too_deep")]


def test_deep_json_array_file_is_bounded(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_bytes(_deep(100_000))
    t = time.perf_counter()
    _rows, recs, errs = _read(p)
    assert time.perf_counter() - t < 10
    assert recs == [] and [e.reason for e in errs] == ["too_deep"]
