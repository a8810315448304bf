"""The store on object storage: a real S3 API (moto's server on 127.0.0.1), deltalake's native S3 client
for the table and s3fs for manifests and cards; credentials from the environment only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pyarrow as pa
import pytest

from curate.store import Store, content_hash
from curate.store.diff import diff
from curate.store.export import export
from curate.store.load import load
from curate.store.publish import frame_batches, publish_records
from schemas.kinds import MESSAGES, Kind
from schemas.recipe import SplitSpec
from tests.conftest import S3_SECRET


def sft(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [f"{p}|{a}" for p, a in rows],
            "messages": [[{"role": "user", "content": p}, {"role": "assistant", "content": a}] for p, a in rows],
        },
        schema={"id": pl.String, "messages": MESSAGES},
    )


V1 = [(f"Question number {i} about topic {i % 7}?", f"Answer {i}.") for i in range(40)]
V2 = [*V1[5:], ("Question number 3 about topic 3?", "A better answer."), ("A brand new question?", "Yes.")]


def _publish(st: Store, rows: list[tuple[str, str]]) -> dict:
    return publish_records(
        frame_batches(sft(rows)), Kind.SFT, st, "chat", SplitSpec(eval=0.2), lambda leaks: {"kind": "sft"}
    )


def _objects(bucket_url: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    bucket = bucket_url.removeprefix("s3://")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page["Contents"]]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def test_publish_time_travel_load_diff_export_on_s3(s3_bucket: str, tmp_path: Path) -> None:
    root = f"{s3_bucket}/team/store"
    st = Store(root)
    assert st.root == root and st.names() == []  # the URL stays as written (no s3:/ from pathlib)
    first = _publish(st, V1)
    second = _publish(Store(root), V2)
    assert (first["version"], second["version"], second["store"]) == (1, 2, root)
    assert _publish(Store(root), V2)["created"] is False  # unchanged content publishes nothing

    fresh = Store(root)
    assert fresh.names() == ["chat"] and fresh.versions("chat") == [1, 2]
    v1 = fresh.read("chat@1")  # time travel
    assert v1.height == 40 and sorted(v1["id"]) == sorted(sft(V1)["id"])
    assert fresh.read("chat@latest").height == len(V2)
    assert fresh.manifest("chat@2")["parent_version"] == 1
    assert content_hash(fresh.read("chat@2")) == second["content_hash"]
    assert all(str(f).startswith(f"{root}/chat/table/") for f in fresh.version_files("chat@1"))

    objects = _objects(s3_bucket)
    for key in ("chat/manifests/v1.json", "chat/manifests/v2.json", "chat/cards/v2/README.md"):
        assert f"team/store/{key}" in objects, sorted(objects)
    assert json.loads(objects["team/store/chat/manifests/v2.json"])["version"] == 2
    assert objects["team/store/chat/cards/v2/lengths.png"].startswith(b"\x89PNG")
    assert root.encode() in objects["team/store/chat/cards/v2/README.md"]  # the card's load() snippet
    assert not [k for k, body in objects.items() if S3_SECRET.encode() in body]  # credentials never stored

    ds = load("chat@1", split=None, root=root)
    assert len(ds) == 40 and ds.column_names == ["messages"]

    d = diff(fresh, "chat@1", "chat@2")
    assert d["counts"]["removed"] == 4 and d["counts"]["changed"] == 1 and d["counts"]["added"] == 1
    assert d["counts"]["unchanged"] == 35

    res = export(fresh, "chat@2", "trl_jsonl", tmp_path / "out")
    written = sum(len((tmp_path / "out" / f).read_text().splitlines()) for f in res["files"])
    assert written == len(V2) == res["rows"]


def test_a_lost_race_is_renumbered_on_top_of_the_winner(s3_bucket: str) -> None:
    """B read "no version yet", then A published version 1: B's commit fails Delta's check and is
    retried on top of A (version 2, parent 1); a stale parent of an existing table likewise."""
    st = Store(f"{s3_bucket}/store")
    a, b, c = sft(V1[:10]), sft(V1[10:20]), sft(V1[20:30])

    def commit(df: pl.DataFrame, parent: int | None):
        table = df.with_columns(split=pl.lit("train")).to_arrow()
        reader = lambda: pa_reader(table)  # noqa: E731
        return st.commit("race", reader, {"kind": "sft"}, content_hash(df), parent, df.height, {"train": df.height})

    assert commit(a, None).version == 1
    late = commit(b, None)  # B still thinks the dataset is new
    assert (late.version, late.manifest["parent_version"], late.created) == (2, 1, True)
    stale = commit(c, 1)  # C read version 1 before B landed
    assert (stale.version, stale.manifest["parent_version"]) == (3, 2)
    again = commit(c, 1)  # the winner already holds this content: nothing new
    assert (again.version, again.created) == (3, False)
    fresh = Store(f"{s3_bucket}/store")
    assert fresh.versions("race") == [1, 2, 3]
    for v, df in ((1, a), (2, b), (3, c)):
        assert content_hash(fresh.read(f"race@{v}").drop("split")) == content_hash(df)
        assert fresh.manifest(f"race@{v}")["version"] == v


def test_a_single_use_reader_is_renumbered_too(tmp_path: Path) -> None:
    """The data files are staged once and committed after, so a lost race is retried with the same
    files: even a reader that cannot be read twice ends as the next version."""
    st = Store(tmp_path / "store")
    st.publish("race", sft(V1[:5]).with_columns(split=pl.lit("train")), {"kind": "sft"})
    df = sft(V1[5:9])
    table = df.with_columns(split=pl.lit("train")).to_arrow()
    pub = st.commit("race", pa_reader(table), {"kind": "sft"}, content_hash(df), None, 4, {"train": 4})
    assert (pub.version, pub.manifest["parent_version"], pub.created) == (2, 1, True)
    fresh = Store(tmp_path / "store")
    assert fresh.versions("race") == [1, 2]
    assert content_hash(fresh.read("race@2").drop("split")) == content_hash(df)


def test_a_race_lost_every_time_says_so(tmp_path: Path) -> None:
    """Another publisher commits just before each attempt of this one: after the last attempt it
    gives up with a message, nothing of it visible, the rival's versions intact."""
    from curate.store.store import COMMIT_ATTEMPTS, PublishRaceError

    class Contested(Store):
        def _commit_once(self, staged: Any, *args: Any) -> Any:
            rival = Store(tmp_path / "store")
            n = len(rival.versions("race"))
            rival.publish("race", sft(V1[20 + n : 22 + n]).with_columns(split=pl.lit("train")), {"kind": "sft"})
            return super()._commit_once(staged, *args)

    Store(tmp_path / "store").publish("race", sft(V1[:5]).with_columns(split=pl.lit("train")), {"kind": "sft"})
    df = sft(V1[5:9])
    table = df.with_columns(split=pl.lit("train")).to_arrow()
    st = Contested(tmp_path / "store")
    with pytest.raises(PublishRaceError, match=r"another publish committed race@\d+ .* run it again"):
        st.commit("race", pa_reader(table), {"kind": "sft"}, content_hash(df), 1, 4, {"train": 4})
    fresh = Store(tmp_path / "store")
    assert fresh.versions("race") == list(range(1, COMMIT_ATTEMPTS + 2))
    assert content_hash(df) not in {fresh.manifest(f"race@{v}")["content_hash"] for v in fresh.versions("race")}


def pa_reader(table: pa.Table) -> pa.RecordBatchReader:

    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
