"""The dataset store: one Delta Lake table per dataset, one commit per published version.

Layout under the store root::

    NAME/table/          Delta table: record columns + ``split``; commit N is version N + 1
    NAME/manifests/vN.json   the manifest of version N (a readable copy of what the commit carries)

Publishing is one Delta commit: data files are written first and the commit file appears
atomically at the end, so a crash at any point leaves the previous version intact and a
half-written version invisible. The manifest travels inside the commit (``custom_metadata``),
so data and manifest can never disagree; :meth:`Store.repair` rewrites JSON copies (and cards)
that a crash between the commit and the copy left missing, and every publish runs it first.

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

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import polars_hash  # noqa: F401  (registers .chash)
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from curate.store.refs import RefError, parse_ref
from schemas.manifests import DatasetManifest, checked

MANIFEST_KEY = "curate.manifest"


@dataclass(frozen=True)
class Published:
    """What :meth:`Store.publish` did: the version (new, or the unchanged latest) and its manifest."""

    name: str
    version: int
    manifest: dict[str, Any]
    created: bool


def content_hash(df: pl.DataFrame) -> str:
    """SHA-256 over the rows' content and split, in a canonical order (provenance is not content).

    Ids already hash a row's identity; scores, margins and judges are not identity but are data,
    so every column except ``source`` enters the hash, and a score-only change is a new version.
    """
    columns = [c for c in df.columns if c != "source"]
    if df.height == 0:
        return hashlib.sha256(b"").hexdigest()
    rows = df.select(pl.struct(columns).struct.json_encode().chash.sha2_256().sort()).to_series()
    return hashlib.sha256("\n".join(rows.to_list()).encode()).hexdigest()


class Store:
    """A folder of versioned datasets (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _table(self, name: str) -> Path:
        return self.root / name / "table"

    def names(self) -> list[str]:
        """Datasets that have at least one version."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "table" / "_delta_log").exists())

    def _delta(self, name: str, version: int | None = None) -> DeltaTable:
        try:
            if version is None:
                return DeltaTable(str(self._table(name)))
            return DeltaTable(str(self._table(name)), version=version - 1)
        except TableNotFoundError:
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

    def publish(self, name: str, df: pl.DataFrame, manifest: dict[str, Any], skip_unchanged: bool = True) -> Published:
        """Commit ``df`` (records + ``split``) as the next version of ``name`` with ``manifest``.

        The content hash, version, parent and time are filled in here. With ``skip_unchanged`` a
        frame whose content hash equals the latest version's publishes nothing.
        """
        self.repair(name)
        digest = content_hash(df)
        parent = None
        try:
            parent = self.resolve(name)[1]
        except RefError:
            parent = None
        if parent is not None and skip_unchanged:
            latest = self.manifest(f"{name}@{parent}")
            if latest.get("content_hash") == digest:
                return Published(name, parent, latest, created=False)
        version = (parent or 0) + 1
        full = {
            **manifest,
            "dataset": name,
            "version": version,
            "parent_version": parent,
            "content_hash": digest,
            "rows": df.height,
            "rows_per_split": dict(sorted(df["split"].value_counts().iter_rows())),
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        text = json.dumps(checked(DatasetManifest, full), sort_keys=True, default=str)
        self._table(name).parent.mkdir(parents=True, exist_ok=True)
        # Against an existing table, commit on top of the parent version we read: if another
        # publish committed meanwhile, Delta's conflict check refuses this commit instead of
        # stacking a version whose manifest names the wrong number.
        target = self._delta(name, parent) if parent is not None else str(self._table(name))
        write_deltalake(
            target,
            df.to_arrow(),
            mode="overwrite",
            schema_mode="overwrite",
            commit_properties=CommitProperties(custom_metadata={MANIFEST_KEY: text}),
        )
        committed = self.versions(name)[-1]
        if committed != version:  # another writer won the race for this version number
            raise RuntimeError(f"expected to commit {name}@{version}, the store now ends at {committed}")
        self.write_manifest_copy(name, version, full)
        return Published(name, version, full, created=True)

    def repair(self, name: str) -> list[int]:
        """Rewrite the manifest copies missing for committed versions; returns the versions that needed it.

        Cards are derived from the store, one layer up: :func:`curate.store.card.repair_cards`.

        Unreferenced data files of a killed publish are left alone: they are invisible to readers,
        and Delta's ``vacuum`` would also delete older versions' files.
        """
        if not (self._table(name) / "_delta_log").exists():
            return []
        fixed = []
        for version in self.versions(name):
            if not (self.root / name / "manifests" / f"v{version}.json").exists():
                self.write_manifest_copy(name, version, self.manifest(f"{name}@{version}"))
                fixed.append(version)
        return fixed

    def write_manifest_copy(self, name: str, version: int, manifest: dict[str, Any]) -> Path:
        """Write ``manifests/vN.json`` (a derived, human-readable copy; the commit is authoritative)."""
        folder = self.root / name / "manifests"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"v{version}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str), encoding="utf-8")
        tmp.replace(path)
        return path
