"""Property test over every input format: good rows plus injected defects, nothing lost or merged.

For each format (JSON Lines, JSON array, CSV, TSV, text, Parquet) and compression (none, gzip,
zstd, and gzip/zstd cut short), hypothesis generates good rows, each carrying a unique token, and
mixes in defects: bare quotes, wrong field counts, over-long lines and fields, invalid UTF-8, blank
lines, JSON nested past the limit, non-objects, ``NaN`` literals. The reader must then:

- keep every good row exactly once, unchanged (rows lost 0);
- keep no record holding two tokens or part of one (rows merged 0);
- keep no record without a token (garbage kept 0);
- raise nothing (tracebacks 0), and account each defect as a read error, never as a kept row.

A cut file may lose the rows after the break, but only those: every row whose line lies whole in
the bytes a decoder can recover is kept, and a ``truncated_file`` error says where the rest went.
``STATS`` counts the cases tried and the violations found (printed at the end of the module).
"""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.ingest import discover, read_batches

LIMIT = 400  # max_line_bytes for every case
STATS: Counter[str] = Counter()

WORD = st.text(
    st.sampled_from([*"abcxyz 019_-.!?é漢字\"'[]{},:;#", "\\"]),
    min_size=1,
    max_size=20,
)

JSONL_DEFECTS = ["invalid_json", "invalid_utf8", "blank", "too_long", "deep", "not_object", "nan", "cr_only"]
CSV_DEFECTS = ["bare_quote", "wrong_count", "too_long", "invalid_utf8", "blank", "quote_in_middle"]
TEXT_DEFECTS = ["invalid_utf8", "too_long", "blank"]


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    keys = ("cases", "good_rows", "rows_lost", "rows_merged", "rows_twice", "rows_altered", "garbage_kept")
    print("\nfuzz over formats:", {k: STATS[k] for k in keys})


def _token(i: int) -> str:
    return f"tok{i:05d}z"


def _compress(data: bytes, how: str) -> tuple[bytes, str]:
    if how.startswith("gz"):
        return gzip.compress(data), ".gz"
    if how.startswith("zst"):
        return zstandard.ZstdCompressor().compress(data), ".zst"
    return data, ""


def _recovered(blob: bytes, how: str) -> bytes:
    """What a decoder gets from ``blob`` (the ground truth for a cut file)."""
    if how.startswith("gz"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(blob)
    return zstandard.ZstdDecompressor().decompressobj().decompress(blob)


def _read_all(path: Path, **kw: object) -> tuple[list[dict], list]:
    f = discover([str(path)], "auto", path.parent)[0]
    recs, errs = [], []
    for b in read_batches(f, batch_rows=7, max_line_bytes=LIMIT, **kw):
        b = b.parsed()
        recs += b.records
        errs += b.errors
    return recs, errs


def _check(recs: list[dict], errs: list, good: dict[str, dict], must_keep: set[str], cut: bool, defects: int) -> None:
    """Compare what was read with the good rows; count violations in STATS (and fail on any)."""
    STATS["cases"] += 1
    STATS["good_rows"] += len(good)
    seen: Counter[str] = Counter()
    for r in recs:
        blob = orjson.dumps(r, default=str).decode()
        toks = [t for t in good if t in blob]
        if not toks:
            STATS["garbage_kept"] += 1
        elif len(toks) > 1:
            STATS["rows_merged"] += 1
        else:
            seen[toks[0]] += 1
            if r != good[toks[0]]:
                STATS["rows_altered"] += 1
    lost = {t for t in must_keep if seen[t] == 0}
    STATS["rows_lost"] += len(lost)
    STATS["rows_twice"] += sum(1 for n in seen.values() if n > 1)
    assert not lost, f"good rows lost: {sorted(lost)[:5]}"
    assert all(n == 1 for n in seen.values())
    assert len(recs) == sum(seen.values()), "a kept record is garbage or merges rows"
    assert all(r == good[t] for r in recs for t in good if t in orjson.dumps(r, default=str).decode())
    if cut:
        assert errs and errs[-1].reason in ("truncated_file", "corrupt_file")
    else:
        assert len(errs) >= defects  # each defect is at least one error (a swallowed line more)


def _lines_in(prefix: bytes, lines: list[bytes]) -> int:
    """How many of ``lines`` lie whole (with their newline) in ``prefix``."""
    return prefix.count(b"\n")


# --- JSON Lines -----------------------------------------------------------------------------------


def _jsonl_defect(kind: str, w: str) -> bytes:
    return {
        "invalid_json": b'{"instruction": "' + w.encode() + b'", ',
        "invalid_utf8": b'{"instruction": "\xff\xfe bad", "output": "x"}',
        "blank": b"  \t",
        "too_long": orjson.dumps({"instruction": "x" * (LIMIT + 10), "output": "y"}),
        "deep": b'{"instruction": "d", "output": "o", "z": ' + b"[" * 1100 + b"]" * 1100 + b"}",
        "not_object": orjson.dumps([w]),
        "nan": b'{"instruction": "n", "output": "o", "score": NaN}',
        "cr_only": b"\r",
    }[kind]


ROWS = st.lists(
    st.one_of(st.tuples(st.just("good"), WORD), st.tuples(st.sampled_from(JSONL_DEFECTS), WORD)), max_size=30
)
COMPRESSION = st.sampled_from(["none", "gz", "zst", "gz_cut", "zst_cut"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS, how=COMPRESSION, columnar=st.booleans(), cut_at=st.floats(0.05, 0.95))
def test_jsonl(rows: list[tuple[str, str]], how: str, columnar: bool, cut_at: float) -> None:
    good: dict[str, dict] = {}
    lines: list[bytes] = []
    for i, (kind, w) in enumerate(rows):
        if kind == "good":
            rec = {"instruction": f"{_token(i)} {w}", "output": w}
            good[_token(i)] = rec
            lines.append(orjson.dumps(rec))
        else:
            lines.append(_jsonl_defect(kind, w))
    data = b"\n".join(lines) + b"\n"
    _run_lines_case("in.jsonl", data, how, cut_at, good, lines, sum(k != "good" for k, _ in rows), columnar)


def _run_lines_case(
    name: str,
    data: bytes,
    how: str,
    cut_at: float,
    good: dict[str, dict],
    lines: list[bytes],
    defects: int,
    columnar: bool = False,
    header: int = 0,
    **kw: object,
) -> None:
    blob, ext = _compress(data, how)
    cut = how.endswith("_cut")
    if cut:
        blob = blob[: max(1, int(len(blob) * cut_at))]
    must_keep = set(good)
    if cut:
        whole = _lines_in(_recovered(blob, how), lines)  # lines (header included) a decoder gets whole
        must_keep = {t for t in good if any(t.encode() in ln for ln in lines[: max(0, whole)])}
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / (name + ext)
        p.write_bytes(blob)
        cols = {"instruction": pa.string(), "output": pa.string()} if columnar else None
        recs, errs = _read_all(p, columns=cols, **kw) if name.endswith(".jsonl") else _read_all(p, **kw)
    _check(recs, errs, good, must_keep, cut, defects)


# --- CSV and TSV ----------------------------------------------------------------------------------


def _csv_line(values: list[str], delim: str, quoting: bool) -> bytes:
    if not quoting:
        return delim.join(values).encode()
    buf = io.StringIO()
    csv.writer(buf, delimiter=delim, lineterminator="").writerow(values)
    return buf.getvalue().encode()


def _csv_defect(kind: str, w: str, delim: str) -> bytes:
    return {
        "bare_quote": f'q{delim}"opens {w.replace(chr(34), "")}'.encode(),
        "wrong_count": f"a{delim}b{delim}c".encode(),
        "too_long": f"long{delim}{'x' * (LIMIT + 5)}".encode(),
        "invalid_utf8": b"caf\xe9" + delim.encode() + b"\xff",
        "blank": b"",
        "quote_in_middle": f'mid{delim}a "quoted" word{delim}extra'.encode(),
    }[kind]


CSV_ROWS = st.lists(
    st.one_of(st.tuples(st.just("good"), WORD), st.tuples(st.sampled_from(CSV_DEFECTS), WORD)), max_size=30
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=CSV_ROWS, how=COMPRESSION, tsv=st.booleans(), cut_at=st.floats(0.05, 0.95))
def test_csv_and_tsv(rows: list[tuple[str, str]], how: str, tsv: bool, cut_at: float) -> None:
    delim = "\t" if tsv else ","
    good: dict[str, dict] = {}
    lines = [_csv_line(["instruction", "output"], delim, not tsv)]
    for i, (kind, w) in enumerate(rows):
        if kind == "good" or (tsv and kind == "bare_quote"):  # TSV does not quote: a bare quote is text
            text = w.replace("\t", " ") if tsv else w
            if kind == "bare_quote":
                text = '"opens ' + text
            rec = {"instruction": f"{_token(i)} {text}", "output": text}
            good[_token(i)] = rec
            lines.append(_csv_line([rec["instruction"], rec["output"]], delim, not tsv))
        else:
            lines.append(_csv_defect(kind, w, delim))
    data = b"\n".join(lines) + b"\n"
    defects = sum(k not in ("good", "quote_in_middle") and not (tsv and k == "bare_quote") for k, _ in rows)
    # `a "quoted" word` mid-field is text, not a quote: a CSV row with 3 fields, one TSV row of 3 too
    _run_lines_case("in.tsv" if tsv else "in.csv", data, how, cut_at, good, lines, defects)


# --- text, JSON arrays, Parquet --------------------------------------------------------------------


TEXT_ROWS = st.lists(
    st.one_of(st.tuples(st.just("good"), WORD), st.tuples(st.sampled_from(TEXT_DEFECTS), WORD)), max_size=30
)


@settings(max_examples=70, deadline=None)
@given(rows=TEXT_ROWS, how=COMPRESSION, cut_at=st.floats(0.05, 0.95))
def test_text(rows: list[tuple[str, str]], how: str, cut_at: float) -> None:
    good: dict[str, dict] = {}
    lines: list[bytes] = []
    for i, (kind, w) in enumerate(rows):
        if kind == "good":
            good[_token(i)] = {"text": f"{_token(i)} {w}"}
            lines.append(good[_token(i)]["text"].encode())
        else:
            lines.append(
                {"invalid_utf8": b"caf\xe9 " + w.encode(), "too_long": b"w" * (LIMIT + 1), "blank": b" "}[kind]
            )
    data = b"\n".join(lines) + b"\n"
    _run_lines_case("in.txt", data, how, cut_at, good, lines, sum(k != "good" for k, _ in rows))


JSON_ITEMS = st.lists(
    st.one_of(st.tuples(st.just("good"), WORD), st.tuples(st.sampled_from(["not_object", "deep", "number"]), WORD)),
    max_size=25,
)


@settings(max_examples=70, deadline=None)
@given(items=JSON_ITEMS, how=st.sampled_from(["none", "gz", "zst"]), deep_file=st.booleans())
def test_json_array(items: list[tuple[str, str]], how: str, deep_file: bool) -> None:
    good: dict[str, dict] = {}
    parts: list[bytes] = []
    for i, (kind, w) in enumerate(items):
        if kind == "good":
            good[_token(i)] = {"instruction": f"{_token(i)} {w}", "output": w}
            parts.append(orjson.dumps(good[_token(i)]))
        else:
            parts.append({"not_object": orjson.dumps(w), "deep": b"[" * 1500 + b"]" * 1500, "number": b"1.5"}[kind])
    if deep_file:  # one item deep enough that building it naively would exhaust memory
        parts.append(b"[" * 30_000 + b"]" * 30_000)
    data = b"[" + b",\n".join(parts) + b"]"
    defects = sum(k != "good" for k, _ in items) + deep_file
    blob, ext = _compress(data, how)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / ("in.json" + ext)
        p.write_bytes(blob)
        recs, errs = _read_all(p)
    _check(recs, errs, good, set(good), False, defects)
    assert {e.reason for e in errs} <= {"not_an_object", "too_deep"}


@settings(max_examples=20, deadline=None)
@given(words=st.lists(WORD, min_size=1, max_size=30), damaged=st.booleans())
def test_parquet(words: list[str], damaged: bool) -> None:
    import pyarrow.parquet as pq

    good = {_token(i): {"instruction": f"{_token(i)} {w}", "output": w} for i, w in enumerate(words)}
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "in.parquet"
        pq.write_table(pa.Table.from_pylist(list(good.values())), p)
        if damaged:  # the same bytes under the name of a Parquet file, minus its footer
            p.write_bytes(p.read_bytes()[:-20])
        recs, errs = _read_all(p)
    if damaged:
        STATS["cases"] += 1
        assert recs == [] and [e.reason for e in errs] == ["corrupt_file"]
    else:
        _check(recs, errs, good, set(good), False, 0)
        assert errs == []
