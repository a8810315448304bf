"""The columnar JSON Lines read gives exactly what the per-line read gives, defects included."""

from __future__ import annotations

import io
import random
from pathlib import Path

import orjson
import pytest
from polars.testing import assert_frame_equal

from curate.convert import get_converter
from curate.engine.batch import SourceInfo, process_batch
from curate.ingest import InputFile, read_batches
from curate.ingest.extract import columnar_fields
from curate.ingest.readers import _line_runs, columnar_json, iter_line_blocks
from schemas.kinds import Kind

GOOD = b'{"instruction": "Add two and two.", "input": "2+2", "output": "4", "extra": 1.5}'
# Lines on which Arrow's JSON reader and orjson could disagree; each must end as orjson says.
ODD = [
    b'{"instruction": 5, "output": "x"}',  # a number is not text
    b'{"instruction": "a", "instruction": "b", "output": "x"}',  # a key twice (orjson: the last)
    b'{"instruction": "a", "output": "x", "score": NaN}',  # not JSON
    b'{"instruction": "a", "output": "x", "score": -Infinity}',
    b'{"instruction": "a", "output": "x", "deep": ' + b"[" * 1100 + b"]" * 1100 + b"}",
    b'{"instruction": "a", "output": "x"} {"instruction": "b", "output": "y"}',  # two objects
    b'{"instruction": "a", "output": "x", "bad": "\xff"}',  # invalid UTF-8 in a key nobody reads
    b'{"instruction": "a\\ud800", "output": "x"}',  # a lone surrogate
    b"\xef\xbb\xbf" + GOOD,  # a byte-order mark
    b"",  # blank
    b"   ",
    b"[1, 2]",  # not an object
    b'{"output": "x"}',  # missing required field
    b'{"instruction": null, "output": "x"}',  # null required field
    b'{"instruction": "a", "input": null, "output": "x", "extra": {"a": [1, 2.5]}}',  # null optional
    b'{"instruction": "caf\\u00e9 \\"q\\"", "output": "x\\ny", "k": [true, null, "s"]}',  # escapes
    b'{"instruction": "a", "output": "   "}',  # validation, not reading, rejects this
    b'{"instruction": "a", "output": "x", "n": 123456789012345678901234567890}',
    b'{"instr\\u0075ction": "escaped key", "output": "x"}\r',
    b'{"instruction": "a", "output": "x", "mixed": 1}',
]


def _outcomes(path: Path, columnar: bool, batch_rows: int) -> tuple:
    conv = get_converter("alpaca_to_messages")
    cols = columnar_fields(conv.fields, {}) if columnar else None
    info = SourceInfo("s", path.as_uri(), "ab")
    out, tables = [], 0
    for b in read_batches(InputFile(path, "jsonl", "none"), batch_rows=batch_rows, columns=cols):
        tables += b.table is not None
        res = process_batch(b, [conv], [None], {}, Kind.SFT, info, max_chars=1000)
        out.append((res.records, res.input_rows, res.kept_rows, res.quarantine, res.rejected))
    return out, tables


@pytest.mark.parametrize("odd", range(len(ODD)))
def test_columnar_read_matches_per_line(tmp_path: Path, odd: int) -> None:
    path = tmp_path / "a.jsonl"
    # batches of 4: clean ones go columnar, the one holding the odd line must not change outcomes
    lines = [GOOD] * 6 + [ODD[odd]] + [GOOD.replace(b"two", b"three")] * 5 + [b'{"instruction": "z", "output": "q"}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    want, none = _outcomes(path, columnar=False, batch_rows=4)
    got, tables = _outcomes(path, columnar=True, batch_rows=4)
    assert none == 0 and tables >= 2
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert_frame_equal(g[0], w[0])
        assert g[1:] == w[1:]


def test_columnar_rejects_missing_fields_like_extract(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"output": "x"}\n{"instruction": null, "output": "y"}\n' + GOOD + b"\n")
    got, tables = _outcomes(path, columnar=True, batch_rows=10)
    want, _ = _outcomes(path, columnar=False, batch_rows=10)
    assert tables == 1
    assert got[0][3] == want[0][3] and [q["reason"] for q in got[0][3]] == ["missing_field", "missing_field"]
    assert orjson.loads(got[0][3][0]["raw"]) == {"output": "x"}


def test_columnar_json_refuses_what_orjson_refuses() -> None:
    cols = {"instruction": columnar_fields(get_converter("alpaca_to_messages").fields, {})["instruction"]}
    assert columnar_json(GOOD, 1, cols) is not None
    assert columnar_json(GOOD + b"\n" + GOOD, 3, cols) is None  # a row count that does not match
    for line in ODD[:9]:
        assert columnar_json(GOOD + b"\n" + line, 2, cols) is None or line == ODD[1], line


@pytest.mark.parametrize("chunk", [5, 16, 64, 1 << 12])
@pytest.mark.parametrize("max_line_bytes", [8, 30, 1 << 20])
def test_line_runs_give_the_lines_of_iter_line_blocks(chunk: int, max_line_bytes: int) -> None:
    rng = random.Random(chunk * 31 + max_line_bytes)
    lines = [bytes(rng.choice(b"ab \r{}") for _ in range(rng.choice([0, 1, 5, 12, 40, 90]))) for _ in range(300)]
    data = b"\n".join(lines) + rng.choice([b"", b"\n", b"tail"])

    def flat(blocks: list[tuple[list[bytes], set[int]]]) -> list[tuple[bytes, bool]]:
        return [(line, i in long) for block, long in blocks for i, line in enumerate(block)]

    want = flat(list(iter_line_blocks(io.BytesIO(data), max_line_bytes, chunk)))
    got = flat([(r.split(), r.too_long) for r in _line_runs(io.BytesIO(data), max_line_bytes, chunk)])
    assert got == want
    # a raw run's ``longest`` bounds its lines (columnar_json skips the nesting scan under it)
    for r in _line_runs(io.BytesIO(data), max_line_bytes, chunk):
        if r.data is not None:
            assert r.longest is not None and r.longest >= max(map(len, r.split()))
    # cutting runs anywhere keeps every line once, in order
    cut = []
    for r in _line_runs(io.BytesIO(data), max_line_bytes, chunk):
        while r.n:
            head, r = r.cut(rng.randint(1, 7))
            cut.append((head.split(), head.too_long))
    assert flat(cut) == want
