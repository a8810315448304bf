"""The starting model of a run: ``model.base`` as a model source, or a model trained by ``curate train``.

``model.base`` may name an earlier run (the classic pipeline: SFT -> reward model -> RL from the SFT
model): a run folder (with ``manifest.json``), ``NAME`` (its latest run) or ``NAME/RUN_ID`` under
``output.dir``, exactly as ``curate models show`` resolves it (:func:`train.lineage.find_model`). The
run's model is then made a plain transformers folder: its ``merged/`` when it has one, its full weights
(full or freeze tuning), or its adapter merged once into its base under the curate cache
(``$CURATE_CACHE_DIR/merged/<hash>``, keyed on the adapter's and the base's file hashes). Anything else
goes to :func:`curate.models.source.resolve_source` unchanged.

The returned source's ``identity()`` carries the run's lineage (name, run id, method, dataset version
and content hash, base), so the new run's manifest names the model it started from.

Example:
    >>> import tempfile
    >>> policy_source(tempfile.mkdtemp(), None, "runs/train")   # neither a run nor a model folder
    Traceback (most recent call last):
    ...
    curate.models.source.ModelError: model.base: ... has no config.json; ...
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.models.source import ModelError, ModelSource, cache_dir, folder_digest, resolve_source
from train.lineage import MANIFEST, find_model


@dataclass(frozen=True)
class RunModelSource(ModelSource):
    """A model trained by ``curate train``, materialized as a loadable folder; ``run`` is its lineage."""

    run: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "run": self.run}


def run_lineage(m: dict[str, Any]) -> dict[str, Any]:
    """What a later model should record about run manifest ``m``: which run, its method, data and base."""
    ds = m.get("dataset", {})
    return {
        "name": m["name"],
        "run_id": m["run_id"],
        "dir": m.get("dir"),
        "method": m["method"],
        "dataset": {k: ds.get(k) for k in ("ref", "split", "content_hash", "kind", "rows", "store")},
        "base_model": {k: v for k, v in m.get("base_model", {}).items() if k != "run"},
        "base_run": m.get("base_model", {}).get("run"),  # the run it started from, if any (the chain goes on)
        "output": m.get("output"),
    }


def policy_source(base: str, gguf_file: str | None, runs_root: str | Path) -> ModelSource:
    """``model.base`` as a loadable source: an earlier causal-LM run (see the module docstring), else
    :func:`resolve_source`. Raises :class:`ModelError` with the fix."""
    if gguf_file is None and not base.startswith("package:") and _names_run(base, runs_root):
        return _from_run(base, runs_root)
    return resolve_source(base, gguf_file)


def _names_run(base: str, runs_root: str | Path) -> bool:
    p = Path(base)
    if (p / MANIFEST).is_file():
        return True
    if p.is_absolute() or base.startswith((".", "~")) or (p / "config.json").is_file():
        return False
    return any((Path(runs_root) / base / sub / MANIFEST).is_file() for sub in ("", "latest"))


def _from_run(ref: str, runs_root: str | Path) -> RunModelSource:
    m = find_model(ref, runs_root)
    run_dir = Path(m["dir"])
    if m.get("task") == "seq_cls" or m["method"] == "reward":
        raise ModelError(
            f"model.base: {run_dir} is a reward model (method {m['method']}); the policy must be a causal LM, "
            "e.g. an SFT run; the reward model goes in the method section's reward_model"
        )
    out = m["output"]
    merged = _near(run_dir, out.get("merged"))
    if merged is not None:
        folder = merged
    elif out["kind"] == "adapter":
        folder = _merged_into_base(m, run_dir)
    else:
        folder = _near(run_dir, out["path"])
        if folder is None:
            raise ModelError(f"model.base: the weights of run {run_dir} ({out['path']}) are missing")
    return RunModelSource(ref, "local", folder, None, run_lineage(m))


def _near(run_dir: Path, recorded: str | None) -> Path | None:
    """An output folder of a run, next to its manifest first (a moved run still loads), else as recorded."""
    if not recorded:
        return None
    for p in (run_dir / Path(recorded).name, Path(recorded)):
        if p.is_dir():
            return p
    return None


def _merged_into_base(m: dict[str, Any], run_dir: Path) -> Path:
    """The run's adapter merged into its base, once, under the curate cache (atomic: temp folder, rename)."""
    from train.adapters import merge_adapter

    adapter = _near(run_dir, m["output"]["path"])
    if adapter is None:
        raise ModelError(f"model.base: the adapter of run {run_dir} ({m['output']['path']}) is missing")
    base = m["base_model"]
    base_folder = base.get("folder")
    if not base_folder or not Path(base_folder).is_dir():
        base_folder = str(resolve_source(base["spec"]).folder)
    weights = base.get("gguf_sha256") or base.get("weights_sha256") or base.get("spec", "")
    key = hashlib.sha256(f"{folder_digest(adapter)}:{weights}".encode()).hexdigest()[:16]
    target = cache_dir() / "merged" / key
    if not (target / "config.json").is_file():
        tmp = target.with_name(f"{key}.tmp{os.getpid()}")
        merge_adapter(base_folder, adapter, tmp, m.get("task") or "causal")
        try:
            tmp.replace(target)
        except OSError:  # another process merged it meanwhile: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    return target
