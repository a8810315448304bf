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


def _doc(tmp_path: Path, options: str = "", extra: str = ""):  # type: ignore[no-untyped-def]
    text = f"""name: sh
output: {{kind: sft, dir: {tmp_path / "runs"}}}
sources:
  - {{name: raw, path: "{tmp_path / "raw"}/*.jsonl", convert: alpaca_to_messages{options}}}
stages:
  - {{type: exact_dedup}}
publish: {{store: {tmp_path / "store"}}}
{extra}"""
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


def _instructions(store: Path, ref: str) -> set[str]:
    return {m[0]["content"] for m in Store(store).read(ref)["messages"].to_list()}


def test_refresh_keeps_or_retires_the_rows_of_a_deleted_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _rows(raw / "a.jsonl", range(5))
    _rows(raw / "b.jsonl", range(100, 103))
    assert run_recipe(_doc(tmp_path), show_progress=False, refresh=True).summary["published"]["version"] == 1
    gone = (raw / "a.jsonl").resolve().as_uri()
    (raw / "a.jsonl").unlink()
    a_rows = {f"Explain item {i} please." for i in range(5)}
    b_rows = {f"Explain item {i} please." for i in range(100, 103)}

    # keep (the default): nothing new, so a no-op that says a file is gone and its rows stay
    noop = run_recipe(_doc(tmp_path), show_progress=False, refresh=True)
    assert noop.run_dir is None and noop.summary["noop"] is True
    assert noop.summary["refresh"]["deleted_files"] == [gone]
    assert noop.summary["refresh"]["deleted_files_policy"] == "keep"
    _rows(raw / "c.jsonl", range(200, 202))
    kept = run_recipe(_doc(tmp_path), show_progress=False, refresh=True).summary
    assert kept["published"]["version"] == 2
    c_rows = {f"Explain item {i} please." for i in range(200, 202)}
    assert _instructions(tmp_path / "store", "sh@2") == a_rows | b_rows | c_rows
    manifest = Store(tmp_path / "store").manifest("sh@2")
    assert manifest["refresh"]["deleted_files"] == [gone] and manifest["refresh"]["deleted_files_policy"] == "keep"
    assert gone in {i["uri"] for i in manifest["inputs"]}  # still an input of the version: its rows are there

    # retire: the next version drops the deleted file's rows, though no file is new
    retire = "refresh: {deleted_files: retire}\n"
    s = run_recipe(_doc(tmp_path, extra=retire), show_progress=False, refresh=True).summary
    assert s["published"]["version"] == 3 and s["input_rows"] == 0 and s["balanced"]
    assert _instructions(tmp_path / "store", "sh@3") == b_rows | c_rows
    manifest = Store(tmp_path / "store").manifest("sh@3")
    assert manifest["refresh"]["deleted_files"] == [gone]
    assert manifest["refresh"]["deleted_files_policy"] == "retire"
    assert gone not in {i["uri"] for i in manifest["inputs"]}
    # and once retired, the file is no longer an input: the next refresh is a no-op again
    again = run_recipe(_doc(tmp_path, extra=retire), show_progress=False, refresh=True)
    assert again.run_dir is None and again.summary["refresh"]["deleted_files"] == []
