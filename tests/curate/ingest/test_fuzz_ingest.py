"""Fuzzed ingest: corrupt inputs in every format; no row is lost, every quarantined row says why and where.

Each generated file mixes good rows with known defects. The run's quarantine must list exactly the
defective rows with the expected reason, the output must hold exactly the good rows (by their
``source.row``), and the summary must balance.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from pathlib import Path

import orjson
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.engine.local import run_recipe
from schemas.recipe_loader import load_recipe_doc

TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(lambda s: s.strip())

# defect name -> (reason expected in the quarantine, or None for a good row)
JSONL_CASES = {
    "good": None,
    "invalid_json": "invalid_json",
    "invalid_utf8": "invalid_utf8",
    "blank": "empty_row",
    "wrong_type": "wrong_type",
    "missing": "missing_field",
    "empty_output": "empty_content",
    "not_object": "not_an_object",
    "too_long": "too_long",
}


def _jsonl_line(case: str, text: str) -> bytes:
    good = {"instruction": text, "output": text + "!"}
    return {
        "good": orjson.dumps(good),
        "invalid_json": b'{"instruction": "' + text.encode() + b'"',
        "invalid_utf8": b'{"instruction": "\xff\xfe", "output": "x"}',
        "blank": b"   ",
        "wrong_type": orjson.dumps({"instruction": [text], "output": "x"}),
        "missing": orjson.dumps({"instruction": text}),
        "empty_output": orjson.dumps({"instruction": text, "output": "  "}),
        "not_object": orjson.dumps([text]),
        "too_long": orjson.dumps({"instruction": "x" * 3000, "output": "y"}),
    }[case]


def _run(
    folder: Path, filename: str, fmt: str, extra: str = "", kind: str = "sft", convert: str = "alpaca_to_messages"
) -> tuple[dict, pl.DataFrame, list[dict]]:
    recipe = f"""
name: fuzz
output: {{kind: {kind}, dir: {folder / "runs"}}}
limits: {{max_line_bytes: 2000, batch_rows: 3}}
sources:
  - name: s
    path: {filename}
    format: {fmt}
    convert: {convert}
{extra}"""
    doc = load_recipe_doc(recipe, str(folder / "recipe.yaml"))
    res = run_recipe(doc, show_progress=False, report=False)
    data = pl.read_parquet(res.run_dir / "data")
    quarantine = [json.loads(line) for line in (res.run_dir / "quarantine.jsonl").read_text().splitlines()]
    return res.summary, data, quarantine


def _check(
    summary: dict, data: pl.DataFrame, quarantine: list[dict], expected: list[str | None], first: int = 0
) -> None:
    """``expected[i]`` is the outcome of row ``first + i`` (CSV rows count the header line)."""
    assert summary["balanced"]
    assert summary["input_rows"] == len(expected)
    kept_rows = sorted(data["source"].struct.field("row").to_list())
    assert kept_rows == [first + i for i, r in enumerate(expected) if r is None]
    got = {q["row"]: q["reason"] for q in quarantine}
    assert got == {first + i: r for i, r in enumerate(expected) if r is not None}
    for q in quarantine:
        assert q["uri"].startswith("file://") and q["detail"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cases=st.lists(st.tuples(st.sampled_from(sorted(JSONL_CASES)), TEXT), min_size=1, max_size=25),
    compress=st.booleans(),
)
def test_fuzzed_jsonl(cases: list[tuple[str, str]], compress: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        body = b"\n".join(_jsonl_line(c, t) for c, t in cases) + b"\n"
        name = "in.jsonl.gz" if compress else "in.jsonl"
        (folder / name).write_bytes(gzip.compress(body) if compress else body)
        summary, data, quarantine = _run(folder, name, "auto")
        _check(summary, data, quarantine, [JSONL_CASES[c] for c, _ in cases])


JSON_CASES = {"good": None, "not_object": "not_an_object", "wrong_type": "wrong_type", "missing": "missing_field"}


@settings(max_examples=20, deadline=None)
@given(
    cases=st.lists(st.tuples(st.sampled_from(sorted(JSON_CASES)), TEXT), min_size=1, max_size=20),
    truncate=st.booleans(),
)
def test_fuzzed_json_array(cases: list[tuple[str, str]], truncate: bool) -> None:
    items = []
    for c, t in cases:
        items.append(
            {
                "good": {"instruction": t, "output": t},
                "not_object": t,
                "wrong_type": {"instruction": {"t": t}, "output": t},
                "missing": {"output": t},
            }[c]
        )
    expected: list[str | None] = [JSON_CASES[c] for c, _ in cases]
    text = json.dumps(items)
    if truncate:  # a file cut off mid-way: the remainder is one quarantined row
        text = text[:-1] + ', {"instruction": "cut'
        expected.append("invalid_json")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in.json").write_text(text, encoding="utf-8")
        summary, data, quarantine = _run(folder, "in.json", "json")
        _check(summary, data, quarantine, expected)


CSV_CASES = {"good": None, "ragged": "wrong_field_count", "empty_answer": "empty_content", "blank": "empty_row"}


@settings(max_examples=20, deadline=None)
@given(cases=st.lists(st.tuples(st.sampled_from(sorted(CSV_CASES)), TEXT), min_size=1, max_size=20))
def test_fuzzed_csv(cases: list[tuple[str, str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["question", "answer"])
    for c, t in cases:
        w.writerow({"good": [t, t], "ragged": [t, t, t], "empty_answer": [t, ""], "blank": ["", ""]}[c])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in.csv").write_text(buf.getvalue(), encoding="utf-8")
        extra = "    columns: {instruction: question, output: answer}\n"
        summary, data, quarantine = _run(folder, "in.csv", "csv", extra)
        _check(summary, data, quarantine, [CSV_CASES[c] for c, _ in cases], first=1)


@settings(max_examples=15, deadline=None)
@given(outputs=st.lists(st.one_of(st.none(), TEXT, st.just("")), min_size=1, max_size=20))
def test_fuzzed_parquet(outputs: list[str | None]) -> None:
    expected = [None if o and o.strip() else ("missing_field" if o is None else "empty_content") for o in outputs]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pl.DataFrame({"instruction": ["q"] * len(outputs), "output": outputs}).write_parquet(folder / "in.parquet")
        summary, data, quarantine = _run(folder, "in.parquet", "parquet")
        _check(summary, data, quarantine, expected)


TEXT_CASES = {"good": None, "blank": "empty_row", "invalid_utf8": "invalid_utf8", "too_long": "too_long"}


@settings(max_examples=20, deadline=None)
@given(cases=st.lists(st.tuples(st.sampled_from(sorted(TEXT_CASES)), TEXT), min_size=1, max_size=25))
def test_fuzzed_plain_text(cases: list[tuple[str, str]]) -> None:
    def line(case: str, text: str) -> bytes:
        return {
            "good": text.replace("\n", " ").replace("\r", " ").encode(),
            "blank": b" \t",
            "invalid_utf8": b"caf\xe9",
            "too_long": b"w" * 3000,
        }[case]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in.txt").write_bytes(b"\n".join(line(c, t) for c, t in cases))
        summary, data, quarantine = _run(folder, "in.txt", "text", kind="text", convert="text")
        _check(summary, data, quarantine, [TEXT_CASES[c] for c, _ in cases])
