"""A real ``curate run`` on hostile files (issue 15): the accounting proves no good row was lost.

One recipe reads a TSV with a bare quote, a CSV with a bare quote and one over-long field, a cut
``.jsonl.gz``, a cut ``.jsonl.zst`` and a JSON Lines file with a row nested 9,000 levels deep.
The summary must balance, every good row must be in the output once, and every defect must be
one quarantined row naming its line. Hostile recipes (billion laughs, a merge key pointing at a
bad value) must fail with exit 2 and a message, fast.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from pathlib import Path

import orjson
import polars as pl
import pytest
import zstandard

from tests.integration.test_cli import curate

pytestmark = pytest.mark.integration

RECIPE = """
name: hostile
output: {{kind: sft, dir: {out}}}
limits: {{max_line_bytes: 20000}}
sources:
  - name: tsv
    path: pairs.tsv
    convert: alpaca_to_messages
    columns: {{instruction: question, output: answer}}
  - name: csv
    path: faq.csv
    convert: alpaca_to_messages
    columns: {{instruction: question, output: answer}}
  - name: gz
    path: cut.jsonl.gz
    convert: alpaca_to_messages
  - name: zst
    path: cut.jsonl.zst
    convert: alpaca_to_messages
  - name: deep
    path: deep.jsonl
    convert: alpaca_to_messages
"""


def _jsonl(prefix: str, n: int) -> bytes:
    return b"".join(orjson.dumps({"instruction": f"{prefix} q{i}", "output": f"a{i}"}) + b"\n" for i in range(n))


def _complete_lines(cut: bytes, kind: str) -> int:
    if kind == "gz":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut).count(b"\n")
    return zstandard.ZstdDecompressor().decompressobj().decompress(cut).count(b"\n")


def test_hostile_files_lose_no_good_row(tmp_path: Path) -> None:
    tsv = ["question\tanswer"] + [f"tsv q{i}\tanswer {i}" for i in range(1000)]
    tsv[501] = 'tsv q500\t"quoted on one side only'
    (tmp_path / "pairs.tsv").write_text("\n".join(tsv) + "\n")
    csv_lines = ["question,answer"] + [f"csv q{i},answer {i}" for i in range(1000)]
    csv_lines[11] = 'csv q10,"a bare quote'
    csv_lines[21] = "csv q20," + "x" * 30_000  # over max_line_bytes
    (tmp_path / "faq.csv").write_text("\n".join(csv_lines) + "\n")
    gz = gzip.compress(_jsonl("gz", 200_000))
    (tmp_path / "cut.jsonl.gz").write_bytes(gz[: len(gz) // 2])
    zst = zstandard.ZstdCompressor().compress(_jsonl("zst", 200_000))
    (tmp_path / "cut.jsonl.zst").write_bytes(zst[: len(zst) // 2])
    deep = _jsonl("deep", 3).splitlines()
    deep.insert(
        1, b'{"instruction": "d", "output": "x", "z": ' + b"[" * 9_000 + b"]" * 9_000 + b"}"
    )  # under max_line_bytes
    (tmp_path / "deep.jsonl").write_bytes(b"\n".join(deep) + b"\n")
    (tmp_path / "r.yaml").write_text(RECIPE.format(out=tmp_path / "runs"))

    t = time.perf_counter()
    res = curate("run", "r.yaml", "--json", "--local", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert time.perf_counter() - t < 100
    assert "Traceback" not in res.stderr
    s = json.loads(res.stdout)
    assert s["balanced"] is True
    src = s["sources"]
    gz_lines = _complete_lines(gz[: len(gz) // 2], "gz")
    zst_lines = _complete_lines(zst[: len(zst) // 2], "zst")
    assert gz_lines > 50_000 and zst_lines > 50_000
    expect = {
        "tsv": (1000, 1000, {}),  # TSV: quoting off by default, the bare quote is text
        "csv": (1000, 998, {"unterminated_quote": 1, "too_long": 1}),
        "gz": (gz_lines + 1, gz_lines, {"truncated_file": 1}),
        "zst": (zst_lines + 1, zst_lines, {"truncated_file": 1}),
        "deep": (4, 3, {"too_deep": 1}),
    }
    for name, (rows, kept, reasons) in expect.items():
        got = (src[name]["input_rows"], src[name]["kept"], src[name]["quarantined_by_reason"])
        assert got == (rows, kept, reasons), name

    run_dir = Path(s["outputs"]["dir"])
    data = pl.read_parquet(run_dir / "data", columns=["messages", "source"])
    prompts = data["messages"].list.first().struct.field("content")
    assert prompts.n_unique() == data.height  # no good row twice
    assert prompts.str.contains("\n").sum() == 0  # no row swallowed another line
    q = [json.loads(line) for line in (run_dir / "quarantine.jsonl").read_text().splitlines()]
    where = {(x["source"], x["row"], x["reason"]) for x in q}
    assert ("csv", 11, "unterminated_quote") in where and ("csv", 21, "too_long") in where
    assert ("gz", gz_lines, "truncated_file") in where and ("deep", 1, "too_deep") in where
    assert all("line" in x["detail"] or x["reason"] == "too_deep" for x in q)


BILLION_LAUGHS = "\n".join(
    ["name: laughs", "output: {kind: sft}", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    + ["sources: *a8"]
)

MERGE_KEY = """\
name: merged
defaults: &src
  path: a.jsonl
  format: jsonnl
output: {kind: sft}
sources:
  - <<: *src
    name: a
    convert: alpaca_to_messages
"""


def test_hostile_recipes_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "laughs.yaml").write_text(BILLION_LAUGHS)
    t = time.perf_counter()
    res = curate("validate", "laughs.yaml", cwd=tmp_path)
    assert res.returncode == 2 and "aliases" in res.stderr + res.stdout and "Traceback" not in res.stderr
    assert time.perf_counter() - t < 30
    (tmp_path / "a.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    (tmp_path / "merged.yaml").write_text(MERGE_KEY)
    res = curate("validate", "merged.yaml", "--json", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    problems = json.loads(res.stdout)["problems"]
    fmt = [p for p in problems if p["path"] == "sources[0].format"]
    assert fmt and fmt[0]["line"] == 4  # the line of the merged-in value
    good = MERGE_KEY.replace("format: jsonnl", "format: jsonl").replace("defaults:", "x-defaults:")
    (tmp_path / "merged.yaml").write_text(good)
    res = curate("validate", "merged.yaml", "--json", cwd=tmp_path)
    assert res.returncode == 2 and "x-defaults" in res.stdout  # unknown top-level key, but no crash
