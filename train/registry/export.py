"""Hand a registered model over the way trainers and serving code want it: loaded, or as a folder.

:func:`load_model` gives ``(model, tokenizer)`` for ``NAME@champion`` (or any reference
:func:`train.registry.resolve` takes): the base with the adapter on it, or merged into one model
(``merged=True``). :func:`export` writes a self-contained folder: the adapter (or full weights),
the tokenizer, the manifest, the model card and the evaluations, or (``merged=True``) merged weights
that load with ``AutoModelForCausalLM.from_pretrained`` alone. An existing non-empty folder is refused.

Example:
    >>> # model, tok = load_model("quickstart-sft@champion")
    >>> # export("quickstart-sft@champion", Path("serve/quickstart"), merged=True)
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from curate.models.trained import locate_trained
from train.registry.versions import RegistryError, resolve


def load_model(
    ref: str, root: str | Path = "runs/train", merged: bool = False, device: str = "auto"
) -> tuple[Any, Any]:
    """The model ``ref`` names and its tokenizer, in eval mode (see the module docstring)."""
    from curate.models.trained import load_trained

    src = locate_trained(resolve(ref, root), root)
    task = "seq_cls" if src.method == "reward" else "causal"
    model, tok = load_trained(src, task=task, device=device)
    if merged and src.adapter is not None:
        model = model.merge_and_unload()
    return model, tok


def export(ref: str, to: Path, root: str | Path = "runs/train", merged: bool = False) -> Path:
    """Write model ``ref`` into the new folder ``to``; returns ``to``."""
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise RegistryError(f"--to: {to} exists and is not an empty folder; choose a new folder")
    run_dir = resolve(ref, root)
    src = locate_trained(run_dir, root)
    tmp = to.with_name(f".{to.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if merged:
        model, tok = load_model(ref, root, merged=True, device="cpu")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    else:
        weights = Path(str(src.adapter or src.weights))
        if not weights.is_dir():
            raise RegistryError(f"{ref}: its weights are not a local folder ({weights}); export with --merged")
        shutil.copytree(weights, tmp / weights.name)
    for extra in ("manifest.json", "README.md", "recipe.yaml", "evaluations"):
        p = run_dir / extra
        if p.is_dir():
            shutil.copytree(p, tmp / extra)
        elif p.is_file():
            shutil.copy2(p, tmp / extra)
    if to.exists():
        to.rmdir()
    tmp.replace(to)  # the folder appears whole or not at all
    return to
