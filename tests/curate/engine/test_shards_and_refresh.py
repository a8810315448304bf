"""Shards are reused by content key; the local refresh driver handles new, changed and unchanged files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import polars as pl

from curate.engine.local import run_recipe
from curate.engine.shards import garbage_collect
from curate.engine.steps import hash_file, ingest, prepare
from curate.store import Store
from schemas.recipe_loader import load_recipe_doc


def _rows(path: Path, ids: range) -> None:
    path.write_bytes(
        b"".join(
            orjson.dumps({"instruction": f"Explain item {i} please.", "output": f"Item {i} is described here."}) + b"\n"
            for i in ids
        )
    )


def _doc(tmp_path: Path, options: str = ""):  # type: ignore[no-untyped-def]
    text = f"""name: sh
output: {{kind: sft, dir: {tmp_path / "runs"}}}
sources:
  - {{name: raw, path: "{tmp_path / "raw"}/*.jsonl", convert: alpaca_to_messages{options}}}
stages:
  - {{type: exact_dedup}}
publish: {{store: {tmp_path / "store"}}}
"""
    return load_recipe_doc(text, str(tmp_path / "r.yaml"))


def test_a_shard_is_reused_until_its_inputs_change(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    _rows(tmp_path / "raw" / "a.jsonl", range(10))
    prep = prepare(_doc(tmp_path))
    job = hash_file(prep, 0, 0)
    first = ingest(prep, job)
    assert first.tally["input_rows"] == 10 and first.complete()
    stamp = Path(first.parts[0]).stat().st_mtime_ns
    again = ingest(prep, job)
    assert again == first and Path(again.parts[0]).stat().st_mtime_ns == stamp  # not rewritten

    other = prepare(_doc(tmp_path, ", columns: {output: instruction}"))  # another recipe section
    assert ingest(other, hash_file(other, 0, 0)).key != first.key

    os.remove(first.parts[0])  # a shard whose files went missing is written again
    redone = ingest(prep, job)
    assert redone.key == first.key and redone.complete()


def test_garbage_collection_spares_recent_and_used_files(tmp_path: Path) -> None:
    shards = tmp_path / "work" / "shards"
    for name in ("used", "unused-old", "unused-new"):
        (shards / name).mkdir(parents=True)
    old = time.time() - 7200
    os.utime(shards / "unused-old", (old, old))
    assert garbage_collect(tmp_path / "work", {"used"}, set()) == 1
    assert sorted(p.name for p in shards.iterdir()) == ["unused-new", "used"]


def test_local_refresh_new_changed_and_unchanged_files(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _rows(raw / "a.jsonl", range(10))
    _rows(raw / "b.jsonl", range(100, 105))
    first = run_recipe(_doc(tmp_path), show_progress=False, refresh=True)
    assert first.summary["published"]["version"] == 1

    noop = run_recipe(_doc(tmp_path), show_progress=False, refresh=True)
    assert noop.run_dir is None and noop.summary["noop"] is True

    _rows(raw / "a.jsonl", range(20, 24))  # a.jsonl changed: its old rows leave, its new ones come in
    _rows(raw / "c.jsonl", [*range(200, 203), 100])  # new file; row 100 duplicates a published row of b
    third = run_recipe(_doc(tmp_path), show_progress=False, refresh=True)
    s = third.summary
    assert s["input_rows"] == 8 and s["duplicates"] == 1 and s["balanced"]
    assert s["refresh"]["changed_files"] == [(raw / "a.jsonl").resolve().as_uri()]
    assert s["refresh"]["unchanged_files"] == [(raw / "b.jsonl").resolve().as_uri()]
    v2 = Store(tmp_path / "store").read("sh@2")
    instructions = {m[0]["content"] for m in v2["messages"].to_list()}
    expected = {f"Explain item {i} please." for i in [*range(20, 24), *range(100, 105), *range(200, 203)]}
    assert instructions == expected
    by_uri = v2.group_by(pl.col("source").struct.field("uri")).len()
    assert by_uri.height == 3
    lines = (tmp_path / "runs" / "sh" / "refreshes.jsonl").read_text().splitlines()
    assert [orjson.loads(x)["noop"] for x in lines] == [False, True, False]
