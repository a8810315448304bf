"""Lineage of trained outputs: a manifest and a model card per run, and listing them.

Layout of one run (``output.dir/NAME/RUN_ID``, with ``output.dir/NAME/latest`` pointing at the newest)::

    adapter/ or model/   what was trained (peft adapter, or full weights for full/freeze tuning)
    merged/              the base with the adapter merged in (output.merge or `curate models merge`)
    manifest.json        base model identity, dataset name@version + content hash, recipe + hash,
                         code version, library versions, metrics, hardware, pre-flight report
    README.md            model card (Hugging Face format) saying the same for people
    recipe.yaml          the train recipe exactly as run

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> run = root / "demo" / "20260101-000000"
    >>> _ = write_lineage(run, {"name": "demo", "run_id": "20260101-000000", "method": "sft",
    ...                         "base_model": {"spec": "m"}, "dataset": {"ref": "d@1", "content_hash": "ab"},
    ...                         "output": {"kind": "adapter", "path": "adapter"}, "metrics": {"train_loss": 1.0}})
    >>> [m["name"] for m in list_models(root)]
    ['demo']
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from schemas.manifests import ModelManifest, checked

MANIFEST = "manifest.json"


def library_versions() -> dict[str, str | None]:
    """Versions of the training stack (what reproduces a run)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def hardware(device: str) -> dict[str, Any]:
    """The machine a run trained on."""
    import torch

    info: dict[str, Any] = {
        "device": device,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (checked, atomically: a crash never leaves half of it) and the model card
    ``README.md`` into ``run_dir``; used by training and by every later addition (evaluations)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{MANIFEST}.tmp"
    tmp.write_text(
        json.dumps(checked(ModelManifest, manifest), indent=2, sort_keys=True, default=str), encoding="utf-8"
    )
    tmp.replace(run_dir / MANIFEST)
    (run_dir / "README.md").write_text(model_card(manifest), encoding="utf-8")
    return run_dir / MANIFEST


def write_lineage(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` and the model card (:func:`write_manifest`); point ``latest`` at ``run_dir``."""
    write_manifest(run_dir, manifest)
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    tmp.replace(latest)
    return run_dir / MANIFEST


def model_card(m: dict[str, Any]) -> str:
    """A Hugging Face model card (YAML header + lineage) for manifest ``m``."""
    base = m.get("base_model", {})
    ds = m.get("dataset", {})
    metrics = m.get("metrics", {})
    header = [
        "---",
        f"base_model: {base.get('spec', '')}",
        "library_name: peft" if m.get("output", {}).get("kind") == "adapter" else "library_name: transformers",
        "tags: [curate, trl, " + m.get("method", "") + "]",
        f"datasets: [{ds.get('ref', '')}]",
        "---",
        "",
    ]
    rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items())
    recipe = m.get("recipe", {})
    extra = _started_from(base) + _reward_lineage(m)
    body = f"""# {m.get("name", "")} ({m.get("method", "")})

Trained by `curate train` on {m.get("created", "")} (run `{m.get("run_id", "")}`).

## Lineage

- **Base model**: `{base.get("spec", "")}` ({base.get("kind", "")}; {_weights(base)})
- **Dataset**: `{ds.get("ref", "")}` split `{ds.get("split", "")}`, {ds.get("rows", "?")} rows, content hash
  `{ds.get("content_hash", "")}` (store `{ds.get("store", "")}`)
- **Method**: {m.get("method", "")}, adapter {m.get("adapter", {}).get("type", "")}{extra}
- **Recipe**: `{recipe.get("file", "")}` sha256 `{recipe.get("sha256", "")}` (copy in `recipe.yaml`)
- **Code**: {m.get("code_version", {})}
- **Libraries**: {m.get("libraries", {})}
- **Hardware**: {m.get("hardware", {})}
- **Output**: `{m.get("output", {}).get("path", "")}` ({m.get("output", {}).get("kind", "")})

## Metrics

| metric | value |
|---|---|
{rows}

{_evaluations(m)}## Use

```python
{_usage(m)}
```
"""
    return "\n".join(header) + body


def _evaluations(m: dict[str, Any]) -> str:
    """The card's evaluation section: the newest figure of each metric with its interval and n."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for report in m.get("evaluations") or []:
        for v in report.get("metrics", []):
            latest[(v["metric"], v.get("details", {}).get("set", ""))] = {**v, "created": report.get("created")}
    if not latest:
        return ""
    rows = []
    for (metric, on), v in latest.items():
        finite = v.get("ci_low") is not None and v.get("ci_high") is not None
        ci = f"[{v['ci_low']:.4g}, {v['ci_high']:.4g}]" if finite else ""
        better = "higher" if v.get("higher_is_better") else "lower"
        # an overflowed figure (perplexity of a diverged model) is saved as null: say so, do not crash
        value = f"{v['value']:.4g}" if v.get("value") is not None else "not finite"
        rows.append(f"| {metric} | {on} | {value} | {ci} | {v['n']} | {better} | {v['created']} |")
    return (
        "## Evaluation\n\n| metric | eval set | value | 95% CI | n | better | when |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nPlots and full reports: `evaluations/` beside this card.\n\n"
    )


def _started_from(base: dict[str, Any]) -> str:
    """A card line naming the earlier run the model started from (``model.base`` naming a run)."""
    run = base.get("run")
    if not run:
        return ""
    ds = run.get("dataset", {})
    return (
        f"\n- **Started from**: run `{run.get('name')}/{run.get('run_id')}` ({run.get('method')}) trained on "
        f"`{ds.get('ref')}` (content hash `{ds.get('content_hash')}`)"
    )


def _reward_lineage(m: dict[str, Any]) -> str:
    """Card lines for RLOO/GRPO: the reward model (its run and the dataset version it learned from) and
    the rule-based rewards with their weights."""
    lines = ""
    rm = m.get("reward_model")
    if rm:
        ds = rm.get("dataset") or {}
        where = f"run `{rm['name']}/{rm['run_id']}`" if rm.get("name") else f"`{rm.get('ref')}`"
        data = f" trained on `{ds.get('ref')}` (content hash `{ds.get('content_hash')}`)" if ds.get("ref") else ""
        lines += f"\n- **Reward model**: {where}{data}"
    rewards = m.get("rewards")
    if rewards:
        weights = rewards.get("weights") or [1.0] * len(rewards.get("names", []))
        pairs = ", ".join(f"{n} x {w:g}" for n, w in zip(rewards.get("names", []), weights, strict=False))
        lines += f"\n- **Rewards**: {pairs}"
    return lines


def _weights(base: dict[str, Any]) -> str:
    for key in ("gguf_sha256", "weights_sha256"):
        if key in base:
            return f"{key} {base[key][:16]}..."
    return "hub revision as resolved at run time"


def _usage(m: dict[str, Any]) -> str:
    out = m.get("output", {})
    if out.get("kind") == "adapter":
        return (
            "from peft import AutoPeftModelForCausalLM\n"
            f"model = AutoPeftModelForCausalLM.from_pretrained({out.get('path', 'adapter')!r})"
        )
    return (
        "from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained({out.get('path')!r})"
    )


def read_manifest(path: Path) -> dict[str, Any]:
    """A model's ``manifest.json``, checked against :class:`schemas.manifests.ModelManifest`."""
    return checked(ModelManifest, json.loads(path.read_text(encoding="utf-8")))


def list_models(root: str | Path = "runs/train") -> list[dict[str, Any]]:
    """Manifests of every trained run under ``root`` (newest first), each with ``dir`` added."""
    root = Path(root)
    found = []
    for path in root.glob(f"*/*/{MANIFEST}"):
        if path.parent.name == "latest":
            continue
        m = read_manifest(path)
        m["dir"] = str(path.parent)
        found.append(m)
    return sorted(found, key=lambda m: (m.get("created", ""), m.get("run_id", "")), reverse=True)


def find_model(ref: str, root: str | Path = "runs/train") -> dict[str, Any]:
    """A run by folder path, ``NAME`` (its latest run) or ``NAME/RUN_ID``; ``KeyError`` says what exists."""
    p = Path(ref)
    if (p / MANIFEST).exists():
        m = read_manifest(p / MANIFEST)
        m["dir"] = str(p.resolve() if p.name == "latest" else p)
        return m
    for candidate in (Path(root) / ref, Path(root) / ref / "latest"):
        if (candidate / MANIFEST).exists():
            m = read_manifest(candidate / MANIFEST)
            m["dir"] = str(candidate.resolve())
            return m
    names = sorted({m["name"] for m in list_models(root)})
    raise KeyError(f"no trained model {ref!r} under {root}; known: {', '.join(names) or 'none (run curate train)'}")
