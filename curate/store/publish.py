"""Publish a run's dataset as the next version in the store, with splits, a leak check and a manifest.

Example:
    >>> # report = publish_run(data_files, doc, summary, base_dir)   # called by curate run
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.dedup.contamination import LeakIndex
from curate.engine.report import link_audit_files
from curate.store import Store
from curate.store.card import CardStats, repair_cards, write_card
from curate.store.location import is_url
from curate.store.splits import assign_splits, split_key_fields, splits_of_keys
from curate.store.store import ContentHasher, Published, Staged, frames_reader
from schemas.fields import key_expr
from schemas.kinds import Kind
from schemas.recipe import PublishSpec, SplitSpec
from schemas.recipe_loader import LoadedRecipe
from schemas.stages import DecontaminateStage, ReferenceSpec

LEAK_EXAMPLES = 5


def store_root(spec: PublishSpec) -> Path | str:
    """The store root of ``spec``: a local path, or the URL exactly as written (``s3://b/x`` stays intact)."""
    return spec.store if is_url(spec.store) else Path(spec.store)


def publish_store(spec: PublishSpec) -> Store:
    """The :class:`Store` a publish section names (its ``storage_options`` resolved at use, never stored)."""
    return Store(store_root(spec), spec.storage_options)


BATCH_ROWS = 16_384
"""Rows per batch read while publishing: what bounds publish memory, whatever the version's size."""

Batches = Callable[[list[str] | None], Iterator[pl.DataFrame]]
"""A re-readable record source: called with the columns wanted (None: all), yields frames; every
call yields the same rows in the same order (a pass over some columns lines up with a pass over all)."""


@dataclass(frozen=True)
class RecordSource:
    """A :data:`Batches` source that also knows its row count (``rows``; None: unknown).

    Knowing it lets a publish tell, before reading anything, that the records cannot equal the
    latest version (another row count), and write them in the pass that hashes them.
    """

    read: Batches
    rows: int | None = None

    def __call__(self, columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
        return self.read(columns)


def file_batches(files: list[Path], batch_rows: int = BATCH_ROWS) -> RecordSource:
    """The records of Parquet ``files`` (in order) as a :data:`Batches` source (rows from the footers).

    Example:
        >>> # next(file_batches([Path("runs/x/data/part-00000.parquet")])(["id"])).columns  -> ['id']
    """

    def read(columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
        for f in files:
            # no pre-buffering: it would hold a whole row group's compressed columns per batch
            pf = pq.ParquetFile(f, pre_buffer=False, buffer_size=1 << 20)
            empty = True
            for batch in pf.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False):
                if batch.num_rows:
                    empty = False
                    df = pl.from_arrow(batch)
                    assert isinstance(df, pl.DataFrame)
                    yield df
            if empty:  # a file without rows still says what the columns are (a version of 0 rows)
                table = pf.schema_arrow.empty_table()
                df = pl.from_arrow(table.select(columns) if columns is not None else table)
                assert isinstance(df, pl.DataFrame)
                yield df

    return RecordSource(read, sum(pq.read_metadata(f).num_rows for f in files))


def frame_batches(df: pl.DataFrame, batch_rows: int = BATCH_ROWS) -> RecordSource:
    """An in-memory frame as a :data:`Batches` source (zero-copy slices; a frame without rows gives one
    empty frame, so its columns are known)."""

    def read(columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
        sel = df if columns is None else df.select(columns)
        for lo in range(0, max(df.height, 1), batch_rows):
            yield sel.slice(lo, batch_rows)

    return RecordSource(read, df.height)


def _leak_stage(spec: SplitSpec) -> DecontaminateStage:
    return DecontaminateStage(
        type="decontaminate",
        threshold=spec.leak_threshold,
        against=[ReferenceSpec(name="train", path="-", column="-")],
    )


def _leak_report(held: pl.DataFrame, leaks: Any, train_rows: int, threshold: float) -> dict[str, Any]:
    report: dict[str, Any] = {"threshold": threshold}
    for side in ("eval", "test"):
        mask = (held["split"] == side).to_numpy()
        rows = int(mask.sum())
        if rows == 0 or train_rows == 0:
            report[side] = {"rows": rows, "near_duplicates_of_train": 0, "examples": []}
            continue
        ids = held["id"].to_numpy()[mask]
        hit = leaks.leaked[mask]
        ref_id, sim = leaks.ref_id[mask], leaks.similarity[mask]
        examples = [
            {"id": ids[i], "train_id": ref_id[i], "similarity": round(float(sim[i]), 3)}
            for i in hit.nonzero()[0][:LEAK_EXAMPLES].tolist()
        ]
        report[side] = {"rows": rows, "near_duplicates_of_train": int(hit.sum()), "examples": examples}
    return report


def _key_columns(kind: Kind, spec: SplitSpec) -> list[str]:
    """The columns the split key reads (plus ``id``), so the leak pass reads nothing else."""
    return list(dict.fromkeys(["id", *key_expr(kind, split_key_fields(kind, spec)).meta.root_names()]))


def leaks_against(
    held: pl.DataFrame, train: Iterable[pl.DataFrame], spec: SplitSpec, train_rows: int
) -> dict[str, Any]:
    """The split-leak report from ``held`` (``__key``, ``id``, ``split`` of the eval/test rows) with
    ``train`` (frames of ``__key`` and ``id`` of the train rows, in order) streamed against it."""
    if held.height == 0 or train_rows == 0:
        return _leak_report(held, None, train_rows, spec.leak_threshold)
    index = LeakIndex(held["__key"], _leak_stage(spec))
    for df in train:
        if df.height:
            index.add(df["__key"], df["id"].to_numpy())
    return _leak_report(held, index.result(), train_rows, spec.leak_threshold)


def stream_split_leaks(
    held: pl.DataFrame, batches: Batches, kind: Kind, spec: SplitSpec, train_rows: int
) -> dict[str, Any]:
    """:func:`leaks_against` the train rows of ``batches`` (only their key columns are read, and their
    splits assigned again)."""
    expr = key_expr(kind, split_key_fields(kind, spec))

    def train() -> Iterator[pl.DataFrame]:
        for df in batches(_key_columns(kind, spec)):
            yield df.filter(assign_splits(df, kind, spec) == "train").select(expr, "id")

    return leaks_against(held, train(), spec, train_rows)


def split_leaks(df: pl.DataFrame, kind: Kind, spec: PublishSpec) -> dict[str, Any]:
    """Near-duplicates across splits: eval/test rows whose split key nearly matches a train row.

    ``df`` holds the records with ``split``; see :func:`publish_records` for the same at bounded memory.
    """
    expr = key_expr(kind, split_key_fields(kind, spec.splits))
    held = df.filter(pl.col("split") != "train").select(expr, "id", "split")
    train_rows = int((df["split"] == "train").sum())
    return stream_split_leaks(held, frame_batches(df), kind, spec.splits, train_rows)


def build_manifest(
    doc: LoadedRecipe, summary: dict[str, Any], leaks: dict[str, Any], carried_inputs: list[dict[str, Any]] = ()
) -> dict[str, Any]:
    """What a version records about how it was made (no secrets: the recipe keeps ``${ENV}`` references).

    ``carried_inputs``: input files of the parent version whose rows this version keeps unchanged (an
    incremental refresh), listed with this run's inputs so the next refresh knows them.
    """
    recipe = doc.recipe
    inputs = [
        {"source": name, "uri": f["uri"], "sha256": f["sha256"], "format": f["format"], "rows": f["input_rows"]}
        # what was read: the bytes sha256 covers, rows spanning lines, a file that grew while read
        | {k: f[k] for k in ("bytes", "multiline_rows", "changed_while_read") if f.get(k)}
        for name, src in summary["sources"].items()
        for f in src["files"]
    ]
    seen = {i["uri"] for i in inputs}
    inputs += [{**i, "carried": True} for i in carried_inputs if i["uri"] not in seen]
    accounting = {k: summary[k] for k in ("input_rows", "kept", "quarantined", "duplicates", "dropped", "balanced")}
    accounting |= {k: summary[k] for k in ("quarantined_by_reason", "duplicates_by_reason", "dropped_by_reason")}
    return {
        "kind": recipe.output.kind.value,
        "recipe": {"name": recipe.name, "sha256": hashlib.sha256(doc.text.encode()).hexdigest(), "text": doc.text},
        "inputs": inputs,
        "stages": [s.model_dump(mode="json") for s in recipe.stages],
        "splits": recipe.publish.splits.model_dump(mode="json") if recipe.publish else None,
        "split_leaks": leaks,
        "accounting": accounting,
        "stage_results": [
            {k: st[k] for k in ("name", "type", "outcome", "records_in", "records_out", "by_reason")}
            for st in summary.get("stages", [])
        ],
        "run_id": summary.get("run_id"),
        "orchestrator_run_id": summary.get("orchestrator", {}).get("flow_run_id")
        or os.environ.get("PREFECT__FLOW_RUN_ID"),
        "refresh": summary.get("refresh"),
        "code_version": summary.get("code_version"),
        "annotation": None,
        "feedback": summary.get("feedback"),
    }


def _copy_report(run_dir: Path, folder: Path) -> None:
    """The run report beside the version's card; its links to audit files point back to the run folder."""
    report = run_dir / "report.md"
    if not report.exists():
        return
    for png in ("funnel.png", "lengths.png"):
        if (run_dir / png).exists():
            shutil.copyfile(run_dir / png, folder / f"run-{png}")
    text = report.read_text(encoding="utf-8").replace("](funnel.png)", "](run-funnel.png)")
    text = text.replace("](lengths.png)", "](run-lengths.png)")
    text = link_audit_files(text, run_dir)
    tmp = folder / ".run-report.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(folder / "run-report.md")


SPILL_PREFIX = "curate-publish-"
"""Temporary folders (``curate-publish-PID-*`` in the system temp dir) holding a publish's spilled train keys."""


def _remove_stale_spills() -> None:
    """Delete spill folders of publishes whose process is gone (killed before it could clean up)."""
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{SPILL_PREFIX}*-*"):
        pid = folder.name.removeprefix(SPILL_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # alive, owned by someone else
            continue


def own_buffers(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` in buffers of its own: a filtered polars string column still points into the whole
    batch's string data, so keeping a few rows of every batch would keep every batch (about 250 MB
    of split keys per million SFT rows for 5% eval rows). Copies only ``df``'s rows."""
    out = pl.from_arrow(df.to_arrow())
    assert isinstance(out, pl.DataFrame)
    return out


class _Scan:
    """What one pass over the records gathers, batch by batch: splits, the content hash, the card's
    statistics, the eval/test rows' split keys (in memory: the small side) and the train rows' keys
    (spilled to an Arrow stream in ``spill_dir``, LZ4-compressed), so the leak check reads them
    back instead of the records."""

    def __init__(self, kind: Kind, splits: SplitSpec, spill_dir: Path):
        self.kind, self.splits = kind, splits
        self.hasher, self.stats = ContentHasher(), CardStats(kind)
        self.expr = key_expr(kind, split_key_fields(kind, splits))
        self._held: list[pl.DataFrame] = []
        self._spill_path = spill_dir / "train-keys.arrows"
        self._spill: tuple[Any, Any] | None = None  # (file, stream writer), opened at the first train row
        self._spill_schema: pa.Schema | None = None

    def add(self, df: pl.DataFrame) -> pl.DataFrame:
        """Take one batch of records; returns it with ``split``."""
        keys = df.select(self.expr).to_series()
        split = splits_of_keys(keys, self.splits)
        df = df.with_columns(split)
        self.hasher.update(df)
        self.stats.update(df)
        is_train = split == "train"
        both = pl.DataFrame([keys, df["id"], split])
        self._held.append(own_buffers(both.filter(~is_train)))
        self._write_train(both.filter(is_train).drop("split").to_arrow())
        return df

    def _write_train(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self._spill is None:
            codec = "lz4" if pa.Codec.is_available("lz4") else None
            f = pa.OSFile(str(self._spill_path), "wb")
            self._spill = f, pa.ipc.new_stream(f, table.schema, options=pa.ipc.IpcWriteOptions(compression=codec))
            self._spill_schema = table.schema
        self._spill[1].write_table(table.cast(self._spill_schema))

    def over(self, frames: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """``frames`` with ``split``, each taken in as it passes."""
        for df in frames:
            yield self.add(df)

    def held(self) -> pl.DataFrame:
        """The eval/test rows' split keys, ids and splits (released here)."""
        parts, self._held = self._held, []
        if not parts:
            return pl.DataFrame(schema={"__key": pl.String, "id": pl.String, "split": pl.String})
        return pl.concat(parts)

    def close(self) -> None:
        """Finish the spill file (it is complete once closed)."""
        if self._spill is not None:
            f, writer = self._spill
            self._spill = None
            writer.close()
            f.close()

    def train(self) -> Iterator[pl.DataFrame]:
        """The train rows' split keys and ids (``__key``, ``id``), read back from the spill in order."""
        self.close()
        if self._spill_schema is None:
            return
        with pa.OSFile(str(self._spill_path), "rb") as src:
            for batch in pa.ipc.open_stream(src):
                df = pl.from_arrow(batch)
                assert isinstance(df, pl.DataFrame)
                yield df


def publish_records(
    batches: Batches,
    kind: Kind,
    store: Store,
    name: str,
    splits: SplitSpec,
    manifest: Callable[[dict[str, Any]], dict[str, Any]],
    skip_unchanged: bool = True,
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """Publish records as the next version of ``name``: the one publish path of runs and annotation pulls.

    Inputs: ``batches`` (the records, without ``split``, one batch at a time; a :class:`RecordSource`
    also gives their row count), the record ``kind``, the target ``store``/``name``, the ``splits``
    spec, and ``manifest``, which gets the split-leak report and returns the version's manifest.
    With ``run_dir``, its report is copied next to the card. Output: ``{store, dataset, version, ref,
    created, content_hash, rows_per_split, split_leaks, rows[, card]}``.

    Steps, all at bounded memory, reading the records once: repair what an earlier crash left
    (manifest copies, cards); one pass assigns splits per batch (a row's split depends only on
    its key), gathers the content hash (32 bytes per row), the card's statistics and the eval/test
    keys, spills the train rows' keys to a temporary file (LZ4 Arrow, about a third of their
    text, in :data:`SPILL_PREFIX` folders of the system temp dir; the next publish removes those
    of killed processes) and writes the data files (staged, uncommitted: :meth:`Store.stage`) as it goes; the
    spilled train keys then stream against the held-out keys (split leaks); then one Delta commit
    of the staged files on top of the parent version read at the start (a concurrent publish makes
    it fail, never stack), with the manifest and hash, and the card.

    When the records may equal the latest version (``skip_unchanged``, same row count or unknown),
    the pass only hashes: an unchanged version stops there, a changed one is read again to be written.

    Example:
        >>> # publish_records(file_batches(files), Kind.SFT, Store("data/store"), "chat", SplitSpec(),
        >>> #                 lambda leaks: {"kind": "sft", "split_leaks": leaks})["version"]  -> 1
    """
    repair_cards(store, name)  # a crash after an earlier commit may have left its card unwritten
    parent = store.latest(name)
    _remove_stale_spills()
    with tempfile.TemporaryDirectory(prefix=f"{SPILL_PREFIX}{os.getpid()}-") as spill:
        scan = _Scan(kind, splits, Path(spill))
        staged: Staged | None = None
        same: Published | None = None
        committing = False
        if skip_unchanged and store.may_be_unchanged(name, parent, getattr(batches, "rows", None)):
            for _ in scan.over(batches(None)):
                pass
            same = store.unchanged(name, parent, scan.hasher.hexdigest())
        else:  # not the latest version's content: written while it is hashed
            staged = store.stage(name, frames_reader(scan.over(batches(None))))
        digest, stats = scan.hasher.hexdigest(), scan.stats
        train_rows = stats.counts.get("train", 0)
        try:
            if same is not None and (same.manifest.get("split_leaks") or {}).get("threshold") == splits.leak_threshold:
                leaks = same.manifest["split_leaks"]  # equal content and threshold: equal leaks
            else:
                leaks = leaks_against(scan.held(), scan.train(), splits, train_rows)
            if same is not None:
                result = same
            else:
                if staged is None:  # same row count as the latest version, other content
                    assert stats.schema is not None
                    schema = stats.empty().to_arrow().schema
                    staged = store.stage(name, frames_reader(_with_splits(batches, kind, splits), schema))
                text = manifest(leaks)
                committing = True
                result = store.commit_staged(staged, text, digest, parent, stats.rows, dict(stats.counts))
        except BaseException:
            if staged is not None and not committing:  # files no commit can reference; a failed commit's
                store.discard(staged)  # files stay (it may have landed), invisible unless it did
            raise
        finally:
            scan.close()
    card = None
    if result.created:
        extra = (lambda folder: _copy_report(run_dir, folder)) if run_dir is not None else None
        card = write_card(store, name, result.version, stats, result.manifest, extra=extra)
    return {
        "store": str(store.root),
        "dataset": name,
        "version": result.version,
        "ref": f"{name}@{result.version}",
        "created": result.created,
        "content_hash": result.manifest["content_hash"],
        "rows_per_split": result.manifest["rows_per_split"],
        "rows": result.manifest.get("rows", stats.rows),
        "split_leaks": {k: v["near_duplicates_of_train"] for k, v in leaks.items() if isinstance(v, dict)},
        **({"card": str(card)} if card is not None else {}),
    }


def _with_splits(batches: Batches, kind: Kind, splits: SplitSpec) -> Iterator[pl.DataFrame]:
    for df in batches(None):
        yield df.with_columns(assign_splits(df, kind, splits))


def publish_run(
    data_files: list[Path],
    doc: LoadedRecipe,
    summary: dict[str, Any],
    carried_inputs: list[dict[str, Any]] = (),
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """Assign splits to the run's records and publish them (:func:`publish_records`); returns what was published.

    With ``run_dir``, its report (``report.md`` and plots) is copied next to the version's card.
    """
    spec = doc.recipe.publish
    assert spec is not None
    published = publish_records(
        file_batches(list(data_files)),
        doc.recipe.output.kind,
        publish_store(spec),
        spec.dataset or doc.recipe.name,
        spec.splits,
        lambda leaks: build_manifest(doc, summary, leaks, list(carried_inputs)),
        skip_unchanged=spec.skip_unchanged,
        run_dir=run_dir,
    )
    published.pop("rows")
    return published
