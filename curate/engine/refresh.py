"""Incremental refresh: process only input files the latest published version has not seen.

A file is *seen* when its content hash is among the version manifest's inputs. New files are
ingested and staged as usual, but deduplicated against the rows already published (they are
*pinned*: kept, never filtered again, and preferred over new rows). A file whose URI was
published with different content is *changed*: its old rows leave the base and its new content
is processed. The next version is the base rows plus the new survivors; when no file is new the
refresh is a no-op and publishes nothing.

A published file that no longer exists is *deleted*; ``refresh.deleted_files`` decides: ``keep`` (the
default) carries its rows into every later version, ``retire`` drops them from the next one (which
is then published even when no file is new). The manifest's refresh section lists the deleted
files and the policy applied.

Example:
    >>> sel = select_new([_job("a.jsonl", "h1"), _job("b.jsonl", "h2")], [{"uri": "a.jsonl", "sha256": "h1"}])
    >>> [j.uri for j in sel.new], sel.unchanged, sel.changed_uris
    (['b.jsonl'], ['a.jsonl'], [])
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow.parquet as pq

from curate.engine.shards import FileJob, ShardRef, digest
from curate.engine.steps import Prepared
from schemas.kinds import arrow_schema


def _job(uri: str, sha: str) -> FileJob:  # doctest helper
    return FileJob(0, 0, "s", uri, sha, "jsonl", "none", 0)


@dataclass(frozen=True)
class BaseVersion:
    """The published version a refresh builds on."""

    dataset: str
    version: int
    content_hash: str
    inputs: list[dict[str, Any]]
    store: str

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.version}"


@dataclass
class Selection:
    """Which input files a refresh processes."""

    new: list[FileJob]
    unchanged: list[str] = field(default_factory=list)
    changed_uris: list[str] = field(default_factory=list)
    deleted_uris: list[str] = field(default_factory=list)
    """Published input files that are no longer among the recipe's inputs."""


def base_version(prep: Prepared) -> BaseVersion | None:
    """The latest published version of the recipe's dataset, or None when nothing is published yet."""
    from curate.store.publish import publish_store

    spec = prep.plan.recipe.publish
    if spec is None:
        raise ValueError("refresh needs a publish: section (it builds the next version of a dataset)")
    store = publish_store(spec)
    name = spec.dataset or prep.name
    if name not in store.names() or not store.versions(name):
        return None
    m = store.manifest(f"{name}@latest")
    return BaseVersion(name, int(m["version"]), m["content_hash"], m.get("inputs", []), str(spec.store))


def select_new(jobs: list[FileJob], published_inputs: list[dict[str, Any]]) -> Selection:
    """Split ``jobs`` into new (unseen content) and unchanged; name the URIs whose content changed
    and the published ones that are gone."""
    seen = {i["sha256"] for i in published_inputs}
    by_uri = {i["uri"]: i["sha256"] for i in published_inputs}
    sel = Selection(new=[])
    for job in jobs:
        if job.sha256 in seen:
            sel.unchanged.append(job.uri)
            continue
        sel.new.append(job)
        if job.uri in by_uri:
            sel.changed_uris.append(job.uri)
    present = {j.uri for j in jobs}
    sel.deleted_uris = sorted({u for u in by_uri if u not in present})
    return sel


def base_key(prep: Prepared, base: BaseVersion, drop_uris: list[str]) -> str:
    """Content key of the pinned base shard: the base version's content, less ``drop_uris``."""
    return digest("base", base.content_hash, sorted(drop_uris), prep.plan.recipe.output.kind.value)


def base_shard(prep: Prepared, base: BaseVersion, drop_uris: list[str]) -> ShardRef:
    """The base version's rows (less those from ``drop_uris``) as a pinned shard, written once per key."""
    from curate.store import Store

    kind = prep.plan.recipe.output.kind
    key = base_key(prep, base, drop_uris)
    final = prep.work / "shards" / key
    meta = final / "shard.json"
    if meta.exists():
        ref = ShardRef(**orjson.loads(meta.read_bytes()))
        if ref.complete():
            return ref
    schema = arrow_schema(kind)
    tmp = final.with_name(f".{key}.{secrets.token_hex(3)}.tmp")
    tmp.mkdir(parents=True)
    rows = 0
    # streamed batch by batch: the base version is never whole in memory
    with pq.ParquetWriter(tmp / "records-00000.parquet", schema, compression="zstd") as writer:
        for df in Store(base.store).batches(base.ref, columns=schema.names):
            if drop_uris:
                df = df.filter(~pl.col("source").struct.field("uri").is_in(drop_uris))
            if df.height:
                writer.write_table(df.select(schema.names).to_arrow().cast(schema))
                rows += df.height
    (tmp / "quarantine.jsonl").write_bytes(b"")
    (tmp / "rejected.jsonl").write_bytes(b"")
    ref = ShardRef(
        key,
        str(final),
        base.dataset,
        base.ref,
        base.content_hash,
        "store",
        "none",
        [str(final / "records-00000.parquet")],
        rows,
        {},
    )
    (tmp / "shard.json").write_bytes(orjson.dumps(ref.to_json()))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return ref


def carried_inputs(base: BaseVersion, drop_uris: list[str]) -> list[dict[str, Any]]:
    """The base version's input files whose rows the next version keeps."""
    return [i for i in base.inputs if i["uri"] not in set(drop_uris)]


def record_refresh(prep: Prepared, entry: dict[str, Any]) -> Path:
    """Append one line to ``OUT/NAME/refreshes.jsonl`` (no-op refreshes leave no run folder)."""
    path = prep.root / prep.name / "refreshes.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "run_id": prep.run_id, **entry}
    with path.open("ab") as f:
        f.write(orjson.dumps(line) + b"\n")
    return path


@dataclass
class RefreshPlan:
    """What a refresh will do: the files to process and the version it builds on."""

    jobs: list[FileJob]
    base: BaseVersion | None
    selection: Selection | None
    deleted_files: str = "keep"
    """The recipe's ``refresh.deleted_files`` policy."""

    @property
    def drop_uris(self) -> list[str]:
        """Input files whose base rows leave the next version: changed ones, and deleted ones to retire."""
        if self.selection is None:
            return []
        retired = self.selection.deleted_uris if self.deleted_files == "retire" else []
        return [*self.selection.changed_uris, *retired]

    @property
    def noop(self) -> bool:
        return self.base is not None and not self.jobs and not self.drop_uris

    def info(self) -> dict[str, Any]:
        """For the summary, the manifest and the refresh log."""
        if self.base is None or self.selection is None:
            return {"base_version": None, "new_files": [j.uri for j in self.jobs]}
        return {
            "base_version": self.base.ref,
            "base_content_hash": self.base.content_hash,
            "new_files": [j.uri for j in self.selection.new if j.uri not in self.selection.changed_uris],
            "changed_files": self.selection.changed_uris,
            "unchanged_files": self.selection.unchanged,
            "deleted_files": self.selection.deleted_uris,
            "deleted_files_policy": self.deleted_files,
        }


def plan_refresh(prep: Prepared, jobs: list[FileJob]) -> RefreshPlan:
    """Choose the files a refresh processes (all of them when nothing is published yet)."""
    base = base_version(prep)
    if base is None:
        return RefreshPlan(jobs, None, None)
    sel = select_new(jobs, base.inputs)
    return RefreshPlan(sel.new, base, sel, prep.plan.recipe.refresh.deleted_files)
