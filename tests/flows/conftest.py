"""A small curation project for the flow tests (the Prefect harness fixtures are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """Write a small project (two alpaca files, a recipe with stages and publish) and return the recipe."""

    def make(rows_a: int = 30, rows_b: int = 20, extra: str = "", source_path: str = "raw/*.jsonl") -> Path:
        raw = tmp_path / "raw"
        raw.mkdir(exist_ok=True)
        write_rows(raw / "a.jsonl", range(rows_a))
        write_rows(raw / "b.jsonl", range(1000, 1000 + rows_b), dup_of=range(3))
        recipe = tmp_path / "r.yaml"
        recipe.write_text(
            f"""name: flowdemo
output: {{kind: sft, dir: {tmp_path / "runs"}}}
sources:
  - {{name: raw, path: "{source_path}", convert: alpaca_to_messages}}
stages:
  - {{type: filter, rule: instruction_defects}}
  - {{type: exact_dedup}}
  - {{type: near_dedup, threshold: 0.7}}
publish: {{store: {tmp_path / "store"}, splits: {{eval: 0.1}}}}
{extra}""",
            encoding="utf-8",
        )
        return recipe

    return make


def write_rows(path: Path, ids: range, dup_of: range = range(0)) -> None:
    """Alpaca rows with distinct long-enough texts, plus exact copies of rows ``dup_of`` of a.jsonl."""
    import orjson

    def row(i: int) -> dict[str, str]:
        words = " ".join(f"w{i}x{j}" for j in range(25))
        return {"instruction": f"Question {i}: explain topic {i} in detail.", "output": f"Answer {i}: {words}."}

    lines = [orjson.dumps(row(i)) for i in ids] + [orjson.dumps(row(i)) for i in dup_of]
    with path.open("wb") as f:
        f.write(b"\n".join(lines) + b"\n")


@pytest.fixture
def rows_writer() -> Callable[..., None]:
    return write_rows
