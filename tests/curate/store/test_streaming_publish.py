"""Publishing at bounded memory: batched content hash, card stats, split-leak index, one publish path."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate.dedup.contamination import LeakIndex, find_leaks
from curate.store import Store, content_hash
from curate.store.card import CardStats, card_text, example_rows
from curate.store.publish import file_batches, frame_batches, publish_records, split_leaks
from curate.store.splits import assign_splits
from curate.store.store import ContentHasher, content_hash_reference
from schemas.kinds import MESSAGES, Kind
from schemas.recipe import PublishSpec, SplitSpec
from schemas.stages import DecontaminateStage, ReferenceSpec

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
    "sigma",
]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _sft(n: int, seed: int = 0, near: float = 0.2) -> pl.DataFrame:
    """SFT rows whose prompts partly repeat earlier ones with one word changed (leaks across splits)."""
    rng = random.Random(seed)
    prompts: list[str] = []
    for _ in range(n):
        if prompts and rng.random() < near:
            words = rng.choice(prompts).split()
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            prompts.append(" ".join(words))
        else:
            prompts.append(_text(rng, rng.randint(20, 40)))
    rows = [[{"role": "user", "content": p}, {"role": "assistant", "content": _text(rng, 30)}] for p in prompts]
    df = pl.DataFrame(
        {"id": [f"{rng.getrandbits(64):016x}" for _ in range(n)], "messages": rows, "score": [rng.random()] * n},
        schema={"id": pl.String, "messages": MESSAGES, "score": pl.Float64},
    )
    return df.with_columns(source=pl.struct(name=pl.lit("s"), row=pl.int_range(n)))


@pytest.mark.parametrize("sizes", [[0], [1], [5, 7, 1], [1000, 1, 999]])
def test_batched_content_hash_is_bit_identical(sizes: list[int]) -> None:
    frames = [_sft(n, seed=i) for i, n in enumerate(sizes)]
    whole = pl.concat(frames)
    h = ContentHasher()
    for f in frames:
        h.update(f)
    assert h.hexdigest() == content_hash_reference(whole) == content_hash(whole)
    assert h.rows == whole.height


def test_leak_index_matches_find_leaks() -> None:
    df = _sft(600, seed=3, near=0.4)
    keys = df["messages"].list.first().struct.field("content")
    held, ref = keys.head(120), keys.slice(120)
    stage = DecontaminateStage(type="decontaminate", against=[ReferenceSpec(name="r", path="-", column="-")])
    want = find_leaks(held, ref, stage)
    index = LeakIndex(held, stage)
    ids = np.array([f"r{j}" for j in range(len(ref))], dtype=object)
    for lo in range(0, len(ref), 97):  # the reference in uneven batches
        index.add(ref.slice(lo, 97), ids[lo : lo + 97])
    got = index.result()
    assert want.leaked.sum() > 10
    assert got.ref_index.tolist() == want.ref_index.tolist()
    assert np.array_equal(got.exact, want.exact)
    np.testing.assert_allclose(got.similarity, want.similarity)
    assert [x for x in got.ref_id if x is not None] == [f"r{j}" for j in want.ref_index if j >= 0]


def test_card_stats_over_batches_equal_the_whole_frame(tmp_path: Path) -> None:
    df = _sft(500, seed=5).with_columns(assign_splits(_sft(500, seed=5), Kind.SFT, SplitSpec(eval=0.1, test=0.1)))
    pub = Store(tmp_path).publish("d", df, {"kind": "sft"})
    whole = card_text("d", 1, df, pub.manifest, tmp_path)
    batched = CardStats.of(Kind.SFT, (df.slice(lo, 37) for lo in range(0, df.height, 37)))
    assert batched.example_rows() == example_rows(df)
    assert card_text("d", 1, batched, pub.manifest, tmp_path).split("## Schema")[1] == whole.split("## Schema")[1]


def test_publish_records_matches_the_in_memory_path(tmp_path: Path) -> None:
    df = _sft(3000, seed=7)
    spec = PublishSpec(store=str(tmp_path / "a"), splits=SplitSpec(eval=0.1, test=0.05))
    files = []
    for i, lo in enumerate(range(0, df.height, 1100)):  # several record files, as a run has
        files.append(tmp_path / f"part-{i}.parquet")
        df.slice(lo, 1100).write_parquet(files[-1], row_group_size=256)
    res = publish_records(
        file_batches(files, batch_rows=300),
        Kind.SFT,
        Store(spec.store),
        "d",
        spec.splits,
        lambda leaks: {"kind": "sft", "split_leaks": leaks},
    )
    full = df.with_columns(assign_splits(df, Kind.SFT, spec.splits))
    assert res["created"] and res["rows"] == df.height
    assert res["content_hash"] == content_hash(full)
    stored = Store(spec.store).read("d@1")
    assert content_hash(stored) == res["content_hash"] and stored.columns == full.columns
    want = split_leaks(full, Kind.SFT, spec)
    manifest = Store(spec.store).manifest("d@1")
    assert manifest["split_leaks"] == want and want["eval"]["near_duplicates_of_train"] > 0
    assert Path(res["card"]).exists()
    # unchanged content publishes nothing; the leaks come back from the latest manifest
    again = publish_records(frame_batches(df), Kind.SFT, Store(spec.store), "d", spec.splits, lambda _: {"kind": "sft"})
    assert (again["created"], again["version"], again["content_hash"]) == (False, 1, res["content_hash"])
    assert again["split_leaks"] == res["split_leaks"]


def test_a_run_without_survivors_publishes_an_empty_version(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from schemas.kinds import arrow_schema

    pq.write_table(arrow_schema(Kind.SFT).empty_table(), tmp_path / "part.parquet")
    res = publish_records(
        file_batches([tmp_path / "part.parquet"]),
        Kind.SFT,
        Store(tmp_path / "store"),
        "e",
        SplitSpec(),
        lambda leaks: {"kind": "sft", "split_leaks": leaks},
    )
    assert (res["created"], res["rows"], res["rows_per_split"]) == (True, 0, {})
    assert res["content_hash"] == content_hash(pl.DataFrame())
    assert Store(tmp_path / "store").read("e@1").height == 0


class _Counted:
    """A record source that counts full reads (``columns=None``) and column reads."""

    def __init__(self, df: pl.DataFrame, rows: int | None = None):
        self.source, self.rows = frame_batches(df, batch_rows=400), rows
        self.full = self.partial = 0

    def __call__(self, columns: list[str] | None = None):
        if columns is None:
            self.full += 1
        else:
            self.partial += 1
        return self.source(columns)


def _staged_folders(store: Path, name: str) -> list[Path]:
    return sorted(p for p in (store / name / "table").iterdir() if p.name.startswith("write-"))


def test_publish_reads_the_records_once(tmp_path: Path) -> None:
    """A first version, and one whose row count differs from the latest, is hashed and written in
    one pass (the leak check reads spilled keys, not the records); the files sit in one staged
    folder whose scratch log is gone; time travel and the content hash hold."""
    spec = SplitSpec(eval=0.1, test=0.05)
    v1, v2 = _sft(2000, seed=1), _sft(2500, seed=2)
    pub = lambda src: publish_records(  # noqa: E731
        src, Kind.SFT, Store(tmp_path / "s"), "d", spec, lambda leaks: {"kind": "sft", "split_leaks": leaks}
    )
    for version, df in ((1, v1), (2, v2)):
        src = _Counted(df, rows=df.height)
        res = pub(src)
        assert (src.full, src.partial, res["version"], res["created"]) == (1, 0, version, True)
        full = df.with_columns(assign_splits(df, Kind.SFT, spec))
        assert res["content_hash"] == content_hash(full)
        assert Store(tmp_path / "s").manifest(f"d@{version}")["split_leaks"] == split_leaks(
            full, Kind.SFT, PublishSpec(store="-", splits=spec)
        )
    folders = _staged_folders(tmp_path / "s", "d")
    assert len(folders) == 2 and not any((f / "_delta_log").exists() for f in folders)
    assert all(list(f.glob("*.parquet")) for f in folders)
    st = Store(tmp_path / "s")
    assert content_hash(st.read("d@1")) == content_hash(v1.with_columns(assign_splits(v1, Kind.SFT, spec)))
    assert st.read("d@2").height == v2.height and st.versions("d") == [1, 2]


def test_a_version_that_may_be_unchanged_is_hashed_before_it_is_written(tmp_path: Path) -> None:
    """Same row count as the latest version (or unknown): hash first. Unchanged content writes no
    file at all; changed content of the same size is read a second time to be written."""
    spec = SplitSpec(eval=0.1)
    v1 = _sft(1500, seed=3)
    pub = lambda src: publish_records(  # noqa: E731
        src, Kind.SFT, Store(tmp_path / "s"), "d", spec, lambda leaks: {"kind": "sft", "split_leaks": leaks}
    )
    pub(_Counted(v1, rows=v1.height))
    for rows in (v1.height, None):
        src = _Counted(v1, rows=rows)
        res = pub(src)
        assert (res["created"], res["version"], src.full) == (False, 1, 1)
    assert len(_staged_folders(tmp_path / "s", "d")) == 1
    changed = v1.with_columns(pl.col("id").str.replace("^", "x"))
    src = _Counted(changed, rows=changed.height)
    res = pub(src)
    assert (res["created"], res["version"], src.full) == (True, 2, 2)
    assert Store(tmp_path / "s").read("d@2")["id"].str.starts_with("x").all()


def test_a_publish_that_fails_before_its_commit_leaves_no_files(tmp_path: Path) -> None:
    """The manifest cannot be built: nothing is committed and the staged files are deleted."""
    df = _sft(800, seed=4)

    def broken(leaks: dict) -> dict:
        raise RuntimeError("manifest failed")

    with pytest.raises(RuntimeError, match="manifest failed"):
        publish_records(frame_batches(df), Kind.SFT, Store(tmp_path / "s"), "d", SplitSpec(), broken)
    assert _staged_folders(tmp_path / "s", "d") == []
    assert Store(tmp_path / "s").latest("d") is None
    res = publish_records(
        frame_batches(df), Kind.SFT, Store(tmp_path / "s"), "d", SplitSpec(), lambda _: {"kind": "sft"}
    )
    assert (res["version"], res["rows"]) == (1, df.height)


def test_spill_folders_of_killed_publishes_are_removed(tmp_path: Path) -> None:
    """The train keys spill to ``curate-publish-PID-*`` in the temp dir; a publish removes the folders
    of processes that no longer exist (a SIGKILL skips cleanup) and leaves live ones alone."""
    import os
    import subprocess
    import sys
    import tempfile

    from curate.store.publish import SPILL_PREFIX

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{int(gone.stdout)}-"))
    (stale / "train-keys.arrows").write_bytes(b"x" * 100)
    live = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getppid()}-"))
    try:
        df = _sft(300, seed=5)
        publish_records(frame_batches(df), Kind.SFT, Store(tmp_path / "s"), "d", SplitSpec(), lambda _: {"kind": "sft"})
        assert not stale.exists() and live.exists()
        assert not list(Path(tempfile.gettempdir()).glob(f"{SPILL_PREFIX}{os.getpid()}-*"))  # its own: cleaned up
    finally:
        live.rmdir()
