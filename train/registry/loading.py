"""A registered model the way trainers and serving code want it: loaded, or exported to a folder.

:func:`load_model` resolves any reference (``NAME@champion``, ``NAME@3``, a run folder...) and loads
``(model, tokenizer)`` in eval mode: the base with the LoRA adapter on it, or merged weights
(``merged=True``: the run's ``merged/`` when there is one, else merged in memory). :func:`export`
writes a self-contained folder: the adapter (with its tokenizer), or merged weights, plus the run's
manifest, model card and a ``registry.json`` naming the version.

Example:
    >>> # model, tok = load_model("chat-sft@champion", root="runs/train")
    >>> # export("chat-sft@champion", "deploy/chat", merged=True)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from curate.models.trained import load_trained, locate_trained
from train.registry.aliases import list_aliases
from train.registry.layout import RegistryError, now
from train.registry.resolve import resolve
from train.registry.versions import version_of


def _task(src: Any) -> str:
    task = (src.manifest or {}).get("task") or "causal"
    return "seq_cls" if task == "seq_cls" or src.adapter_task == "SEQ_CLS" else "causal"


def load_model(
    ref: str, root: str | Path = "runs/train", merged: bool = False, device: str = "auto", dtype: Any = None
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of the run ``ref`` names, in eval mode (see the module docstring).

    Raises :class:`RegistryError` for an unknown reference and
    :class:`curate.models.source.ModelError` when the weights cannot be loaded.
    """
    run = resolve(ref, root)
    src = locate_trained(run, root, prefer_merged=merged)
    model, tok = load_trained(src, task=_task(src), device=device, dtype=dtype)
    if merged and src.adapter is not None:
        model = model.merge_and_unload()
    return model, tok


def export(ref: str, to: str | Path, merged: bool = False, root: str | Path = "runs/train") -> Path:
    """Write the model ``ref`` names into the new folder ``to`` (built beside it, then renamed into place).

    ``to`` may exist only when empty. Raises :class:`RegistryError` when it holds anything, or for an
    unknown reference.
    """
    to = Path(to)
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise RegistryError(f"{to} exists and is not empty: give a new folder (nothing was overwritten)")
    run = resolve(ref, root)
    src = locate_trained(run, root, prefer_merged=merged)
    manifest = src.manifest or {}
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.parent / f".{to.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        if src.adapter is not None and not merged:
            shutil.copytree(src.adapter, tmp / "adapter")
            kind = "adapter"
        elif src.adapter is not None:  # merged asked, no merged/ in the run: merge now
            from train.adapters import merge_adapter

            merge_adapter(str(src.weights), src.adapter, tmp / "model", _task(src))
            kind = "merged"
        else:
            shutil.copytree(Path(src.weights), tmp / "model")
            kind = "merged" if manifest.get("output", {}).get("merged") and merged else "full"
        for extra in ("manifest.json", "README.md", "recipe.yaml"):
            if (run / extra).is_file():
                shutil.copy2(run / extra, tmp / extra)
        v = version_of(run, run.parent.parent)
        aliases = [a for a, n in list_aliases(run.parent.parent, run.parent.name).items() if v and n == v.version]
        info = {
            "ref": ref,
            "version": v.ref if v else None,
            "aliases": aliases,
            "run": str(run),
            "kind": kind,
            "base_model": manifest.get("base_model", {}).get("spec"),
            "exported": now(),
        }
        (tmp / "registry.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        if to.exists():
            to.rmdir()  # empty (checked above)
        os.replace(tmp, to)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return to
