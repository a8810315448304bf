"""Find and load a model that ``curate train`` produced (or any local model folder / model spec).

Input: a reference: a run folder (with ``manifest.json``), ``NAME`` (its ``latest`` run) or
``NAME/RUN_ID`` under ``runs_root``, a peft adapter folder, a model folder, a ``.gguf`` file or a
model spec (see :func:`curate.models.source.resolve_source`). Registry forms (``NAME@3``,
``NAME@champion``) are resolved to a run folder by ``train.registry`` first; this module reads files
only, so both ``curate`` (judges) and ``train`` (trainers, evaluators) can use it.

Output: :func:`locate_trained` says where the pieces are (:class:`TrainedSource`: the weights to load,
the adapter to put on them, the tokenizer, the run's manifest); :func:`load_trained` loads them in
eval mode as a causal LM or a sequence classifier.

Example:
    >>> # src = locate_trained("runs/train/quickstart-sft/latest")
    >>> # model, tok = load_trained(src)                 # base + LoRA adapter, eval mode, on cuda if any
    >>> locate_trained("no/such/thing").weights           # an unknown name is passed on as a model spec
    'no/such/thing'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.models.source import ModelSource, load_model, load_tokenizer, resolve_source
from schemas.manifests import ModelManifest, checked

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class TrainedSource:
    """Where a model's pieces are: the weights (folder or spec), the adapter on them, the tokenizer."""

    weights: Path | str  # a model folder (base, merged or full weights) or a spec resolve_source accepts
    adapter: Path | None = None
    tokenizer: Path | str | None = None  # None: the weights' own
    manifest: dict[str, Any] | None = None  # the `curate train` run's manifest, when it is one
    run_dir: Path | None = None
    adapter_task: str | None = None  # the adapter's peft task_type (CAUSAL_LM, SEQ_CLS)

    @property
    def method(self) -> str | None:
        """The training method of the run (sft, dpo, reward...), or None for a plain model."""
        return self.manifest["method"] if self.manifest else None

    def describe(self) -> dict[str, Any]:
        """A JSON-able identity (for reports and caches)."""
        out: dict[str, Any] = {"weights": str(self.weights)}
        if self.adapter is not None:
            out["adapter"] = str(self.adapter)
        if self.manifest:
            out["run"] = {"name": self.manifest["name"], "run_id": self.manifest["run_id"], "dir": str(self.run_dir)}
        return out


def find_run(ref: str | Path, runs_root: str | Path = "runs/train") -> Path | None:
    """The run folder ``ref`` names: a folder with ``manifest.json``, else ``NAME`` (latest) or ``NAME/RUN_ID``."""
    for candidate in (Path(ref), Path(runs_root) / ref / "latest", Path(runs_root) / ref):
        if (candidate / MANIFEST).is_file():
            return candidate.resolve()
    return None


def run_output(run_dir: Path, recorded: str) -> Path:
    """A run's output folder, found next to its manifest first (a copied or moved run still loads)."""
    near = run_dir / Path(recorded).name
    return near if near.is_dir() else Path(recorded)


def locate_trained(ref: str | Path, runs_root: str | Path = "runs/train", prefer_merged: bool = True) -> TrainedSource:
    """Classify ``ref`` (see the module docstring) without loading anything."""
    run_dir = find_run(ref, runs_root)
    if run_dir is not None:
        m = checked(ModelManifest, json.loads((run_dir / MANIFEST).read_text(encoding="utf-8")))
        out = m["output"]
        if prefer_merged and out.get("merged") and run_output(run_dir, out["merged"]).is_dir():
            merged = run_output(run_dir, out["merged"])
            return TrainedSource(merged, None, merged, m, run_dir)
        path = run_output(run_dir, out["path"])
        if out.get("kind") == "adapter":
            base = m["base_model"]
            # the folder it trained from (a GGUF's conversion too) when still there, else its spec again
            folder = base.get("folder")
            weights = folder if folder and Path(folder).is_dir() else base["spec"]
            return TrainedSource(weights, path, path, m, run_dir, _adapter_task(path))
        return TrainedSource(path, None, path, m, run_dir)
    path = Path(ref).expanduser()
    if (path / "adapter_config.json").is_file():
        cfg = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        return TrainedSource(cfg["base_model_name_or_path"], path, path, adapter_task=cfg.get("task_type"))
    return TrainedSource(str(ref))


def _adapter_task(adapter: Path) -> str | None:
    cfg = adapter / "adapter_config.json"
    return json.loads(cfg.read_text(encoding="utf-8")).get("task_type") if cfg.is_file() else None


def load_trained(
    src: TrainedSource,
    task: str = "causal",
    device: str = "auto",
    dtype: Any = None,
) -> tuple[Any, Any]:
    """Load ``src`` as ``(model, tokenizer)`` in eval mode on ``device`` (auto: cuda when available).

    ``task`` is ``causal`` or ``seq_cls`` (reward models; the pad id is set from the tokenizer, as the
    classifier reads each sequence's last non-pad token). Default dtype: fp32 on CPU, bf16 on a GPU.
    Raises :class:`curate.models.source.ModelError` when something cannot be found or loaded.
    """
    import torch

    base = resolve_source(str(src.weights))
    tok_src = base if src.tokenizer is None else ModelSource(str(src.tokenizer), "local", Path(src.tokenizer))
    tok = load_tokenizer(tok_src)
    if tok.pad_token_id is None:  # TRL's rule: pad with EOS when the tokenizer has no pad token
        tok.pad_token = tok.eos_token
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if dtype is None:
        dtype = torch.bfloat16 if dev.startswith("cuda") else torch.float32
    model = load_model(base, task=task, dtype=dtype, pad_token_id=tok.pad_token_id if task == "seq_cls" else None)
    if src.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, src.adapter)
    return model.to(dev).eval(), tok
