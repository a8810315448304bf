"""``curate feedback ...``: calibrate a recipe's judge against human labels, print the judge prompts.

``calibrate`` runs the recipe's ``feedback.judge`` over ``feedback.calibration.data`` (or
``--data``) with :mod:`curate.feedback.calibration` and writes ``calibration.json``/``.md``/``.png``;
``prompts`` prints the judges' templates (:mod:`curate.feedback.prompts`) with their hashes.

Exit codes as the rest of the CLI: 0 ok, 2 invalid recipe or data, or agreement below
``calibration.min_agreement`` (the report is still written), 1 internal error.

Example:
    >>> [c.name for c in feedback_app.registered_commands]
    ['calibrate', 'prompts']
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from curate.cli.app import EXIT_INVALID, DebugOpt, JsonOpt, _fail_recipe, _internal, err, headline, out, print_json

feedback_app = typer.Typer(
    help="""AI feedback (RLAIF): measure a judge against human labels before its labels are used.

Examples:

  curate feedback calibrate recipes/feedback.yaml

  curate feedback calibrate recipes/feedback.yaml --data prefs-human@3 --limit 100 --json

  curate feedback calibrate recipes/feedback.yaml --data alpaca_eval_annotations.json --out calib/

  curate feedback prompts

  curate feedback prompts pairwise --json
""",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """Known input problems exit 2 with their message; anything else exits 1."""
    from curate.feedback.calibration import CalibrationDataError
    from curate.feedback.errors import FeedbackError
    from curate.models.source import ModelError
    from curate.store import RefError
    from schemas.recipe_loader import RecipeError

    try:
        yield
    except (typer.Exit, KeyboardInterrupt):
        raise
    except RecipeError as e:
        _fail_recipe(e, as_json=False)
    except (CalibrationDataError, FeedbackError, RefError, ModelError) as e:
        err.print(headline("error", e), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except Exception as e:
        _internal(e, debug)


def _print_report(report: dict[str, Any], folder: Path) -> None:
    from curate.feedback.calibration import _ROWS, _fmt

    d = report["data"]
    out.print(
        Text.assemble(
            (str(report["judge"]["kind"]), "bold"),
            f" judge on {report['n']} pairs of {d['ref']} "
            f"(labelled by {', '.join(d['labellers']) or 'unknown'}; reference a/b/tie "
            f"{d['reference_labels']['a']}/{d['reference_labels']['b']}/{d['reference_labels']['tie']}), "
            f"{report['seconds']} s",
        )
    )
    t = Table("figure", "value", "95% CI")
    for key, label in _ROWS:
        t.add_row(label, *_fmt(report.get(key)))
    t.add_row("longer-answer baseline: agreement", *_fmt(report["length_baseline"]["agreement"]))
    out.print(t)
    if report["failures"]["count"]:
        err.print(
            Text.assemble(
                (f"{report['failures']['count']} failed judgement(s)", "yellow"), " (listed in calibration.json)"
            )
        )
    out.print(f"written: {folder / 'calibration.json'}, calibration.md", markup=False)


@feedback_app.command(
    "calibrate",
    epilog="Examples:\n\n  curate feedback calibrate recipes/feedback.yaml\n\n"
    "  curate feedback calibrate recipes/feedback.yaml --data prefs-human@2 --limit 50 --json | jq .agreement\n\n"
    "  curate feedback calibrate recipes/feedback.yaml "
    "--data ../shared/datasets/alpaca_eval_alpaca7b_vs_davinci003_gpt4_annotations.json --out calib/\n\n"
    "The recipe names the judge (feedback.judge) and the data (feedback.calibration.data: a store version "
    "NAME@VERSION such as an `curate annotate pull`, or a preference / AlpacaEval / OpenAssistant file, "
    "recipe-relative). Requests are cached: a rerun asks the model only for what changed.",
)
def calibrate_command(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML with a `feedback:` section.", show_default=False)],
    data: Annotated[
        str | None, typer.Option("--data", help="Labelled pairs (default: feedback.calibration.data).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Pairs judged (default: feedback.calibration.limit).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: OUTPUT_DIR/NAME/calibration).")
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="Store root for NAME@VERSION (default: publish.store).")
    ] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", min=0, help="Bootstrap resamples for the CIs.")] = 1000,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Measure the recipe's judge against human-labelled pairs: agreement, kappa, flips, length bias.

    Exits 2 (after writing the report) when agreement is below feedback.calibration.min_agreement.
    """
    from curate.feedback.cache import RequestCache
    from curate.feedback.calibration import CalibrationGateError, calibrate_spec, check_min_agreement, write_calibration
    from schemas.recipe import under
    from schemas.recipe_loader import load_recipe_file

    with _errors(debug):
        doc = load_recipe_file(recipe)
        spec = doc.recipe.feedback
        if spec is None:
            err.print(f"{recipe}: no feedback section; calibration measures the judge of feedback.judge", markup=False)
            raise typer.Exit(EXIT_INVALID)
        output = Path(doc.recipe.output.dir)
        default_store = under(recipe.resolve().parent, "data/store")  # publish.store's default, as the recipe's
        root = store or Path(doc.recipe.publish.store if doc.recipe.publish else default_store)
        cache = RequestCache(recipe.parent / spec.cache if spec.cache else output / ".work" / "feedback-cache.sqlite")
        report = calibrate_spec(spec, recipe.parent, root, cache, data, limit, n_boot)
        failed: CalibrationGateError | None = None
        try:
            check_min_agreement(report, report["min_agreement"])
        except CalibrationGateError as e:
            failed = e
        folder = out_dir or output / doc.recipe.name / "calibration"
        write_calibration(report, folder)
    if as_json:
        print_json(report)
    else:
        _print_report(report, folder)
    if failed is not None:
        err.print(headline("calibration failed", failed), highlight=False)
        raise typer.Exit(EXIT_INVALID)


@feedback_app.command(
    "prompts",
    epilog="Examples:\n\n  curate feedback prompts\n\n  curate feedback prompts rating\n\n"
    "  curate feedback prompts pairwise --json | jq -r .pairwise.templates[0].text\n\n"
    "Override a template with feedback.judge.template (same placeholders); the hash of the template in use "
    "is recorded with every judged record (judge.prompt_hash).",
)
def prompts_command(
    kind: Annotated[
        str | None, typer.Argument(help="pairwise, rating, critique_revise or reward_model (default: all).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the judges' default prompt templates with their hashes."""
    from curate.feedback.prompts import TEMPLATES, prompt_hash

    if kind is not None and kind not in TEMPLATES:
        err.print(f"unknown judge kind {kind!r}; choose one of: {', '.join(TEMPLATES)}", markup=False)
        raise typer.Exit(EXIT_INVALID)
    kinds = [kind] if kind else list(TEMPLATES)
    info = {
        k: {
            "prompt_hash": prompt_hash(*TEMPLATES[k]) if TEMPLATES[k] else None,
            "templates": [{"hash": prompt_hash(t), "text": t} for t in TEMPLATES[k]],
        }
        for k in kinds
    }
    if as_json:
        print_json(info)
        return
    for k, v in info.items():
        out.print(
            Text.assemble(
                (f"== {k}", "bold"), f"  prompt_hash {v['prompt_hash'] or 'n/a (a reward model reads no prompt)'}"
            )
        )
        for i, t in enumerate(v["templates"], 1):
            out.print(f"-- template {i}/{len(v['templates'])}  hash {t['hash']}", markup=False)
            out.print(t["text"], markup=False)
        out.print("")
