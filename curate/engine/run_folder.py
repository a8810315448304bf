"""Run outputs: dataset Parquet files, the quarantine and rejected-record files, the summary.

A run writes everything into a hidden staging folder ``DIR/NAME/.RUN_ID.partial`` and renames it
to ``DIR/NAME/RUN_ID`` only when complete, then points ``DIR/NAME/latest`` at it; a crash leaves
no half-written run where readers look.

Layout of a finished run::

    runs/quickstart/20261122T101500Z-3f2a/
      data/part-00000.parquet     records in the output kind's Arrow schema
      quarantine.jsonl            one line per quarantined input row: source, uri, row, reason, raw
      rejected_records.jsonl      records rejected from rows that still produced other records
      multiline_rows.jsonl        kept rows read from several physical lines (only when there are some)
      summary.json                the accounting summary
      recipe.yaml                 the recipe as given (secrets stay ${ENV} references)

With ``output.dir`` a URL (``s3://bucket/runs``), the run is built in a local mirror of that URL
(:func:`local_mirror`; work files stay there too unless ``output.work_dir`` is set) and each
committed run folder is uploaded to ``URL/NAME/RUN_ID/`` with ``summary.json`` last;
``URL/NAME/latest`` is then a small object holding the run id (object stores have no symlinks).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


def local_mirror(url: str) -> Path:
    """The local folder a run for output URL ``url`` is built in (and its work files kept):
    ``$CURATE_LOCAL_DIR/remote/<hash>`` (default ``~/.cache/curate``).

    Example:
        >>> local_mirror("s3://b/runs").parent.name
        'remote'
    """
    base = Path(os.environ.get("CURATE_LOCAL_DIR") or Path.home() / ".cache" / "curate")
    return base / "remote" / hashlib.sha256(url.encode()).hexdigest()[:16]


def remote_run_dir(remote: str | None, name: str, run_id: str) -> str | None:
    """``URL/NAME/RUN_ID`` for a URL output folder (None for a local one)."""
    return None if remote is None else f"{remote.rstrip('/')}/{name}/{run_id}"


def upload_run(final: Path, remote: str, name: str, run_id: str, only: tuple[str, ...] = ()) -> str:
    """Copy the committed run folder ``final`` to ``URL/NAME/RUN_ID`` (``summary.json`` last), then
    point ``URL/NAME/latest`` at it; ``only``: re-upload just these files. Returns the run's URL."""
    from curate.store.location import Location

    loc = Location(remote)
    rel = f"{name}/{run_id}"
    if only:
        for f in only:
            loc.fs.put_file(str(final / f), loc.join(rel, f))
    else:
        loc.put_dir(final, rel, last=("summary.json",))
        loc.write_text(f"{name}/latest", run_id + "\n")
    return loc.join(rel)


def new_run_id() -> str:
    """A sortable, unique run id: UTC timestamp plus random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class RunWriter:
    """Streams records and audit rows into a staging folder; :meth:`commit` publishes it atomically."""

    def __init__(
        self,
        root: Path,
        name: str,
        schema: pa.Schema,
        rows_per_file: int,
        run_id: str | None = None,
        records_subdir: str = "data",
    ):
        self.run_id = run_id or new_run_id()
        self.parent = root / name
        self.final = self.parent / self.run_id
        self.staging = self.parent / f".{self.run_id}.partial"
        self.staging.mkdir(parents=True, exist_ok=False)
        self.records_subdir = records_subdir
        (self.staging / records_subdir).mkdir()
        self.schema = schema
        self.rows_per_file = rows_per_file
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0
        self.files: list[Path] = []
        self._quarantine = (self.staging / "quarantine.jsonl").open("wb")
        self._rejected = (self.staging / "rejected_records.jsonl").open("wb")

    def write_records(self, df: pl.DataFrame) -> None:
        """Append records (already in the output schema's column order and types)."""
        table = df.to_arrow().cast(self.schema)
        offset = 0
        while offset < table.num_rows:
            if self._writer is None or self._rows_in_file >= self.rows_per_file:
                self._roll()
            assert self._writer is not None
            take = min(self.rows_per_file - self._rows_in_file, table.num_rows - offset)
            self._writer.write_table(table.slice(offset, take))
            self._rows_in_file += take
            offset += take

    def _roll(self) -> None:
        if self._writer is not None:
            self._writer.close()
        path = self.staging / self.records_subdir / f"part-{len(self.files):05d}.parquet"
        # Dictionary encoding only wastes time on high-cardinality text; zstd compresses without it.
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd", use_dictionary=False)
        self.files.append(path)
        self._rows_in_file = 0

    def switch_records(self, subdir: str) -> list[Path]:
        """Close the current record files and send further records to ``subdir``; returns the closed files.

        Used when stages run: ingest writes ``ingested/``, the stages' survivors go to ``data/``.
        """
        if self._writer is None:
            self._roll()
        assert self._writer is not None
        self._writer.close()
        closed, self.files, self._writer = self.files, [], None
        self.records_subdir = subdir
        (self.staging / subdir).mkdir(exist_ok=True)
        return closed

    def write_quarantine(self, entries: list[dict[str, Any]]) -> None:
        self._quarantine.write(b"".join(orjson.dumps(e) + b"\n" for e in entries))

    def write_rejected(self, entries: list[dict[str, Any]]) -> None:
        self._rejected.write(b"".join(orjson.dumps(e) + b"\n" for e in entries))

    def write_text(self, name: str, text: str) -> None:
        (self.staging / name).write_text(text, encoding="utf-8")

    def write_jsonl(self, name: str, rows: list[dict[str, Any]]) -> None:
        (self.staging / name).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))

    def finished_files(self) -> list[Path]:
        """The record files written so far, closed so they can be read."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._rows_in_file = self.rows_per_file  # a later write opens a new file
        return list(self.files)

    def write_json(self, name: str, data: Any) -> None:
        (self.staging / name).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))

    def close_audit(self) -> None:
        """Close the quarantine and rejected-record files (a caller then fills them itself)."""
        self._quarantine.close()
        self._rejected.close()

    def _close_files(self) -> None:
        if self._writer is None and not self.files:  # an empty run still gets a readable, empty dataset file
            self._roll()
        if self._writer is not None:
            self._writer.close()
        self._quarantine.close()
        self._rejected.close()

    def commit(self) -> Path:
        """Close files, rename staging -> final, and repoint ``latest``; return the final folder."""
        self._close_files()
        os.replace(self.staging, self.final)
        link = self.parent / "latest"
        tmp = self.parent / f".latest.{self.run_id}"
        tmp.symlink_to(self.run_id, target_is_directory=True)
        os.replace(tmp, link)
        return self.final

    def abort(self) -> None:
        """Drop the staging folder (used when the run fails)."""
        for f in (self._quarantine, self._rejected):
            f.close()
        if self._writer is not None:
            self._writer.close()
        shutil.rmtree(self.staging, ignore_errors=True)
