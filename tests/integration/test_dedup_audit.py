"""Near-dedup audit through the real CLI: on a chain A~B~C~D~E~F every removed row names the
neighbour it resembles (with their true Jaccard) and the row kept for its group; the report's
examples show a really similar pair; ``clusters: non_transitive`` keeps every other link."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.integration

WORDS = [f"w{i}" for i in range(200)]
CHAIN = [" ".join(WORDS[i * 10 : i * 10 + 54]) for i in range(6)]  # neighbours J = 2/3, ends J = 0


def run(tmp_path: Path, clusters: str) -> tuple[dict, Path]:
    rows = [{"text": t, "label": "ABCDEF"[i]} for i, t in enumerate(CHAIN)]
    (tmp_path / "chain.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "r.yaml").write_text(
        "name: chain\noutput: {kind: text, dir: runs}\nsources:\n  - {name: c, path: chain.jsonl, convert: text}\n"
        f"stages:\n  - {{type: near_dedup, threshold: 0.6, clusters: {clusters}}}\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", "r.yaml", "--json", "--local"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["balanced"] is True
    return s, tmp_path / s["outputs"]["dir"]


def label_of(df: pl.DataFrame) -> dict[str, str]:
    return dict(
        zip(
            df["id"].to_list(),
            df["source"].struct.field("row").map_elements(lambda r: "ABCDEF"[r], pl.String).to_list(),
            strict=True,
        )
    )


def test_chain_audit_names_each_rows_neighbour(tmp_path: Path) -> None:
    s, run_dir = run(tmp_path, "connected")
    assert (s["kept"], s["duplicates"]) == (1, 5)
    dups = pl.read_parquet(run_dir / "duplicates.parquet").sort(pl.col("source").struct.field("row"))
    data = pl.read_parquet(run_dir / "data")
    names = label_of(data) | label_of(dups)
    rows = [
        (names[i], names[d], names[r]) for i, d, r in dups.select("id", "duplicate_of", "representative").iter_rows()
    ]
    assert rows == [("B", "A", "A"), ("C", "B", "A"), ("D", "C", "A"), ("E", "D", "A"), ("F", "E", "A")]
    assert dups["similarity"].round(3).to_list() == [0.667] * 5
    assert "group kept" in dups["detail"][4] and "similarity 0.667" in dups["detail"][4]
    report = (run_dir / "report.md").read_text()
    assert "`representative`" in report
    # the report's examples pair each removed row with its neighbour, and say which row stays
    examples = [ln for ln in report.splitlines() if ln.startswith("- `") and "duplicate of" in ln]
    assert len(examples) == 3 and all("(similarity 0.667)" in ln for ln in examples)
    assert sum("group kept" in ln for ln in examples) == 2  # C and D; B's neighbour is A itself


def test_non_transitive_keeps_every_other_row(tmp_path: Path) -> None:
    s, run_dir = run(tmp_path, "non_transitive")
    assert (s["kept"], s["duplicates"]) == (3, 3)
    data = pl.read_parquet(run_dir / "data")
    assert sorted(data["source"].struct.field("row").to_list()) == [0, 2, 4]  # A, C, E
    dups = pl.read_parquet(run_dir / "duplicates.parquet")
    assert set(dups["duplicate_of"].to_list()) <= set(data["id"].to_list())
    assert dups["duplicate_of"].to_list() == dups["representative"].to_list()
    assert s["stages"][0]["stats"]["clusters"] == "non_transitive"
