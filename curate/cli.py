"""The ``curate`` command line: thin over the same functions the flows call.

Exit codes: 0 success; 2 invalid recipe or input (message says what to fix); 1 internal error.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from curate.convert import all_converters, get_converter
from curate.engine.local import QuarantineLimitError, run_recipe
from curate.engine.plan import load_and_plan
from curate.ingest import InputError
from schemas.kinds import Kind
from schemas.recipe import recipe_json_schema
from schemas.recipe_loader import RecipeError, load_recipe_file
from schemas.records import RECORD_MODELS

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID = 0, 1, 2
T = TypeVar("T")

app = typer.Typer(
    name="curate",
    help="""Declarative dataset curation for LLM fine-tuning.

Point a YAML recipe at raw files (jsonl, json, parquet, csv, text, save_to_disk folders, gzip/zstd),
convert them to ChatML / Alpaca / preference / KTO records, filter and deduplicate them, and publish
a versioned dataset with every input row accounted for (kept, quarantined, duplicate or dropped,
with its reason, file and row).

Examples:

  curate validate recipes/quickstart.yaml

  curate run recipes/quickstart.yaml

  curate run recipes/quickstart.yaml --json | jq .quarantined_by_reason

  curate run recipes/quickstart.yaml --local          # no Prefect: step by step in this process

  curate refresh recipes/quickstart.yaml              # only new input files -> next version

  curate server up; curate serve recipes/quickstart.yaml --cron '0 3 * * *'

  curate converters alpaca_to_messages

  curate filters gopher_quality

  curate schema -o recipe.schema.json

  curate datasets list

  curate argilla up; curate annotate push --recipe recipes/annotate.yaml

  curate train recipes/train/quickstart_sft.yaml --dry-run
""",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML file.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _fail_recipe(e: RecipeError, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": False, "problems": [p.__dict__ for p in e.problems]}, indent=2))
    else:
        err.print(f"[red bold]recipe invalid[/]: {len(e.problems)} problem(s)")
        for p in e.problems:
            err.print(f"  {p}", markup=False, highlight=False)
    raise typer.Exit(EXIT_INVALID)


def _lookup(getter: Callable[[str], T], name: str) -> T:
    """A registry entry by name; an unknown name prints the registry's message and exits 2."""
    try:
        return getter(name)
    except KeyError as e:
        err.print(str(e.args[0]), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None


def _internal(e: BaseException, debug: bool) -> None:
    err.print(f"[red bold]internal error[/]: {type(e).__name__}: {e}", highlight=False)
    if debug:
        err.print(traceback.format_exc(), markup=False, highlight=False)
    else:
        err.print("Re-run with --debug for the traceback, and please report it.")
    raise typer.Exit(EXIT_INTERNAL)


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
    try:
        p = load_and_plan(recipe, peek=peek)
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return
    files = {sp.spec.name: [f.uri for f in sp.files] for sp in p.sources}
    if as_json:
        print(
            json.dumps(
                {"ok": True, "recipe": p.recipe.name, "kind": p.recipe.output.kind.value, "files": files}, indent=2
            )
        )
    else:
        n = sum(len(v) for v in files.values())
        out.print(
            f"[green]ok[/]: {p.recipe.name} -> {p.recipe.output.kind.value} records from "
            f"{len(p.sources)} source(s), {n} input file(s)"
        )


RUN_EXIT = (
    "Exit codes: 0 ok (quarantined rows are not an error), 2 invalid recipe/input or too much "
    "quarantined (limits.max_quarantined_fraction), 1 internal error."
)
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write runs under this folder instead of output.dir.")]
ProgressOpt = Annotated[
    bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: when stderr is a terminal).")
]
LocalOpt = Annotated[
    bool, typer.Option("--local", help="Run in this process, step by step, without Prefect (for debugging).")
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
    out_dir: Path | None,
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
        if incremental and doc.recipe.publish is None:
            raise RecipeError([doc.problem(("publish",), "refresh needs a publish: section (the dataset it extends)")])
        if local:
            result = run_recipe(doc, out_dir, show_progress=progress, refresh=incremental)
        else:
            load_and_plan(recipe)  # every problem, before Prefect's temporary server starts
            _prefect_env()
            from flows.curation import run_flow
            from flows.runners import task_runner

            spec = runner or doc.recipe.flow.runner
            try:
                task_runner(spec)  # an unknown runner fails here, clearly
            except ValueError as e:
                err.print(f"[red bold]--runner[/]: {e}", highlight=False)
                raise typer.Exit(EXIT_INVALID) from None
            summary = run_flow(recipe, out_dir, runner=spec, incremental=incremental)
            run_dir = summary.pop("run_dir", None)
            result = RunResult(Path(run_dir) if run_dir else None, summary)
        code = EXIT_OK
    except RecipeError as e:
        _fail_recipe(e, as_json)
        return
    except InputError as e:
        err.print(f"[red bold]input error[/]: {e}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except QuarantineLimitError as e:
        result, code = e.result, EXIT_INVALID
        err.print(f"[red bold]too much quarantined[/]: {e}", highlight=False)
    except (KeyboardInterrupt, typer.Exit):
        raise
    except Exception as e:  # anything else is our bug: exit 1 with a clear message
        _internal(e, debug)
        return
    s = result.summary
    if as_json:
        sys.stdout.write(orjson.dumps(s, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif result.run_dir is None:
        out.print(f"[green]no-op[/]: nothing new since {s['refresh']['base_version']}; nothing published")
    else:
        _print_summary(s, result.run_dir)
    raise typer.Exit(code)


def _prefect_env() -> None:
    """Offline-friendly Prefect defaults (set before Prefect is imported; the user's settings win)."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.5")
    # the temporary server needs more than Prefect's 20 s default on a busy 2-core machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


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
    """Serve the incremental refresh of RECIPE as a scheduled Prefect deployment (runs until stopped).

    A recipe with an annotation: section pushes each new version to Argilla; serve `--pull` on a
    later schedule to collect the labels.

    Needs a Prefect server: `curate server up` (then export the PREFECT_API_URL it prints) or your
    team's server via PREFECT_API_URL. Runs execute in this process.
    """
    _prefect_env()
    from flows.serve import serve_refresh

    try:
        load_and_plan(recipe)
        serve_refresh(recipe, cron=cron, interval=interval, out_dir=out_dir, name=name, runner=runner, pull=pull)
    except RecipeError as e:
        _fail_recipe(e, False)
    except (ValueError, RuntimeError) as e:
        err.print(f"[red bold]cannot serve[/]: {e}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None


server_app = typer.Typer(
    help="A local Prefect server for schedules and the UI (runs in the background).",
    no_args_is_help=True,
    rich_markup_mode=None,
    epilog="Examples:\n\n  curate server up --port 4200\n\n  curate server status\n\n  curate server down",
)
app.add_typer(server_app, name="server")
HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Server home (default: $CURATE_PREFECT_HOME or ~/.local/share/curate/prefect)."),
]


@server_app.command("up")
def server_up_cmd(
    home: HomeOpt = None,
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1).")] = 4200,
) -> None:
    """Start a Prefect server in the background and print the PREFECT_API_URL to export."""
    from flows.server import server_up

    try:
        info = server_up(home, port=port)
    except RuntimeError as e:
        err.print(f"[red bold]server did not start[/]: {e}", highlight=False)
        raise typer.Exit(EXIT_INTERNAL) from None
    verb = "started" if info["started"] else "already running"
    out.print(f"Prefect server {verb} (pid {info['pid']}); UI: {info['ui_url']}", highlight=False)
    out.print(f"export PREFECT_API_URL={info['api_url']}", highlight=False)


@server_app.command("down")
def server_down_cmd(home: HomeOpt = None) -> None:
    """Stop the server `curate server up` started."""
    from flows.server import server_down

    out.print("stopped" if server_down(home) else "no server was running")


@server_app.command("status")
def server_status_cmd(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Whether the server is running, and where (exit code 1 when it is not)."""
    from flows.server import server_status

    info = server_status(home)
    if as_json:
        print(json.dumps(info, indent=2))
    elif info["running"]:
        out.print(f"running: pid {info['pid']}, API {info['api_url']}, log {info['log']}", highlight=False)
    else:
        out.print(f"not running (home {info['home']})", highlight=False)
    raise typer.Exit(EXIT_OK if info["running"] else EXIT_INTERNAL)


def _print_summary(s: dict, run_dir: Path) -> None:
    if s.get("orchestrator", {}).get("flow_run_id"):
        o = s["orchestrator"]
        out.print(f"flow run: {o['flow_run_name']} ({o['flow_run_id']})", highlight=False)
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
            out.print(f"{label} by reason: " + ", ".join(f"{k}={v}" for k, v in s[key].items()), highlight=False)
    out.print(f"balanced: input = kept + quarantined + duplicates + dropped -> {s['balanced']}")
    out.print(f"dataset:    {run_dir / 'data'}")
    out.print(f"quarantine: {run_dir / 'quarantine.jsonl'}")
    if "dropped" in s["outputs"]:
        out.print(f"removed:    {run_dir / 'dropped.parquet'}, {run_dir / 'duplicates.parquet'}")
    if "report" in s["outputs"]:
        out.print(f"report:     {run_dir / 'report.md'}")
    out.print(f"summary:    {run_dir / 'summary.json'}")


@app.command(epilog="Examples:\n\n  curate converters\n\n  curate converters hh_rlhf_to_preference")
def converters(name: Annotated[str | None, typer.Argument(help="Show one converter in detail.")] = None) -> None:
    """List converters, or show one converter's fields, options and a recipe example."""
    if name is None:
        table = Table(title="converters")
        for col in ("name", "reads", "writes"):
            table.add_column(col, no_wrap=True)
        table.add_column("what it does")
        for conv in all_converters().values():
            table.add_row(conv.name, conv.input.value if conv.input else "raw", conv.output.value, conv.summary)
        out.print(table)
        return
    conv = _lookup(get_converter, name)
    out.print(f"[bold]{conv.name}[/]: {conv.summary}")
    out.print(f"reads {conv.input.value if conv.input else 'raw records'}, writes {conv.output.value} records")
    for f in conv.fields:
        out.print(
            f"  field {f.name} ({f.type}{', required' if f.required else ', optional'}): {f.doc}", highlight=False
        )
    for key, info in conv.options.model_fields.items():
        out.print(f"  option {key} = {info.default!r}", highlight=False)
    if conv.example:
        out.print("example:\n" + "\n".join("  " + line for line in conv.example.splitlines()), highlight=False)


@app.command(epilog="Examples:\n\n  curate filters\n\n  curate filters gopher_quality")
def filters(name: Annotated[str | None, typer.Argument(help="Show one filter's parameters.")] = None) -> None:
    """List quality filters, or show one filter's parameters with their (published) defaults."""
    from curate.filters import all_filters, get_filter

    if name is None:
        table = Table(title="filters")
        table.add_column("rule", no_wrap=True)
        table.add_column("default field", no_wrap=True)
        table.add_column("what it checks")
        for rule, cls in all_filters().items():
            table.add_row(rule, cls.default_field, cls.summary)
        out.print(table)
        out.print("Use in a recipe: stages: [{type: filter, rule: RULE, field: FIELD, params: {...}}]")
        return
    cls = _lookup(get_filter, name)
    out.print(f"[bold]{name}[/]: {cls.summary} (default field: {cls.default_field})")
    for key, info in cls.Params.model_fields.items():
        doc = f"  {info.description}" if info.description else ""
        out.print(f"  {key} = {info.default!r}{doc}", highlight=False, markup=False)
    out.print(f"example:\n  stages:\n    - {{type: filter, rule: {name}, field: {cls.default_field}}}", highlight=False)


@app.command(epilog="Examples:\n\n  curate schema -o recipe.schema.json\n\n  curate schema --kind preference")
def schema(
    kind: Annotated[
        Kind | None, typer.Option(help="Print a record kind's JSON Schema instead of the recipe's.")
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of recipes (for editor completion) or of a record kind."""
    data = RECORD_MODELS[kind].model_json_schema() if kind else recipe_json_schema()
    text = json.dumps(data, indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


datasets_app = typer.Typer(
    help="Published dataset versions: list, show, diff, export.\n\nExamples:\n\n  curate datasets list\n\n"
    "  curate datasets show quickstart@latest --json\n\n"
    "  curate datasets diff quickstart@1 quickstart@2\n\n"
    "  curate datasets export quickstart@latest --format trl_parquet --out exports/quickstart",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(datasets_app, name="datasets")
StoreOpt = Annotated[Path, typer.Option("--store", help="Store root folder.")]


@datasets_app.command(
    "list", epilog="Examples:\n\n  curate datasets list\n\n  curate datasets list --store /data/store"
)
def datasets_list(store: StoreOpt = Path("data/store"), as_json: JsonOpt = False) -> None:
    """List datasets with their latest version, kind, rows and content hash."""
    from curate.store import Store

    st = Store(store)
    rows = []
    for name in st.names():
        m = st.manifest(name)
        rows.append(
            {
                "dataset": name,
                "latest": m["version"],
                "versions": len(st.versions(name)),
                "kind": m["kind"],
                "rows": m["rows"],
                "rows_per_split": m["rows_per_split"],
                "content_hash": m["content_hash"],
                "published_at": m["published_at"],
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print(f"no datasets in {store} (publish one with a recipe `publish:` section and `curate run`)")
        return
    table = Table(title=f"datasets in {store}")
    for col in ("dataset", "latest", "versions", "kind", "rows", "splits", "content hash", "published"):
        table.add_column(col, no_wrap=col in ("dataset", "content hash"))
    for r in rows:
        splits = " ".join(f"{k}={v}" for k, v in r["rows_per_split"].items())
        table.add_row(
            r["dataset"],
            str(r["latest"]),
            str(r["versions"]),
            r["kind"],
            f"{r['rows']:,}",
            splits,
            r["content_hash"][:12],
            r["published_at"],
        )
    out.print(table)


@datasets_app.command(
    "show", epilog="Examples:\n\n  curate datasets show quickstart\n\n  curate datasets show quickstart@2 --json"
)
def datasets_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@latest or NAME@VERSION.")],
    store: StoreOpt = Path("data/store"),
    as_json: JsonOpt = False,
) -> None:
    """Show a version's manifest: inputs, recipe, accounting, splits, leaks, lineage."""
    from curate.store import RefError, Store

    try:
        m = Store(store).manifest(ref)
    except RefError as e:
        err.print(str(e), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    if as_json:
        print(json.dumps(m, indent=2, sort_keys=True))
        return
    out.print(
        f"[bold]{m['dataset']}@{m['version']}[/] ({m['kind']}), {m['rows']:,} rows, published {m['published_at']}"
    )
    out.print(f"content hash: {m['content_hash']}   parent: {m['parent_version']}   run: {m.get('run_id')}")
    out.print("splits: " + ", ".join(f"{k}={v:,}" for k, v in m["rows_per_split"].items()))
    leaks = m.get("split_leaks") or {}
    for side in ("eval", "test"):
        if isinstance(leaks.get(side), dict) and leaks[side]["rows"]:
            out.print(
                f"  {side}: {leaks[side]['near_duplicates_of_train']} rows near-duplicate a train row "
                f"(Jaccard >= {leaks['threshold']})"
            )
    out.print(f"recipe: {m['recipe']['name']} (sha256 {m['recipe']['sha256'][:12]})")
    for f in m.get("inputs", []):
        out.print(f"  input {f['source']}: {f['uri']} sha256 {f['sha256'][:12]} ({f['rows']} rows)", highlight=False)
    a = m.get("accounting", {})
    if a:
        out.print(
            f"accounting: {a['input_rows']:,} input = {a['kept']:,} kept + {a['quarantined']:,} quarantined + "
            f"{a['duplicates']:,} duplicates + {a['dropped']:,} dropped"
        )
    cv = m.get("code_version") or {}
    out.print(f"code: curate {cv.get('package')} commit {cv.get('git_commit')}")


@datasets_app.command(
    "diff",
    epilog="Examples:\n\n  curate datasets diff chat@1 chat@2\n\n"
    "  curate datasets diff chat@1 chat@latest --key prompt --key chosen --json\n\n"
    "Rows are matched by id (a content hash); a new id whose split key (default: the prompt, or the "
    "text for text records) matches a removed row counts as changed. Exit code 2 for an unknown "
    "dataset, version or key field.",
)
def datasets_diff(
    ref_a: Annotated[str, typer.Argument(help="Old version: NAME@VERSION.")],
    ref_b: Annotated[str, typer.Argument(help="New version: NAME@VERSION or NAME@latest.")],
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Split-key field (repeat for several); default: the key the version used."),
    ] = None,
    examples: Annotated[int, typer.Option(help="Examples shown per category.", min=0)] = 5,
    store: StoreOpt = Path("data/store"),
    as_json: JsonOpt = False,
) -> None:
    """Rows added, removed, changed and unchanged between two versions, overall and per split."""
    from curate.store import RefError, Store
    from curate.store.diff import diff

    try:
        d = diff(Store(store), ref_a, ref_b, key=key or None, examples=examples)
    except RefError as e:
        err.print(str(e), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    if as_json:
        print(json.dumps(d, indent=2, ensure_ascii=False))
        return
    c = d["counts"]
    table = Table(title=f"{d['a']} -> {d['b']} ({d['kind']}, key: {', '.join(d['key'])})")
    cols = ("unchanged", "added", "removed", "changed", "changed_old", "moved_split")
    table.add_column("split", no_wrap=True)
    for col in cols:
        table.add_column(col.replace("_", " "), justify="right")
    for split, counts in d["per_split"].items():
        table.add_row(split, *(f"{counts[k]:,}" for k in cols))
    table.add_row("[bold]total", *(f"{c[k]:,}" for k in cols))
    out.print(table)
    out.print(
        f"rows: {d['rows']['a']:,} -> {d['rows']['b']:,}   (changed = new rows replacing changed_old rows "
        "with the same split key)",
        highlight=False,
    )
    if c["moved_split"]:
        out.print(f"[yellow]warning[/]: {c['moved_split']} unchanged row(s) moved split (seed or key changed?)")
    ex = d["examples"]
    for row in ex["added"]:
        out.print(f"  + {row['id'][:12]} [{row['split']}] {row['key']}", markup=False, highlight=False)
    for row in ex["removed"]:
        out.print(f"  - {row['id'][:12]} [{row['split']}] {row['key']}", markup=False, highlight=False)
    for row in ex["changed"]:
        out.print(
            f"  ~ {row['old_id'][:12]} -> {row['new_id'][:12]} [{row['split']}] {row['key']}\n"
            f"      old: {row['old_response']}\n      new: {row['new_response']}",
            markup=False,
            highlight=False,
        )


@datasets_app.command(
    "export",
    epilog="Examples:\n\n  curate datasets export chat@3 --format hf_disk --out exports/chat-v3\n\n"
    "  curate datasets export chat@3 --format trl_text_jsonl --template tokenizer "
    "--tokenizer models/my-tokenizer --out exports/chat-text\n\n"
    "  curate datasets export chat@latest --format sharegpt_json --out LLaMA-Factory/data   "
    "# merges dataset_info.json\n\n"
    "  HF_TOKEN=... curate datasets export chat@3 --format hub --repo-id me/chat --out exports/chat-hub\n\n"
    "Formats: hf_disk, trl_jsonl, trl_parquet (TRL conversational), trl_text_jsonl, trl_text_parquet "
    "(rendered with a chat template), alpaca_json, sharegpt_json (LLaMA-Factory), hub. "
    "Every export writes export_manifest.json in --out. Exit code 2 for a bad reference, format, "
    "split or option, or a failed Hub push.",
)
def datasets_export(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@latest or NAME@VERSION.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="hf_disk, trl_jsonl, trl_parquet, trl_text_jsonl, trl_text_parquet, "
            "alpaca_json, sharegpt_json or hub.",
            show_default=False,
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.", show_default=False)],
    split: Annotated[str | None, typer.Option(help="Export one split only (default: all).")] = None,
    template: Annotated[str, typer.Option(help="Chat template for trl_text_*: chatml or tokenizer.")] = "chatml",
    tokenizer: Annotated[
        Path | None, typer.Option(help="Local tokenizer folder whose chat_template renders (template tokenizer).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="LLaMA-Factory dataset name prefix (default: the dataset's name).")
    ] = None,
    repo_id: Annotated[
        str | None, typer.Option("--repo-id", help="Hub dataset repository for --format hub (token: HF_TOKEN).")
    ] = None,
    store: StoreOpt = Path("data/store"),
    as_json: JsonOpt = False,
) -> None:
    """Write a version for a trainer: datasets folder, TRL jsonl/parquet, LLaMA-Factory json, or the Hub."""
    from curate.store import RefError, Store
    from curate.store.export import ExportError, export

    try:
        r = export(
            Store(store),
            ref,
            fmt,
            out_dir,
            split=split,
            template=template,
            tokenizer=tokenizer,
            name=name,
            repo_id=repo_id,
        )
    except (RefError, ExportError) as e:
        err.print(str(e), highlight=False, markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    if as_json:
        print(json.dumps(r, indent=2, sort_keys=True))
        return
    splits = ", ".join(f"{k}={v:,}" for k, v in r["splits"].items())
    where = r.get("repo_id") or r["out"]
    out.print(f"[green]exported[/] {r['ref']} ({r['kind']}) as {r['format']} -> {where}: {splits}", highlight=False)
    for s, reasons in r["skipped"].items():
        detail = ", ".join(f"{k}={v}" for k, v in reasons.items())
        out.print(f"[yellow]skipped[/] in {s} (not representable in {r['format']}): {detail}", highlight=False)
    out.print(f"manifest: {Path(r['out']) / 'export_manifest.json'}", highlight=False)


from curate.annotate.cli import annotate_app, argilla_app  # noqa: E402  (Argilla annotation, issue 6)

app.add_typer(argilla_app, name="argilla")
app.add_typer(annotate_app, name="annotate")

from train.cli import register as _register_train  # noqa: E402  (train and models commands; heavy imports lazy)

_register_train(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
