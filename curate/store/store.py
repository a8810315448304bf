"""The dataset store: one Delta Lake table per dataset, one commit per published version.

Layout under the store root::

    NAME/table/          Delta table: record columns + ``split``; commit N is version N + 1
    NAME/manifests/vN.json   the manifest of version N (a readable copy of what the commit carries)

Publishing is one Delta commit: data files are written first (staged in ``NAME/table/write-*/``,
see :meth:`Store.stage`) and the commit file appears atomically at the end, so a crash at any
point leaves the previous version intact and a half-written version invisible. Staging lets the
data be written in the same pass that computes its content hash, which the commit carries. The
manifest travels inside the commit (``custom_metadata``), so data and manifest can never
disagree; :meth:`Store.repair` rewrites JSON copies (and cards) that a crash between the commit
and the copy left missing, and every publish runs it first.

Example:
    >>> import tempfile, polars as pl
    >>> from schemas.kinds import Kind
    >>> st = Store(tempfile.mkdtemp())
    >>> df = pl.DataFrame({"id": ["a"], "text": ["hello"], "split": ["train"]})
    >>> st.publish("demo", df, {"kind": "text"}).version
    1
    >>> st.read("demo@latest")["text"].to_list(), st.versions("demo")
    (['hello'], [1])
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import re
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers .chash)
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, create_table_with_add_actions

from curate.store.location import Location
from curate.store.refs import RefError, StoreError, parse_ref
from schemas.manifests import DatasetManifest, checked

MANIFEST_KEY = "curate.manifest"
ROW_GROUP_ROWS = 131_072
"""Rows per Parquet row group in the table: the Delta writer holds a row group's encoded pages until
it is flushed (its default, about 1M rows, held ~0.5 GB for SFT rows)."""
TARGET_FILE_BYTES = 64 << 20
"""Target size of a table file: the writer keeps the file being written in memory until it is uploaded."""


STAGE_PREFIX = "write-"
"""Folder (below ``NAME/table/``) of one publish's data files, written before its commit."""
_STAGE_LOG = "_delta_log/00000000000000000000.json"


def dataset_of_data_file(path: Path) -> tuple[Path, str] | None:
    """``(store root, dataset name)`` when local ``path`` is a data file of a store's table
    (``ROOT/NAME/table/write-*/part-*.parquet``, or ``ROOT/NAME/table/part-*.parquet`` as versions
    written before staging are), else None. Which version holds it: :meth:`Store.version_files`.

    Example:
        >>> dataset_of_data_file(Path("data/store/chat/table/write-0a1b/part-00000-x.snappy.parquet"))
        (PosixPath('data/store'), 'chat')
        >>> dataset_of_data_file(Path("runs/x/data/part-00000.parquet")) is None
        True
    """
    if path.suffix != ".parquet":
        return None
    table = path.parent.parent if path.parent.name.startswith(STAGE_PREFIX) else path.parent
    if table.name != "table":
        return None
    return table.parent.parent, table.parent.name


@dataclass(frozen=True)
class Staged:
    """Data files written under a table by :meth:`Store.stage` and not committed yet (invisible to readers).

    ``folder``: their folder below ``NAME/table/``; ``adds``: one Delta add action per file (path
    relative to the table, size, statistics), what :meth:`Store.commit_staged` commits; ``schema``:
    the records' Arrow schema.
    """

    name: str
    folder: str
    adds: list[AddAction]
    schema: pa.Schema


@dataclass(frozen=True)
class Published:
    """What :meth:`Store.publish` did: the version (new, or the unchanged latest) and its manifest."""

    name: str
    version: int
    manifest: dict[str, Any]
    created: bool


def _row_digests(df: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """Per-row SHA-256 of the JSON of ``columns``, as raw 32-byte values (``S32``; sorts like the hex)."""
    raw = df.select(pl.struct(columns).struct.json_encode().chash.sha2_256().str.decode("hex")).to_series()
    arr = raw.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, off_buf, data_buf = arr.buffers()
    width = 8 if pa.types.is_large_binary(arr.type) else 4
    start = int(np.frombuffer(off_buf, dtype=np.int64 if width == 8 else np.int32)[arr.offset])
    data = np.frombuffer(data_buf, dtype=np.uint8)[start : start + 32 * len(arr)]
    return data.view("S32").copy()  # a copy: the batch's buffers are freed with the batch


class ContentHasher:
    """:func:`content_hash` computed over batches, at 32 bytes per row instead of the whole frame.

    Each batch's rows are digested as they come (``columns``: the batch's columns less ``source``,
    fixed by the first batch); :meth:`hexdigest` sorts the fixed-width digests (raw bytes sort like
    their hex) and feeds the final hash in chunks, so the result is bit-identical to
    :func:`content_hash` over the concatenated frame.

    Example:
        >>> df = pl.DataFrame({"id": ["a", "b", "c"], "split": ["train"] * 3})
        >>> h = ContentHasher()
        >>> h.update(df.slice(0, 2)); h.update(df.slice(2))
        >>> h.hexdigest() == content_hash(df), h.rows
        (True, 3)
    """

    CHUNK = 65_536

    def __init__(self) -> None:
        self.columns: list[str] | None = None
        self._parts: list[np.ndarray] = []
        self._digest: str | None = None
        self.rows = 0

    def update(self, df: pl.DataFrame) -> None:
        """Digest the rows of one batch (same columns, in the same order, as the first batch)."""
        if self._digest is not None:
            raise RuntimeError("ContentHasher.update after hexdigest")
        if self.columns is None:
            self.columns = [c for c in df.columns if c != "source"]
        if df.height:
            self._parts.append(_row_digests(df, self.columns))
            self.rows += df.height

    def hexdigest(self) -> str:
        """The content hash of every row added (the per-row digests are released once it is known)."""
        if self._digest is not None:
            return self._digest
        if not self.rows:
            return hashlib.sha256(b"").hexdigest()
        digests = np.concatenate(self._parts) if len(self._parts) > 1 else self._parts[0]
        self._parts = []
        digests.sort()  # in place: memcmp order of the raw digests is the order of their hex
        h = hashlib.sha256()
        for lo in range(0, digests.size, self.CHUNK):
            hexed = digests[lo : lo + self.CHUNK].tobytes().hex().encode()
            lines = b"\n".join(hexed[i : i + 64] for i in range(0, len(hexed), 64))
            h.update(lines if lo == 0 else b"\n" + lines)
        self._digest = h.hexdigest()
        return self._digest


def content_hash(df: pl.DataFrame) -> str:
    """SHA-256 over the rows' content and split, in a canonical order (provenance is not content).

    Ids already hash a row's identity; scores, margins and judges are not identity but are data,
    so every column except ``source`` enters the hash, and a score-only change is a new version.
    The hash is sha256 over ``"\\n".join(sorted(sha256_hex(json(row less source))))``; see
    :class:`ContentHasher` for the same over batches.
    """
    h = ContentHasher()
    h.update(df)
    return h.hexdigest()


def content_hash_reference(df: pl.DataFrame) -> str:
    """The whole-frame definition of :func:`content_hash` (kept for tests of the batched one)."""
    columns = [c for c in df.columns if c != "source"]
    if df.height == 0:
        return hashlib.sha256(b"").hexdigest()
    rows = df.select(pl.struct(columns).struct.json_encode().chash.sha2_256().sort()).to_series()
    return hashlib.sha256("\n".join(rows.to_list()).encode()).hexdigest()


def frames_reader(frames: Iterable[pl.DataFrame], schema: pa.Schema | None = None) -> pa.RecordBatchReader:
    """polars ``frames`` as an Arrow stream (what the Delta writer consumes batch by batch).

    Every frame is cast to ``schema`` (default: the first frame's, read ahead here), so frames whose
    columns came out typed slightly differently (a column of nulls) still form one stream.
    """
    it = iter(frames)
    if schema is None:
        first = next(it, None)
        if first is None:
            raise ValueError("no frames to write (the schema comes from the first frame)")
        schema = first.head(0).to_arrow().schema
        it = itertools.chain([first], it)
    fixed = schema

    def gen() -> Iterator[pa.RecordBatch]:
        for df in it:
            yield from df.to_arrow().cast(fixed).to_batches()

    return pa.RecordBatchReader.from_batches(fixed, gen())


COMMIT_ATTEMPTS = 3
"""How often a publish that lost a race is retried on top of the winner before giving up."""

_NO_SPACE_OR_READ_ONLY = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT)
_IO_WORDS = ("no space left", "read-only file system", "permission denied", "disk quota")


class PublishRaceError(StoreError):
    """Another publish committed the version this one was writing, and a retry was not possible."""


class _RaceLost(Exception):
    """Internal: this commit lost to a concurrent one (retried by :meth:`Store.commit`)."""


@contextmanager
def _io_errors(store: Store, name: str) -> Iterator[None]:
    """Turn a full disk, a read-only or forbidden store into :class:`StoreError` (Delta's Rust writer
    reports them as generic errors whose text carries the OS message).

    The writer's runtime also prints a Rust panic for such a failure (a background upload task finds
    its runtime shut down): stderr is held while the write runs and replayed after it, with the panic
    left out when the failure became a :class:`StoreError` (whose message says it all).
    """
    held = _hold_stderr()
    clear = False
    try:
        yield
    except OSError as e:
        if e.errno in _NO_SPACE_OR_READ_ONLY:
            clear = True
            raise StoreError(_io_message(store, name, e.strerror or str(e))) from None
        raise
    except BaseException as e:  # DeltaError, and the PanicException a failed Rust write can raise
        text = str(e).lower()
        hit = next((w for w in _IO_WORDS if w in text), None)
        if hit is None:
            raise
        clear = True
        raise StoreError(_io_message(store, name, hit)) from None
    finally:
        _replay_stderr(held, drop_panics=clear)


_PANIC_START = re.compile(r"^thread '[^']*'.* panicked at ")


def _hold_stderr() -> tuple[int, Any] | None:
    """Point fd 2 at a temporary file (None where fd 2 cannot be redirected)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        return None
    tmp = tempfile.TemporaryFile()  # noqa: SIM115  (closed by _replay_stderr)
    os.dup2(tmp.fileno(), 2)
    return saved, tmp


def _replay_stderr(held: tuple[int, Any] | None, drop_panics: bool) -> None:
    """Restore fd 2 and write what was held to it (less Rust panic reports when ``drop_panics``)."""
    if held is None:
        return
    saved, tmp = held
    with suppress(ValueError):
        sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    tmp.seek(0)
    data = tmp.read()
    tmp.close()
    if drop_panics and data:
        kept, skipping = [], False
        for line in data.decode("utf-8", "replace").splitlines(keepends=True):
            if _PANIC_START.match(line):
                skipping = True
            elif skipping and not line.startswith(("note: ", "stack backtrace:", "  ", "Already shut down")):
                skipping = False
            if not skipping and not line.startswith("note: Some details are omitted"):
                kept.append(line)
        data = "".join(kept).strip("\n").encode()
    if data:
        os.write(2, data)


def _io_message(store: Store, name: str, what: str) -> str:
    return (
        f"cannot publish {name} to store {store.root}: {what}. Nothing of this version is visible and the "
        "previous versions are intact; free space or make the store writable, then run again"
    )


class Store:
    """A folder (local path or URL, see :mod:`curate.store.location`) of versioned datasets
    (see the module docstring).

    ``storage_options``: fsspec options for a URL root (secrets as ``${ENV}`` references); without
    them credentials come from the environment (``AWS_*`` for S3).
    """

    def __init__(self, root: str | Path, storage_options: dict[str, str] | None = None):
        self.location = Location(root, storage_options)
        self.root: Path | str = self.location.local if self.location.local is not None else self.location.url
        self._delta_opts = self.location.delta_options()

    def _table(self, name: str) -> str:
        return self.location.join(name, "table")

    def _has_log(self, name: str) -> bool:
        return self.location.exists(f"{name}/table/_delta_log")

    def check_usable(self) -> None:
        """Raise :class:`StoreError` when the root exists but is not a folder (checked before a run works)."""
        if self.location.exists() and self.location.is_file():
            raise StoreError(
                f"store {self.root} is a file, not a folder: point the store (publish.store or --store) at a "
                "folder (it is created when missing), or move the file away"
            )

    def names(self) -> list[str]:
        """Datasets that have at least one version."""
        self.check_usable()
        return [n for n in self.location.listdir() if not n.startswith(".") and self._has_log(n)]

    def _delta(self, name: str, version: int | None = None) -> DeltaTable:
        try:
            if version is None:
                return DeltaTable(self._table(name), storage_options=self._delta_opts)
            return DeltaTable(self._table(name), version=version - 1, storage_options=self._delta_opts)
        except TableNotFoundError:
            self.check_usable()
            known = ", ".join(self.names()) or "none yet"
            raise RefError(f"no dataset {name!r} in store {self.root} (datasets: {known})") from None
        except Exception as e:  # deltalake raises a generic error for a version that does not exist
            if version is not None and "version" in str(e).lower():
                raise RefError(f"{name} has no version {version} (versions: {self.versions(name)})") from None
            raise

    def versions(self, name: str) -> list[int]:
        """Published versions of ``name``, oldest first."""
        history = self._delta(name).history()
        return sorted(int(h["version"]) + 1 for h in history if MANIFEST_KEY in h)

    def resolve(self, ref: str) -> tuple[str, int]:
        """``name@latest`` / ``name`` / ``name@N`` -> ``(name, N)`` of an existing version."""
        name, version = parse_ref(ref)
        versions = self.versions(name)
        if not versions:
            raise RefError(f"dataset {name!r} has no published version")
        if version is None:
            return name, versions[-1]
        if version not in versions:
            raise RefError(f"{name} has no version {version} (versions: {', '.join(map(str, versions))})")
        return name, version

    def version_files(self, ref: str) -> list[Path | str]:
        """The Parquet files that hold version ``ref`` (each version is written whole, so its files
        are exactly its rows), for reading a version as a recipe's input: local paths, or URLs
        (``s3://...``) for a remote store."""
        name, version = self.resolve(ref)
        uris = self._delta(name, version).file_uris()
        if self.location.remote:
            return list(uris)
        return [Path(u.removeprefix("file://")) for u in uris]

    def manifest(self, ref: str) -> dict[str, Any]:
        """The manifest of a version (from its commit)."""
        name, version = self.resolve(ref)
        for h in self._delta(name).history():
            if int(h["version"]) + 1 == version and MANIFEST_KEY in h:
                return checked(DatasetManifest, json.loads(h[MANIFEST_KEY]))
        raise RefError(f"{name}@{version} has no manifest")

    def read(self, ref: str, split: str | None = None, columns: list[str] | None = None) -> pl.DataFrame:
        """The records of a version (optionally one split) as a polars frame."""
        name, version = self.resolve(ref)
        wanted = None if columns is None else list(dict.fromkeys([*columns, *(["split"] if split else [])]))
        table = self._delta(name, version).to_pyarrow_table(columns=wanted)
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        if split is not None:
            df = df.filter(pl.col("split") == split)
            if columns is not None and "split" not in columns:
                df = df.drop("split")
        return df

    def latest(self, name: str) -> int | None:
        """The latest version of ``name``, or None when it has none yet (the parent of the next publish)."""
        try:
            return self.resolve(name)[1]
        except RefError:
            return None

    def unchanged(self, name: str, parent: int | None, digest: str) -> Published | None:
        """``parent`` as a :class:`Published` (``created=False``) when its content hash is ``digest``."""
        if parent is None:
            return None
        latest = self.manifest(f"{name}@{parent}")
        return Published(name, parent, latest, created=False) if latest.get("content_hash") == digest else None

    def publish(self, name: str, df: pl.DataFrame, manifest: dict[str, Any], skip_unchanged: bool = True) -> Published:
        """Commit ``df`` (records + ``split``) as the next version of ``name`` with ``manifest``.

        The content hash, version, parent and time are filled in here. With ``skip_unchanged`` a
        frame whose content hash equals the latest version's publishes nothing. For data larger
        than memory, see :meth:`publish_batches`; both end in :meth:`commit`.
        """
        self.repair(name)
        digest = content_hash(df)
        parent = self.latest(name)
        same = self.unchanged(name, parent, digest) if skip_unchanged else None
        if same is not None:
            return same
        table = df.to_arrow()
        reader = lambda: pa.RecordBatchReader.from_batches(table.schema, table.to_batches())  # noqa: E731
        counts = dict(df["split"].value_counts().iter_rows()) if df.height else {}
        return self.commit(name, reader, manifest, digest, parent, df.height, counts)

    def may_be_unchanged(self, name: str, parent: int | None, rows: int | None) -> bool:
        """Whether records of ``rows`` rows (None: unknown) could equal version ``parent`` of ``name``.

        False only when that is certain without reading them: no parent, or a parent of another row
        count. A publish then writes its files while it hashes them (one pass) instead of hashing first.
        """
        if parent is None:
            return False
        return rows is None or self.manifest(f"{name}@{parent}").get("rows") == rows

    def publish_batches(
        self,
        name: str,
        batches: Callable[[], Iterator[pl.DataFrame]],
        manifest: dict[str, Any],
        skip_unchanged: bool = True,
        rows: int | None = None,
    ) -> Published:
        """:meth:`publish` for data larger than memory: ``batches()`` yields the records (+ ``split``)
        in frames; memory is one batch plus 32 bytes per row.

        The frames are read once: their data files are staged (:meth:`stage`) while the content
        hash is computed, then committed with it. When the content may equal the latest version's
        (``skip_unchanged``, and the latest version has ``rows`` rows, or ``rows`` is not given), the
        hash comes first and ``batches()`` is called a second time only if the content changed.

        Example:
            >>> import tempfile
            >>> df = pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "split": ["train", "eval"]})
            >>> st = Store(tempfile.mkdtemp())
            >>> pub = st.publish_batches("demo", lambda: iter([df.head(1), df.tail(1)]), {"kind": "text"})
            >>> pub.manifest["content_hash"] == content_hash(df), pub.manifest["rows_per_split"]
            (True, {'eval': 1, 'train': 1})
        """
        self.repair(name)
        parent = self.latest(name)
        hasher = ContentHasher()
        counts: dict[str, int] = {}

        def scanned(frames: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
            for df in frames:
                hasher.update(df)
                for split, n in df["split"].value_counts().iter_rows():
                    counts[split] = counts.get(split, 0) + n
                yield df

        if skip_unchanged and self.may_be_unchanged(name, parent, rows):
            for _ in scanned(batches()):
                pass
            same = self.unchanged(name, parent, hasher.hexdigest())
            if same is not None:
                return same
            if hasher.columns is None:
                raise ValueError(f"no records to publish as {name}")
            staged = self.stage(name, frames_reader(batches()))
        else:
            frames = scanned(batches())
            first = next(frames, None)
            if first is None:
                raise ValueError(f"no records to publish as {name}")
            staged = self.stage(name, frames_reader(itertools.chain([first], frames)))
        return self.commit_staged(staged, manifest, hasher.hexdigest(), parent, hasher.rows, counts)

    def stage(self, name: str, reader: pa.RecordBatchReader) -> Staged:
        """Write ``reader``'s batches as the data files of a coming version of ``name``, uncommitted.

        The files go to a fresh folder ``NAME/table/write-<uuid>/``, written by deltalake's writer
        as a scratch table of their own (so they are exactly what a direct write would produce:
        row groups, compression, statistics); :meth:`commit_staged` then commits them to the
        dataset's table, which lets the commit carry what was learnt while writing (the content
        hash). Until then no reader sees them; a crash leaves an unreferenced folder, like a
        killed write. Disk/permission failures raise :class:`StoreError`.

        Example:
            >>> # staged = st.stage("demo", reader); st.commit_staged(staged, manifest, digest, parent, rows, counts)
        """
        self.check_usable()
        folder = f"{STAGE_PREFIX}{uuid.uuid4().hex}"
        rel = f"{name}/table/{folder}"
        with _io_errors(self, name):
            try:
                write_deltalake(
                    self.location.join(rel),
                    reader,
                    mode="error",
                    # compression given explicitly: WriterProperties without it writes UNCOMPRESSED files
                    # (the writer's own default, used before row groups were bounded, is SNAPPY)
                    writer_properties=WriterProperties(max_row_group_size=ROW_GROUP_ROWS, compression="SNAPPY"),
                    target_file_size=TARGET_FILE_BYTES,
                    storage_options=self._delta_opts,
                )
            except BaseException:
                with suppress(Exception):
                    self.location.remove(rel)
                raise
            log = self.location.read_text(f"{rel}/{_STAGE_LOG}")
        adds = []
        for line in log.splitlines():
            add = json.loads(line).get("add") if line.strip() else None
            if add is not None:
                adds.append(
                    AddAction(
                        path=f"{folder}/{add['path']}",
                        size=int(add["size"]),
                        partition_values=add.get("partitionValues") or {},
                        modification_time=int(add["modificationTime"]),
                        data_change=True,
                        stats=add.get("stats") or "",
                    )
                )
        return Staged(name, folder, adds, reader.schema)

    def discard(self, staged: Staged) -> None:
        """Delete the files of a staged write that will not be committed (e.g. its content is unchanged)."""
        with suppress(Exception):
            self.location.remove(f"{staged.name}/table/{staged.folder}")

    def commit(
        self,
        name: str,
        reader: pa.RecordBatchReader | Callable[[], pa.RecordBatchReader],
        manifest: dict[str, Any],
        digest: str,
        parent: int | None,
        rows: int,
        rows_per_split: dict[str, int],
    ) -> Published:
        """Stream ``reader``'s batches into one Delta commit: version ``parent + 1`` of ``name``
        (:meth:`stage`, then :meth:`commit_staged`).

        ``digest``, ``rows`` and ``rows_per_split`` describe the batches (the manifest travels in
        the commit). Only the batches in flight are in memory. ``reader`` may be a callable that
        makes the reader. Returns the new version with its full manifest.

        Example:
            >>> # st.commit("demo", reader, {"kind": "text"}, digest, st.latest("demo"), n, {"train": n})
        """
        staged = self.stage(name, reader() if callable(reader) else reader)
        return self.commit_staged(staged, manifest, digest, parent, rows, rows_per_split)

    def commit_staged(
        self,
        staged: Staged,
        manifest: dict[str, Any],
        digest: str,
        parent: int | None,
        rows: int,
        rows_per_split: dict[str, int],
    ) -> Published:
        """Commit staged files as version ``parent + 1`` of their dataset, with ``manifest`` completed
        by ``digest`` (the content hash), ``rows``, ``rows_per_split``, version, parent and time.

        Against an existing table the commit is made on top of the ``parent`` version read before:
        a lost race (another publish committed ``parent + 1`` first) is retried on top of the winner,
        renumbered, up to :data:`COMMIT_ATTEMPTS` times, with the same files (nothing is rewritten);
        if the winner published the same content, that version is returned (``created=False``).
        Otherwise :class:`PublishRaceError` says what happened. Disk/permission failures raise
        :class:`StoreError`; the previous version stays intact.
        """
        name = staged.name
        self.check_usable()
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                return self._commit_once(staged, manifest, digest, parent, rows, rows_per_split)
            except (DeltaError, _RaceLost) as e:
                now = self.latest(name)
                if now == parent and not isinstance(e, _RaceLost):
                    raise
                if attempt == COMMIT_ATTEMPTS:
                    raise PublishRaceError(
                        f"another publish committed {name}@{now} while this one was writing on top of "
                        f"{name}@{parent}; nothing of this publish is visible (the store is consistent): "
                        "run it again to publish on top of the new version"
                    ) from None
                same = self.unchanged(name, now, digest)
                if same is not None:
                    self.discard(staged)
                    return same
                parent = now
        raise AssertionError("unreachable")

    def _commit_once(
        self,
        staged: Staged,
        manifest: dict[str, Any],
        digest: str,
        parent: int | None,
        rows: int,
        rows_per_split: dict[str, int],
    ) -> Published:
        name = staged.name
        version = (parent or 0) + 1
        full = {
            **manifest,
            "dataset": name,
            "version": version,
            "parent_version": parent,
            "content_hash": digest,
            "rows": rows,
            "rows_per_split": dict(sorted(rows_per_split.items())),
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        text = json.dumps(checked(DatasetManifest, full), sort_keys=True, default=str)
        props = CommitProperties(custom_metadata={MANIFEST_KEY: text})
        schema = DeltaSchema.from_arrow(staged.schema)
        with _io_errors(self, name):
            # Against an existing table, commit on top of the parent version we read: if another
            # publish committed meanwhile, Delta's conflict check refuses this commit instead of
            # stacking a version whose manifest names the wrong number. An overwrite removes the
            # parent's files from the new version (they stay for time travel) and replaces the
            # schema. A first version is a create ("error" if the table exists): two first
            # publishes cannot both become version 1.
            if parent is None:
                try:
                    create_table_with_add_actions(
                        self._table(name),
                        schema,
                        staged.adds,
                        mode="error",
                        storage_options=self._delta_opts,
                        commit_properties=props,
                    )
                except DeltaError as e:
                    if "exists" in str(e).lower():
                        raise _RaceLost(str(e)) from None
                    raise
            else:
                self._delta(name, parent).create_write_transaction(
                    staged.adds, "overwrite", schema, commit_properties=props
                )
            committed = self.versions(name)[-1]
            if committed != version:  # not expected with the checks above; never report a wrong number
                raise _RaceLost(f"expected to commit {name}@{version}, the store now ends at {committed}")
            self.write_manifest_copy(name, version, full)
        with suppress(Exception):  # the scratch table's log: its files now belong to the dataset's table
            self.location.remove(f"{name}/table/{staged.folder}/_delta_log")
        return Published(name, version, full, created=True)

    def batches(self, ref: str, columns: list[str] | None = None, batch_rows: int = 16_384) -> Iterator[pl.DataFrame]:
        """The records of a version as polars frames of at most ``batch_rows`` rows (bounded memory)."""
        name, version = self.resolve(ref)
        dataset = self._delta(name, version).to_pyarrow_dataset()
        for batch in dataset.to_batches(columns=columns, batch_size=batch_rows):
            if batch.num_rows:
                df = pl.from_arrow(batch)
                assert isinstance(df, pl.DataFrame)
                yield df

    def repair(self, name: str) -> list[int]:
        """Rewrite the manifest copies missing for committed versions; returns the versions that needed it.

        Cards are derived from the store, one layer up: :func:`curate.store.card.repair_cards`.

        Unreferenced data files of a killed publish are left alone: they are invisible to readers,
        and Delta's ``vacuum`` would also delete older versions' files.
        """
        if not self._has_log(name):
            return []
        fixed = []
        have = set(self.location.listdir(f"{name}/manifests"))
        for version in self.versions(name):
            if f"v{version}.json" not in have:
                self.write_manifest_copy(name, version, self.manifest(f"{name}@{version}"))
                fixed.append(version)
        return fixed

    def write_manifest_copy(self, name: str, version: int, manifest: dict[str, Any]) -> str:
        """Write ``manifests/vN.json`` (a derived, human-readable copy; the commit is authoritative)."""
        rel = f"{name}/manifests/v{version}.json"
        self.location.write_text(rel, json.dumps(manifest, indent=2, sort_keys=True, default=str))
        return self.location.join(rel)
