"""Per-file units of a run: ingest one input file into a shard, sketch one shard for near-dedup.

A *shard* is the ingested form of one input file: its contract records (Parquet, rolled every
``output.rows_per_file`` rows), its quarantine and rejected-record lines, and its tally, in a
folder named by a content key (the file's SHA-256, the source's recipe section, the output kind,
the limits and the code fingerprint). A unit whose key folder is complete returns it without
work, so a rerun with nothing new reads nothing twice, and a run that died halfway resumes from
the shards already written. Shards are written to a temporary folder and renamed into place, so
a crash never leaves a half shard under a real key.

Both drivers call these units: :func:`curate.engine.local.run_recipe` in a loop, and the Prefect flows
(``flows/``) as mapped tasks, on threads or Dask workers.

Example:
    >>> # ref = ingest_file(source_plan, input_file, sha, Kind.SFT, limits, Path("runs/.work/demo"))
    >>> # ref.tally["input_rows"], ref.parts   -> (41, ['.../records-00000.parquet'])
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.engine.batch import SourceInfo, process_batch
from curate.engine.plan import SourcePlan
from curate.ingest import InputFile, read_batches
from curate.ingest.extract import columnar_fields
from schemas.fields import key_expr
from schemas.kinds import Kind, arrow_schema
from schemas.recipe import Limits
from schemas.stages import NearDedupStage

PACKAGES = ("schemas", "curate")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over the source of the packages a shard depends on (uncommitted edits count)."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def digest(*parts: Any) -> str:
    """A short stable hash of JSON-able parts."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


@dataclass(frozen=True)
class FileJob:
    """One input file to ingest, with its content hash (computed once, before any task runs)."""

    source_index: int
    file_index: int
    source: str
    uri: str
    sha256: str
    format: str
    compression: str
    size: int
    mtime_ns: int = 0
    """The file's modification time when it was hashed (0: not a local file)."""


@dataclass(frozen=True)
class ShardRef:
    """A finished shard: where its files are and what happened to its rows."""

    key: str
    dir: str
    source: str
    uri: str
    sha256: str
    format: str
    compression: str
    parts: list[str]
    records: int
    tally: dict[str, Any] = field(default_factory=dict)

    @property
    def quarantine(self) -> Path:
        return Path(self.dir) / "quarantine.jsonl"

    @property
    def rejected(self) -> Path:
        return Path(self.dir) / "rejected.jsonl"

    @property
    def multiline(self) -> Path:
        """Kept rows read from several physical lines (absent when there are none)."""
        return Path(self.dir) / "multiline.jsonl"

    def complete(self) -> bool:
        """All of the shard's files are still on disk (a cached reference may outlive them)."""
        return all(Path(p).exists() for p in self.parts) and self.quarantine.exists()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def shard_key(sp: SourcePlan, sha256: str, kind: Kind, limits: Limits) -> str:
    """Content key of a shard: what it is made from, and by which code."""
    spec = sp.spec.model_dump(mode="json")
    return digest(sha256, spec, kind.value, limits.model_dump(mode="json"), code_fingerprint())


def load_shard(folder: Path) -> ShardRef | None:
    """The shard in ``folder`` when it is complete, else None."""
    meta = folder / "shard.json"
    if not meta.exists():
        return None
    ref = ShardRef(**orjson.loads(meta.read_bytes()))
    return ref if ref.complete() else None


def ingest_file(
    sp: SourcePlan,
    f: InputFile,
    sha256: str,
    kind: Kind,
    limits: Limits,
    work: Path,
    rows_per_file: int = 500_000,
    on_batch: Callable[[int, int], None] | None = None,
) -> ShardRef:
    """Ingest one input file of source ``sp`` into a shard under ``work/shards``; see the module docstring.

    ``on_batch(bytes_read, rows)`` is called after every batch (progress bars).
    """
    key = shard_key(sp, sha256, kind, limits)
    final = work / "shards" / key
    done = load_shard(final)
    if done is not None:
        return done
    tmp = work / "shards" / f".{key}.{secrets.token_hex(3)}.tmp"
    tmp.mkdir(parents=True)
    try:
        ref = _write_shard(sp, f, sha256, kind, limits, key, tmp, final, rows_per_file, on_batch)
        if final.exists():  # an older, incomplete copy (its files went missing)
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ref


class _PartFiles:
    """A shard's record tables written into part files of ``rows_per_file`` rows each.

    With ``behind=True`` each batch is converted to Arrow and written on one background thread
    while the caller reads and converts the next batch: Arrow's JSON parse and zstd compression
    release the GIL, so one file ingests about 1.4x faster on two cores. At most one batch is in
    flight (memory stays bounded), and a write error (disk full) is raised by the next
    :meth:`add` or :meth:`close`, as the same exception.
    """

    def __init__(self, tmp: Path, final: Path, schema: pa.Schema, rows_per_file: int, behind: bool) -> None:
        self.tmp, self.final, self.schema, self.rows_per_file = tmp, final, schema, rows_per_file
        self.parts: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._in_file = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="curate-shard-write") if behind else None
        self._pending: Future[None] | None = None

    def add(self, records: pl.DataFrame) -> None:
        if self._pool is None:
            self._write(records)
            return
        self._wait()
        self._pending = self._pool.submit(self._write, records)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def _write(self, records: pl.DataFrame) -> None:
        table = records.to_arrow().cast(self.schema)
        offset = 0
        while offset < table.num_rows:
            if self._writer is None or self._in_file >= self.rows_per_file:
                if self._writer is not None:
                    self._writer.close()
                name = f"records-{len(self.parts):05d}.parquet"
                # Dictionary encoding only wastes time on high-cardinality text; zstd compresses without it.
                self._writer = pq.ParquetWriter(self.tmp / name, self.schema, compression="zstd", use_dictionary=False)
                self.parts.append(str(self.final / name))
                self._in_file = 0
            take = min(self.rows_per_file - self._in_file, table.num_rows - offset)
            self._writer.write_table(table.slice(offset, take))
            self._in_file += take
            offset += take

    def close(self) -> None:
        """Finish every write (raising a write's error) and close the last part file."""
        try:
            self._wait()
        except BaseException:
            self.abort()
            raise
        self._stop()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        """Stop after a failure: wait for the write in flight, ignoring its own error (the caller's
        error is the one to report), so nothing writes into the folder the caller then removes."""
        with contextlib.suppress(BaseException):  # the caller is already raising the first error
            self._wait()
        self._stop()
        if self._writer is not None:
            with contextlib.suppress(Exception):  # a half-written part is discarded with its folder
                self._writer.close()
            self._writer = None

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _write_shard(
    sp: SourcePlan,
    f: InputFile,
    sha256: str,
    kind: Kind,
    limits: Limits,
    key: str,
    tmp: Path,
    final: Path,
    rows_per_file: int,
    on_batch: Callable[[int, int], None] | None,
) -> ShardRef:
    info = SourceInfo(sp.spec.name, f.uri, sha256)
    # one thread of polars' means the caller wants this run on one thread (benchmarks, busy machines)
    files = _PartFiles(tmp, final, arrow_schema(kind), rows_per_file, behind=pl.thread_pool_size() > 1)
    tally: dict[str, Any] = {"input_rows": 0, "kept": 0, "output_records": 0, "multiline_rows": 0}
    quarantined: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    batches = read_batches(
        f,
        batch_rows=limits.batch_rows,
        max_line_bytes=limits.max_line_bytes,
        text_unit=sp.spec.text_unit,
        csv_delimiter=sp.spec.csv.delimiter,
        csv_quote=sp.spec.csv.quote,
        csv_header=sp.spec.csv.header,
        # clean JSON Lines batches then arrive as columns (Arrow's reader), not a dict per row
        columns=columnar_fields(sp.chain[0].fields, sp.spec.columns),
    )
    try:
        with (tmp / "quarantine.jsonl").open("wb") as qf, (tmp / "rejected.jsonl").open("wb") as rf:
            for batch in batches:
                out = process_batch(batch, sp.chain, sp.options, sp.spec.columns, kind, info, limits.max_chars)
                files.add(out.records)
                qf.write(b"".join(orjson.dumps(e) + b"\n" for e in out.quarantine))
                rf.write(b"".join(orjson.dumps(e) + b"\n" for e in out.rejected))
                if out.multiline:  # rare (quoted newlines in CSV): the file exists only when needed
                    with (tmp / "multiline.jsonl").open("ab") as mf:
                        mf.write(b"".join(orjson.dumps(e) + b"\n" for e in out.multiline))
                    tally["multiline_rows"] += len(out.multiline)
                tally["input_rows"] += out.input_rows
                tally["kept"] += out.kept_rows
                tally["output_records"] += out.records.height
                quarantined.update(out.quarantined_by_reason)
                rejected.update(out.rejected_by_reason)
                if on_batch is not None:
                    on_batch(batch.bytes_read, out.input_rows)
    except BaseException:
        files.abort()
        raise
    files.close()
    tally["quarantined_by_reason"] = dict(quarantined)
    tally["records_rejected_by_reason"] = dict(rejected)
    ref = ShardRef(
        key,
        str(final),
        info.name,
        info.uri,
        sha256,
        f.format,
        f.compression,
        files.parts,
        tally["output_records"],
        tally,
    )
    (tmp / "shard.json").write_bytes(orjson.dumps(ref.to_json()))
    return ref


def sketch_key(ref: ShardRef, stage: NearDedupStage, kind: Kind, key_fields: list[str]) -> str:
    """Content key of a shard's signatures for one near-dedup stage (``workers`` does not change them)."""
    params = stage.model_dump(mode="json", include={"minhash", "key"})
    return digest(ref.key, params, kind.value, key_fields, code_fingerprint())


def sketch_shard(ref: ShardRef, stage: NearDedupStage, kind: Kind, key_fields: list[str], work: Path) -> str:
    """Phase 1 of near-dedup at scale: MinHash signatures of every record of one shard.

    Returns the path of an ``.npz`` with ``signatures`` (rows x num_perm) and ``empty`` (records
    with no shingle). Records a later stage never sees are sketched too: sketching is per shard and
    cheap, and it keeps the file independent of earlier stages (so it stays cached when they change).
    """
    from curate.dedup.minhash import sketch  # numba loads only when near-dedup runs

    path = work / "sketches" / f"{sketch_key(ref, stage, kind, key_fields)}.npz"
    if path.exists():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    expr = key_expr(kind, key_fields)
    keys = [pl.scan_parquet(p).select(expr).collect().to_series() for p in ref.parts]  # only the key columns
    texts = pl.concat(keys) if keys else pl.Series("__key", [], dtype=pl.String)
    sk = sketch(texts, stage.minhash, keep_shingles=False, workers=stage.workers)
    tmp = path.with_suffix(f".{secrets.token_hex(3)}.tmp.npz")
    np.savez(tmp, signatures=sk.signatures, empty=sk.empty)
    os.replace(tmp, path)
    return str(path)


GC_MIN_AGE = 3600.0
"""Seconds an unused work file must be old before it is removed (another run may be writing it)."""


def garbage_collect(work: Path, keep_shards: set[str], keep_files: set[str], min_age: float = GC_MIN_AGE) -> int:
    """Remove shards and cached files this run does not use (and stale temporaries); returns how many.

    Only items untouched for ``min_age`` seconds go, so a concurrent run of the same recipe keeps its files.
    """
    removed = 0
    cutoff = time.time() - min_age
    shards = work / "shards"
    if shards.exists():
        for d in shards.iterdir():
            if d.name not in keep_shards and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
    for sub in ("sketches", "decisions", "finished", "feedback"):
        folder = work / sub
        if not folder.exists():
            continue
        for item in folder.iterdir():
            if str(item) not in keep_files and item.stat().st_mtime < cutoff:
                shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
                removed += 1
    return removed
