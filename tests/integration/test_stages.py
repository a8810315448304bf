"""Stages end to end through the real CLI: filters, exact/near dedup, decontamination, accounting, audit files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.integration

BASE = " ".join(f"token{i}" for i in range(40))
ROWS = [
    {"instruction": "Explain photosynthesis", "output": "Plants turn light into chemical energy. " + BASE},
    {"instruction": "explain   PHOTOSYNTHESIS!", "output": "Another answer entirely, " + BASE[:50]},  # exact prompt dup
    {"instruction": "Describe the water cycle", "output": BASE + " evaporation condensation"},  # near dup of 0
    {"instruction": "What is two plus two?", "output": "N/A"},  # filtered (too short)
    {"instruction": "Name the capital of France and explain why it matters", "output": "Paris. " + "x " * 30},
    {"instruction": "Write a haiku about autumn leaves falling", "output": "Leaves drift slowly down " * 4},
]
EVAL = [{"question": "Name the capital of France and explain why it matters today"}]


def run(tmp_path: Path, stages: str, kind: str = "sft", source: str | None = None) -> dict:
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in EVAL))
    source = source or "  - {name: train, path: train.jsonl, convert: alpaca_to_messages}\n"
    recipe = f"name: staged\noutput: {{kind: {kind}, dir: {tmp_path / 'runs'}}}\nsources:\n{source}stages:\n{stages}"
    (tmp_path / "r.yaml").write_text(recipe)
    res = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", "r.yaml", "--json", "--local"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["balanced"] is True
    return summary


def test_filters_dedup_and_decontamination(tmp_path: Path) -> None:
    s = run(
        tmp_path,
        """  - {type: filter, rule: length, field: response, params: {min_words: 3}}
  - {type: exact_dedup, key: [prompt]}
  - {type: near_dedup, key: [response], threshold: 0.7}
  - type: decontaminate
    key: [prompt]
    threshold: 0.6
    against: [{name: heldout, path: eval.jsonl, column: question}]
""",
    )
    assert (s["input_rows"], s["kept"], s["duplicates"], s["dropped"]) == (6, 2, 2, 2)
    assert s["dropped_by_reason"] == {"contamination.heldout": 1, "length.min_words": 1}
    assert s["duplicates_by_reason"] == {"exact_dedup": 1, "near_dedup": 1}
    run_dir = Path(s["outputs"]["dir"])
    data = pl.read_parquet(run_dir / "data")
    dups = pl.read_parquet(run_dir / "duplicates.parquet")
    dropped = pl.read_parquet(run_dir / "dropped.parquet")
    assert data.height == 2 and dups.height == 2 and dropped.height == 2
    # each duplicate names the kept twin, which is in the dataset
    assert set(dups["duplicate_of"].to_list()) <= set(data["id"].to_list())
    assert sorted(dups["source"].struct.field("row").to_list()) == [1, 2]
    assert dups.filter(pl.col("stage") == "near_dedup")["similarity"][0] >= 0.7
    leaks = [json.loads(x) for x in (run_dir / "contamination.jsonl").read_text().splitlines()]
    assert [(x["reference"], x["reference_row"]) for x in leaks] == [("heldout", 0)]
    assert 0.6 <= leaks[0]["similarity"] < 1.0
    report = (run_dir / "report.md").read_text()
    assert "near_dedup" in report and "contamination.heldout" in report
    assert (run_dir / "funnel.png").stat().st_size > 1000 and (run_dir / "lengths.png").stat().st_size > 1000
    assert [st["records_out"] for st in s["stages"]] == [5, 4, 3, 2]


def test_keep_longest_keeps_the_longer_twin(tmp_path: Path) -> None:
    s = run(tmp_path, "  - {type: exact_dedup, key: [prompt], keep: longest}\n")
    data = pl.read_parquet(Path(s["outputs"]["dir"]) / "data")
    kept = data.filter(pl.col("source").struct.field("row").is_in([0, 1]))
    assert kept["source"].struct.field("row").to_list() == [0]  # row 0's conversation is longer
    s = run(tmp_path, "  - {type: exact_dedup, key: [response], keep: longest}\n")
    assert s["duplicates"] == 0  # responses differ


def test_fan_out_rows_are_kept_while_any_record_survives(tmp_path: Path) -> None:
    t = "\n\nHuman: {q}\n\nAssistant: {a}"
    q0, q1 = "hi there friend", "HI THERE, friend!"
    pairs = [
        {"chosen": t.format(q=q0, a="hello to you"), "rejected": t.format(q=q0, a="go away")},
        {"chosen": t.format(q=q1, a="hello to you"), "rejected": t.format(q=q1, a="no")},
        {"chosen": t.format(q=q0, a="hello to you"), "rejected": t.format(q=q0, a="go away")},  # copy of row 0
    ]
    source = "  - {name: hh, path: hh.jsonl, convert: [hh_rlhf_to_preference, preference_to_kto]}\n"
    (tmp_path / "hh.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    s = run(tmp_path, "  - {type: exact_dedup, key: [conversation]}\n", kind="kto", source=source)
    # row 1's chosen completion duplicates row 0's, but its rejected one survives: row 1 stays kept;
    # row 2 loses both records, so the row counts as a duplicate
    assert (s["input_rows"], s["kept"], s["duplicates"]) == (3, 2, 1)
    assert s["stages"][0]["records_in"] == 6 and s["stages"][0]["records_out"] == 3
    assert s["output_records"] == 3


def test_stage_problems_are_reported_with_lines(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    (tmp_path / "r.yaml").write_text(
        "name: x\noutput: {kind: sft}\nsources:\n  - {name: t, path: train.jsonl, convert: alpaca_to_messages}\n"
        "stages:\n"
        "  - {type: filter, rule: gopher_qualty}\n"
        "  - {type: filter, rule: length, field: chosen, params: {min_word: 3}}\n"
        "  - {type: near_dedup, key: [prompt], keep: score, score_field: messages}\n"
        "  - {type: decontaminate, against: [{name: e, path: missing.jsonl, column: q}]}\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "curate.cli", "validate", "r.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    err = res.stderr
    assert "r.yaml:6: stages[0].rule: unknown filter 'gopher_qualty'" in err and "did you mean gopher_quality" in err
    assert "stages[1].params.min_word: length: unknown parameter" in err
    assert "stages[1].field: sft records have no field 'chosen'" in err
    assert "stages[2].score_field: 'messages' is not a numeric column" in err
    assert "stages[3].against[0].path: missing.jsonl: no input matches" in err
