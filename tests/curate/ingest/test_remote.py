"""Remote inputs through fsspec, exercised on fsspec's in-memory filesystem (a real fsspec backend)."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path

import fsspec
import polars as pl
import pytest

from curate.engine.local import run_recipe
from schemas.recipe_loader import RecipeError, load_recipe_doc


@pytest.fixture
def bucket() -> Iterator[str]:
    fs = fsspec.filesystem("memory")
    root = "/curate-test-bucket"
    if fs.exists(root):
        fs.rm(root, recursive=True)
    fs.pipe(f"{root}/raw/a.jsonl.gz", gzip.compress(b'{"instruction": "q1", "output": "a1"}\nbroken\n'))
    fs.pipe(f"{root}/raw/b.jsonl", b'{"instruction": "q2", "output": "a2"}\n')
    buf = io.BytesIO()
    pl.DataFrame({"instruction": ["q3"], "output": ["a3"]}).write_parquet(buf)
    fs.pipe(f"{root}/raw/c.parquet", buf.getvalue())
    yield f"memory://{root}"
    fs.rm(root, recursive=True)


def _recipe(bucket: str, out: Path) -> str:
    return f"""
name: remote
output: {{kind: sft, dir: {out}}}
sources:
  - name: bucket
    path: {bucket}/raw/*
    convert: alpaca_to_messages
    storage_options: {{token: '${{CURATE_TEST_TOKEN}}'}}
"""


def test_remote_glob_reads_every_format(bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURATE_TEST_TOKEN", "very-secret-value")
    res = run_recipe(load_recipe_doc(_recipe(bucket, tmp_path), str(tmp_path / "r.yaml")), show_progress=False)
    s = res.summary
    assert (s["input_rows"], s["kept"], s["quarantined"], s["balanced"]) == (4, 3, 1, True)
    uris = [f["uri"] for f in s["sources"]["bucket"]["files"]]
    assert uris == [f"{bucket}/raw/a.jsonl.gz", f"{bucket}/raw/b.jsonl", f"{bucket}/raw/c.parquet"]
    assert all(len(f["sha256"]) == 64 for f in s["sources"]["bucket"]["files"])
    data = pl.read_parquet(res.run_dir / "data")
    assert sorted(m[0]["content"] for m in data["messages"].to_list()) == ["q1", "q2", "q3"]
    written = (res.run_dir / "summary.json").read_text() + (res.run_dir / "recipe.yaml").read_text()
    assert "very-secret-value" not in written and "${CURATE_TEST_TOKEN}" in written
    q = [json.loads(x) for x in (res.run_dir / "quarantine.jsonl").read_text().splitlines()]
    assert [(x["uri"], x["row"], x["reason"]) for x in q] == [(f"{bucket}/raw/a.jsonl.gz", 1, "invalid_json")]


def test_missing_secret_is_a_recipe_problem(bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURATE_TEST_TOKEN", raising=False)
    with pytest.raises(RecipeError, match="CURATE_TEST_TOKEN"):
        run_recipe(load_recipe_doc(_recipe(bucket, tmp_path), str(tmp_path / "r.yaml")), show_progress=False)
