"""``curate advise``: which training method and adapter to start with, and a train recipe to start from.

Reads flags, or asks on a terminal for what was not given. Writes nothing but the recipe (``--out``).

Example:
    >>> import typer
    >>> app = typer.Typer()
    >>> register(app)
    >>> [c.name for c in app.registered_commands]
    ['advise']
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

EXIT_INVALID = 2
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

EPILOG = """Examples:

  curate advise                                          # asks on a terminal

  curate advise --instruction-pairs 5000 --gpu-memory 24 --out sft.yaml

  curate advise --preference-pairs 3000 --model ./my-model --dataset prefs@latest --out dpo.yaml

  curate advise --reward-model runs/train/rm/latest --budget high --gpu-memory 80 --json
"""


def advise_command(
    instruction_pairs: Annotated[
        int | None, typer.Option("--instruction-pairs", min=0, help="Instruction/response pairs available.")
    ] = None,
    preference_pairs: Annotated[
        int | None, typer.Option("--preference-pairs", min=0, help="Preference pairs (chosen vs rejected).")
    ] = None,
    unpaired_labels: Annotated[
        int | None, typer.Option("--unpaired-labels", min=0, help="Responses labelled good/bad without a pair.")
    ] = None,
    reward_model: Annotated[
        str | None, typer.Option("--reward-model", help="A trained reward model (run folder or NAME@alias).")
    ] = None,
    gpu_memory: Annotated[
        float | None, typer.Option("--gpu-memory", min=0, help="GPU memory in GB (omit or 0 for CPU only).")
    ] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Compute budget: low, medium or high.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Base model (as model.base in a recipe).")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset NAME@version for the recipe.")] = None,
    store: Annotated[str, typer.Option("--store", help="Store root for the recipe.")] = "data/store",
    max_length: Annotated[int, typer.Option("--max-length", min=1, help="Tokens per example.")] = 1024,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the recipe here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Recommend a method (prompting, SFT, DPO, KTO, online RL) and an adapter (full, LoRA, QLoRA) with reasons.

    The reasons follow the usual decision guide (see train/advise.py); the adapter comes from the
    memory estimate of the model's config against --gpu-memory. With --out, a train recipe is
    written that `curate train RECIPE --check` accepts.
    """
    from train.advise import SMOLLM2, Situation, advise

    ask = sys.stdin.isatty() and not as_json
    if ask and instruction_pairs is None:
        instruction_pairs = typer.prompt("Instruction/response pairs you have", default=0, type=int)
    if ask and preference_pairs is None:
        preference_pairs = typer.prompt("Preference pairs (chosen vs rejected)", default=0, type=int)
    if ask and unpaired_labels is None:
        unpaired_labels = typer.prompt("Responses labelled good/bad (unpaired)", default=0, type=int)
    if ask and reward_model is None:
        reward_model = typer.prompt("Trained reward model (empty: none)", default="", show_default=False) or None
    if ask and gpu_memory is None:
        gpu_memory = typer.prompt("GPU memory in GB (0: CPU only)", default=0.0, type=float)
    if ask and budget is None:
        budget = typer.prompt("Compute budget (low, medium, high)", default="medium")
    budget = (budget or "medium").lower()
    if budget not in ("low", "medium", "high"):
        err.print(f"--budget: {budget!r} is not one of low, medium, high", markup=False)
        raise typer.Exit(EXIT_INVALID)
    situation = Situation(
        instruction_pairs=instruction_pairs or 0,
        preference_pairs=preference_pairs or 0,
        unpaired_labels=unpaired_labels or 0,
        reward_model=reward_model,
        gpu_memory_gb=gpu_memory or None,
        budget=budget,  # type: ignore[arg-type]
        model=model or SMOLLM2,
        dataset=dataset,
        store=store,
        max_length=max_length,
    )
    advice = advise(situation)
    if out_file is not None and advice.recipe_yaml:
        out_file.write_text(advice.recipe_yaml, encoding="utf-8")
    if as_json:
        print(json.dumps({**advice.as_dict(), "written": str(out_file) if out_file else None}, indent=2))
        return
    adapter = {"none": "full fine-tuning"}.get(advice.adapter, advice.adapter)
    head = "prompting (no training yet)" if advice.method == "prompting" else f"{advice.method} with {adapter}"
    lines = [f"recommended: {head}", *(f"  because {r}" for r in advice.reasons)]
    if advice.memory_gb:
        lines.append("  memory estimate (GB): " + ", ".join(f"{k} {v:g}" for k, v in advice.memory_gb.items()))
    lines += [f"  next: {n}" for n in advice.next_steps]
    if advice.recipe_yaml:
        if out_file is not None:
            lines.append(f"recipe written to {out_file}; check it with: curate train {out_file} --dry-run")
        else:
            lines += ["recipe to start from (--out FILE writes it):", advice.recipe_yaml]
    out.print("\n".join(lines), markup=False)


def register(app: typer.Typer) -> None:
    """Add ``advise`` to the ``curate`` app."""
    app.command("advise", epilog=EPILOG)(advise_command)
