"""``curate validate | run | refresh | serve``: check a recipe, execute the run sequence, serve it on a schedule."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from curate.cli.app import (
    EXIT_INVALID,
    EXIT_OK,
    JsonOpt,
    LocalOpt,
    RecipeArg,
    _fail_recipe,
    _internal,
    _prefect_env,
    app,
    err,
    headline,
    out,
)
from curate.engine.local import QuarantineLimitError, run_recipe
from curate.engine.plan import escaping_paths, load_and_plan
from curate.engine.steps import EmptyVersionError
from curate.feedback.calibration import CalibrationDataError, CalibrationGateError
from curate.feedback.errors import FeedbackError
from curate.ingest import InputError
from curate.store.refs import StoreError
from schemas.recipe_loader import RecipeError, load_recipe_file


@app.command(
    epilog="Examples:\n\n  curate validate recipes/quickstart.yaml\n\n"
    "  curate validate my.yaml --no-peek --json   # offline: skip reading input rows"
)
def validate(
    recipe: RecipeArg,
    peek: Annotated[bool, typer.Option(help="Read the first rows of each source to check required fields.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Check a recipe without running it: keys, types, converter chains, options, inputs and columns.

    Every problem is listed with its YAML path and line.
    """
    from curate.cli.lifecycle import validate_lifecycle  # a lifecycle recipe: the whole chain
    from curate.cli.models import validate_gate_file  # a promotion gate (`gate:`) is checked as one

    if validate_gate_file(recipe, as_json) or validate_lifecycle(recipe, as_json):
        return
    try:
        p = load_and_plan(recipe, peek=peek)
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return
    files = {sp.spec.name: [f.uri for f in sp.files] for sp in p.sources}
    warnings = [str(w) for w in escaping_paths(load_recipe_file(recipe), p.base_dir)]
    if as_json:
        body = {"ok": True, "recipe": p.recipe.name, "kind": p.recipe.output.kind.value, "files": files}
        print(json.dumps(body | {"warnings": warnings}, indent=2))
    else:
        _warn(warnings)
        n = sum(len(v) for v in files.values())
        out.print(
            headline(
                "ok",
                f"{p.recipe.name} -> {p.recipe.output.kind.value} records from {len(p.sources)} source(s), "
                f"{n} input file(s)",
                "green",
            )
        )


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        err.print(headline("warning", w, "yellow"), highlight=False)


RUN_EXIT = (
    "Exit codes: 0 ok (quarantined rows are not an error), 2 invalid recipe/input, too much "
    "quarantined (limits.max_quarantined_fraction) or no row kept for a publish (publish.allow_empty), "
    "1 internal error."
)
OutOpt = Annotated[
    str | None, typer.Option("--out", help="Write runs under this folder (or URL, s3://...) instead of output.dir.")
]
ProgressOpt = Annotated[
    bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: when stderr is a terminal).")
]
RunnerOpt = Annotated[
    str | None,
    typer.Option(
        "--runner",
        help="Task runner for the flow: thread[:N], dask[:N] (local cluster) or dask:tcp://HOST:PORT "
        "(default: the recipe's flow.runner, else thread).",
        show_default=False,
    ),
]
DebugOpt = Annotated[bool, typer.Option(help="Show tracebacks of internal errors.")]


def _execute(
    recipe: Path,
    out_dir: str | None,
    as_json: bool,
    progress: bool | None,
    debug: bool,
    local: bool,
    runner: str | None,
    incremental: bool,
) -> None:
    """Shared body of ``run`` and ``refresh``: validate first (no server starts for a bad recipe)."""
    from curate.engine.steps import RunResult

    try:
        doc = load_recipe_file(recipe)
        _warn([str(w) for w in escaping_paths(doc)])
        if incremental and doc.recipe.publish is None:
            raise RecipeError([doc.problem(("publish",), "refresh needs a publish: section (the dataset it extends)")])
        if local:
            result = run_recipe(doc, out_dir, show_progress=progress, refresh=incremental)
        else:
            load_and_plan(recipe)  # every problem, before Prefect's temporary server starts
            _prefect_env()
            from flows.curation import run_flow
            from flows.runners import shared_work_warning, task_runner

            spec = runner or doc.recipe.flow.runner
            try:
                task_runner(spec)  # an unknown runner fails here, clearly
            except ValueError as e:
                err.print(headline("--runner", e), highlight=False)
                raise typer.Exit(EXIT_INVALID) from None
            shared = shared_work_warning(spec, out_dir or doc.recipe.output.dir, doc.recipe.output.work_dir)
            _warn([shared] if shared else [])
            summary = run_flow(recipe, out_dir, runner=spec, incremental=incremental)
            run_dir = summary.pop("run_dir", None)
            result = RunResult(Path(run_dir) if run_dir else None, summary)
        code = EXIT_OK
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return
    except InputError as e:
        err.print(headline("input error", e), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except QuarantineLimitError as e:
        result, code = e.result, EXIT_INVALID
        err.print(headline("too much quarantined", e), highlight=False)
    except EmptyVersionError as e:
        result, code = e.result, EXIT_INVALID
        err.print(headline("empty version not published", e), highlight=False)
    except FeedbackError as e:
        err.print(headline("feedback error", e), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except StoreError as e:
        err.print(f"[red bold]store error[/]: {e}", highlight=False, markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except (CalibrationGateError, CalibrationDataError) as e:
        err.print(headline("judge calibration", e), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except (KeyboardInterrupt, typer.Exit):
        raise
    except Exception as e:  # anything else is our bug: exit 1 with a clear message
        _internal(e, debug)
        return
    s = result.summary
    if as_json:
        sys.stdout.write(orjson.dumps(s, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif result.run_dir is None:
        out.print(headline("no-op", f"nothing new since {s['refresh']['base_version']}; nothing published", "green"))
    else:
        _print_summary(s, result.run_dir)
    raise typer.Exit(code)


@app.command(
    epilog="Examples:\n\n  curate run recipes/quickstart.yaml\n\n"
    "  curate run recipes/quickstart.yaml --local --out /tmp/runs --json > summary.json\n\n"
    "  curate run recipes/quickstart.yaml --runner dask          # a local Dask cluster, 2 workers\n\n"
    "  PREFECT_API_URL=http://127.0.0.1:4200/api curate run recipes/quickstart.yaml   # watch it in the UI\n\n"
    + RUN_EXIT
)
def run(
    recipe: RecipeArg,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = None,
    local: LocalOpt = False,
    runner: RunnerOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a recipe as a Prefect flow: ingest every source, stages, run folder with report, publish.

    Without PREFECT_API_URL, Prefect starts a temporary local server for the run. Steps are cached on
    input content: a rerun after a failure resumes where it stopped, a rerun with nothing new reuses
    everything. --local runs the same steps in this process without Prefect.
    """
    _execute(recipe, out_dir, as_json, progress, debug, local, runner, incremental=False)


@app.command(
    epilog="Examples:\n\n  curate refresh recipes/quickstart.yaml\n\n"
    "  curate refresh recipes/quickstart.yaml --local --json | jq .published\n\n"
    "  curate serve recipes/quickstart.yaml --cron '0 3 * * *'     # the same, every night\n\n" + RUN_EXIT
)
def refresh(
    recipe: RecipeArg,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = None,
    local: LocalOpt = False,
    runner: RunnerOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Incremental refresh: process only input files the latest published version has not seen.

    New (or changed) files are ingested and staged, deduplicated against the rows already published,
    and the next version is published only if something changed; with nothing new it is a no-op
    (logged in OUT/NAME/refreshes.jsonl).
    """
    _execute(recipe, out_dir, as_json, progress, debug, local, runner, incremental=True)


@app.command(
    epilog="Examples:\n\n  curate server up && export PREFECT_API_URL=http://127.0.0.1:4200/api\n\n"
    "  curate serve recipes/quickstart.yaml --cron '0 3 * * *'\n\n"
    "  curate serve recipes/quickstart.yaml --interval 3600 --name hourly-refresh\n\n"
    "  curate serve recipes/lifecycle/demo.yaml     # the data-to-model loop, on the recipe's schedule:\n\n"
    "  curate serve recipes/annotate.yaml --pull --cron '0 4 * * *'     # collect Argilla labels nightly"
)
def serve(
    recipe: RecipeArg,
    cron: Annotated[str | None, typer.Option(help="Cron schedule, e.g. '0 3 * * *'.")] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between runs.", min=1)] = None,
    name: Annotated[str | None, typer.Option(help="Deployment name (default: RECIPE_NAME-refresh).")] = None,
    out_dir: OutOpt = None,
    runner: RunnerOpt = None,
    pull: Annotated[
        bool, typer.Option("--pull", help="Serve the annotation pull (wait for labels, pull, publish) instead.")
    ] = False,
) -> None:
    """Serve RECIPE on a schedule as a Prefect deployment (runs until stopped).

    A lifecycle recipe runs the whole loop (curate, label, train, evaluate, gate, report) each time;
    a curation recipe runs its incremental refresh (the lifecycle with no train step).

    A recipe with an annotation: section pushes each new version to Argilla; serve `--pull` on a
    later schedule to collect the labels.

    Needs a Prefect server: `curate server up` (then export the PREFECT_API_URL it prints) or your
    team's server via PREFECT_API_URL. Runs execute in this process.
    """
    _prefect_env(quiet=True)
    from flows.lifecycle.chain import load_chain
    from flows.serve import serve_refresh
    from schemas.lifecycle import is_lifecycle_text
    from schemas.recipe_loader import read_recipe_text

    try:
        if is_lifecycle_text(read_recipe_text(recipe)):
            load_chain(recipe)  # the whole chain, before anything is served
        else:
            load_and_plan(recipe)
        serve_refresh(recipe, cron=cron, interval=interval, out_dir=out_dir, name=name, runner=runner, pull=pull)
    except RecipeError as e:
        _fail_recipe(e, False)
    except (ValueError, RuntimeError) as e:
        err.print(headline("cannot serve", e), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None


def _print_summary(s: dict, run_dir: Path) -> None:
    if s.get("orchestrator", {}).get("flow_run_id"):
        o = s["orchestrator"]
        out.print(f"flow run: {o['flow_run_name']} ({o['flow_run_id']})", highlight=False, markup=False)
    table = Table(title=f"{s['recipe']} -> {s['kind']} ({s['seconds']} s)")
    cols = ("input rows", "kept", "quarantined", "duplicates", "dropped", "records out")
    table.add_column("source", no_wrap=True)
    for col in cols:
        table.add_column(col, justify="right")
    keys = ("input_rows", "kept", "quarantined", "duplicates", "dropped", "output_records")
    for name, src in s["sources"].items():
        table.add_row(name, *(f"{src[k]:,}" for k in keys))
    table.add_row("[bold]total", *(f"{s[k]:,}" for k in keys))
    out.print(table)
    for label, key in (
        ("quarantined", "quarantined_by_reason"),
        ("duplicates", "duplicates_by_reason"),
        ("dropped", "dropped_by_reason"),
    ):
        if s[key]:
            out.print(
                f"{label} by reason: " + ", ".join(f"{k}={v}" for k, v in s[key].items()), highlight=False, markup=False
            )
    out.print(f"balanced: input = kept + quarantined + duplicates + dropped -> {s['balanced']}", markup=False)
    out.print(f"dataset:    {run_dir / 'data'}", markup=False)
    out.print(f"quarantine: {run_dir / 'quarantine.jsonl'}", markup=False)
    if "dropped" in s["outputs"]:
        out.print(f"removed:    {run_dir / 'dropped.parquet'}, {run_dir / 'duplicates.parquet'}", markup=False)
    if "report" in s["outputs"]:
        out.print(f"report:     {run_dir / 'report.md'}", markup=False)
    out.print(f"summary:    {run_dir / 'summary.json'}", markup=False)
