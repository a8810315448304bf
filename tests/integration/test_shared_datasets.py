"""The real CLI on real public files from ../shared/datasets (skipped when the folder is absent)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.integration


def run_cli(recipe: str, tmp_path: Path) -> dict:
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe, encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", str(path), "--json", "--local", "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["balanced"] is True
    return summary


def _ranked_pairs(node: dict) -> int:
    """Independent count of sibling pairs with different ranks in one OpenAssistant tree."""
    replies = [r for r in node.get("replies", []) if not r.get("deleted")]
    ranks = [r["rank"] for r in replies if r.get("rank") is not None]
    pairs = sum(1 for i, a in enumerate(ranks) for b in ranks[i + 1 :] if a != b)
    return pairs + sum(_ranked_pairs(r) for r in replies)


def test_oasst_trees_to_preferences_and_conversations(shared_file, tmp_path: Path) -> None:
    src = shared_file("oasst_en_100_tree.jsonl")
    trees = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    summary = run_cli(
        f"""
name: oasst_pairs
output: {{kind: preference}}
sources:
  - {{name: oasst, path: {src}, convert: oasst_to_preference}}
""",
        tmp_path,
    )
    assert summary["input_rows"] == len(trees) == 100
    with_pairs = sum(1 for t in trees if _ranked_pairs(t["prompt"]) > 0)
    assert summary["kept"] == with_pairs
    data = pl.read_parquet(Path(summary["outputs"]["dir"]) / "data")
    assert data.height == summary["output_records"] == sum(_ranked_pairs(t["prompt"]) for t in trees)
    # every prompt ends with the user's turn; chosen/rejected are assistant turns
    assert data["prompt"].list.eval(pl.element().struct.field("role")).list.last().unique().to_list() == ["user"]
    assert data["chosen"].list.first().struct.field("role").unique().to_list() == ["assistant"]
    assert data["source"].struct.field("sha256").n_unique() == 1

    summary = run_cli(
        f"""
name: oasst_sft
output: {{kind: sft}}
sources:
  - {{name: oasst, path: {src}, convert: oasst_to_messages, options: {{mode: best_path}}}}
""",
        tmp_path,
    )
    assert summary["input_rows"] == 100
    assert summary["kept"] + summary["quarantined"] == 100
    assert summary["kept"] >= 90  # nearly every tree has at least one assistant reply


def test_alpaca_eval_annotations_to_preferences(shared_file, tmp_path: Path) -> None:
    src = shared_file("alpaca_eval_alpaca7b_vs_davinci003_gpt4_annotations.json")
    rows = json.loads(src.read_text())
    decided = [r for r in rows if r.get("preference") is not None and float(r["preference"]) in (1.0, 2.0)]
    summary = run_cli(
        f"""
name: ae_pairs
output: {{kind: preference}}
sources:
  - {{name: judge, path: {src}, convert: alpaca_eval_to_preference}}
""",
        tmp_path,
    )
    assert summary["input_rows"] == len(rows) == 805
    assert summary["kept"] == len(decided)
    data = pl.read_parquet(Path(summary["outputs"]["dir"]) / "data")
    assert data["judge"].struct.field("kind").unique().to_list() == ["ai"]
    first = next(r for r in rows if float(r["preference"] or 0) == 2.0)
    row = data.filter(pl.col("source").struct.field("row") == rows.index(first)).to_dicts()[0]
    assert row["chosen"][0]["content"] == first["output_2"]
    assert row["rejected"][0]["content"] == first["output_1"]


def test_alpaca_eval_outputs_to_conversations(shared_file, tmp_path: Path) -> None:
    gpt4 = shared_file("alpaca_eval_gpt4_outputs.json")
    a7b = shared_file("alpaca_eval_alpaca7b_outputs.json")
    summary = run_cli(
        f"""
name: ae_sft
output: {{kind: sft}}
sources:
  - {{name: gpt4, path: {gpt4}, convert: alpaca_to_messages}}
  - {{name: alpaca7b, path: {a7b}, convert: alpaca_to_messages}}
""",
        tmp_path,
    )
    assert summary["input_rows"] == 805 * 2
    for name in ("gpt4", "alpaca7b"):
        s = summary["sources"][name]
        assert s["kept"] + s["quarantined"] == 805
    assert summary["kept"] >= 1600
