"""Immutable model versions: every training run of a name becomes ``NAME@N`` (N = 1, 2, ...).

A version is ``ROOT/NAME/registry/versions/N.json`` naming its run folder. Numbers are claimed with
``os.link`` of a complete temp file onto ``N.json`` (fails if it exists, like ``O_EXCL``), so two
processes registering at once each get their own N and no file is ever seen half-written. Registering
the same run twice returns its existing version (checked under the registry lock).

Example:
    >>> import tempfile
    >>> from train.lineage import write_lineage
    >>> root = Path(tempfile.mkdtemp())
    >>> m = {"name": "demo", "run_id": "r1", "method": "sft", "base_model": {"spec": "m"},
    ...      "dataset": {"ref": "d@1", "content_hash": "ab"}, "output": {"kind": "adapter", "path": "adapter"}}
    >>> _ = write_lineage(root / "demo" / "r1", m)
    >>> register_run(root / "demo" / "r1").version, register_run(root / "demo" / "r1").version
    (1, 1)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from train.lineage import MANIFEST, read_manifest
from train.registry.layout import REGISTRY, RegistryError, locked, now, registry_dir, who


class ModelVersion(BaseModel):
    """One registered version: ``name@version`` is the run ``run_id`` (a folder beside the registry)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: int
    run_id: str
    registered: str
    who: str
    method: str | None = None
    dataset: str | None = None
    created: str | None = None

    @property
    def ref(self) -> str:
        """``NAME@N``."""
        return f"{self.name}@{self.version}"

    def run_dir(self, root: str | Path) -> Path:
        """The run folder of this version."""
        return Path(root) / self.name / self.run_id


def _versions_dir(root: str | Path, name: str) -> Path:
    path = registry_dir(root, name) / "versions"
    path.mkdir(exist_ok=True)
    return path


def list_versions(root: str | Path, name: str) -> list[ModelVersion]:
    """Every version of ``name``, oldest (1) first; none registered: an empty list."""
    folder = Path(root) / name / REGISTRY / "versions"
    if not folder.is_dir():
        return []
    found = [
        ModelVersion.model_validate_json(p.read_text(encoding="utf-8"))
        for p in folder.glob("*.json")
        if p.stem.isdigit()
    ]
    return sorted(found, key=lambda v: v.version)


def get_version(root: str | Path, name: str, version: int) -> ModelVersion:
    """``NAME@version``, or a :class:`RegistryError` listing the versions that exist."""
    path = Path(root) / name / REGISTRY / "versions" / f"{version}.json"
    if path.is_file():
        return ModelVersion.model_validate_json(path.read_text(encoding="utf-8"))
    have = [v.version for v in list_versions(root, name)]
    known = ", ".join(f"{name}@{n}" for n in have) or "none (curate models register RUN_DIR)"
    raise RegistryError(f"no version {name}@{version} under {root}; versions: {known}")


def version_of(run_dir: str | Path, root: str | Path | None = None) -> ModelVersion | None:
    """The version registered for ``run_dir`` (``root`` default: two folders up), or None."""
    run = Path(run_dir).resolve()
    root = Path(root) if root is not None else run.parent.parent
    for v in list_versions(root, run.parent.name):
        if v.run_id == run.name:
            return v
    return None


def register_run(run_dir: str | Path, root: str | Path | None = None) -> ModelVersion:
    """Register the finished run ``run_dir`` (a folder with ``manifest.json``) as the next version of its name.

    ``root`` (default: two folders up, ``ROOT/NAME/RUN_ID``) must hold the run as ``NAME/RUN_ID``.
    Idempotent: an already registered run returns its version. Raises :class:`RegistryError` when the
    folder is not a finished run.
    """
    run = Path(run_dir)
    if run.name == "latest" or run.is_symlink():
        run = run.resolve()
    if not (run / MANIFEST).is_file():
        raise RegistryError(f"{run_dir} is not a trained run (no {MANIFEST}); give a folder that curate train wrote")
    m = read_manifest(run / MANIFEST)
    root = Path(root) if root is not None else run.resolve().parent.parent
    name = m["name"]
    if (Path(root) / name / run.name).resolve() != run.resolve():
        raise RegistryError(f"{run_dir} is not under {root}/{name}/ (runs register where curate train wrote them)")
    reg = registry_dir(root, name)
    folder = _versions_dir(root, name)
    with locked(reg):
        existing = version_of(run, root)
        if existing is not None:
            return existing
        n = max((v.version for v in list_versions(root, name)), default=0) + 1
        tmp = folder / f".claim.{os.getpid()}.tmp"
        while True:
            record = ModelVersion(
                name=name,
                version=n,
                run_id=run.name,
                registered=now(),
                who=who(),
                method=m.get("method"),
                dataset=(m.get("dataset") or {}).get("ref"),
                created=m.get("created"),
            )
            tmp.write_text(json.dumps(record.model_dump(), indent=2), encoding="utf-8")
            try:
                os.link(tmp, folder / f"{n}.json")  # fails when N is taken: the claim is atomic
                break
            except FileExistsError:
                n += 1
            finally:
                tmp.unlink(missing_ok=True)
    return record
