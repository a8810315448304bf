"""``curate argilla ...`` (the local server) and ``curate annotate ...`` (push, pull, status, wait).

Exit codes as the rest of the CLI: 0 ok, 2 invalid input or unusable server state (the message
names the field and the fix), 1 internal error.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from curate.cli.app import EXIT_INTERNAL, EXIT_INVALID, DebugOpt, JsonOpt, err, headline, out, print_json

HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Local server home (default: $CURATE_ARGILLA_HOME or ~/.local/share/curate/argilla)."),
]

argilla_app = typer.Typer(
    help="""The local Argilla server: the real argilla-server 2.8.0 and its web UI, no Docker or Elasticsearch.

Its own virtual environment is created on first use (under the home); data is SQLite under the home.
With ARGILLA_API_URL and ARGILLA_API_KEY set, `curate annotate` uses that server instead.

Examples:

  curate argilla up                       # http://127.0.0.1:6900, sign in as argilla

  curate argilla password                 # the owner's password (stored 0600 in the home)

  curate argilla users add ann            # an annotator; prints a generated password once

  curate argilla status --json

  curate argilla down
""",
    no_args_is_help=True,
    rich_markup_mode=None,
)

annotate_app = typer.Typer(
    help="""Human preference annotation in Argilla: push records, check progress, pull labels as a new version.

Examples:

  curate annotate push --from prefs@latest --min-submitted 2

  curate annotate push --recipe recipes/annotate.yaml

  curate annotate status --dataset prefs

  curate annotate wait --dataset prefs --min-completed 100 --timeout 86400

  curate annotate pull --dataset prefs --to prefs-human --kto

  curate annotate pull --recipe recipes/annotate.yaml --json
""",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@contextmanager
def _errors(debug: bool = False) -> Iterator[None]:
    """Known errors exit 2 with their message; anything else exits 1."""
    from curate.annotate.progress import AnnotationTimeout
    from curate.annotate.pull import PullError
    from curate.annotate.push import PushError
    from curate.annotate.server import ServerError
    from curate.annotate.users import UserError
    from curate.store import RefError
    from schemas.recipe_loader import RecipeError

    try:
        yield
    except (typer.Exit, KeyboardInterrupt):
        raise
    except RecipeError as e:
        err.print(headline("recipe invalid", f"{len(e.problems)} problem(s)"))
        for p in e.problems:
            err.print(f"  {p}", markup=False, highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except AnnotationTimeout as e:
        err.print(headline("timeout", e, "yellow bold"), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except (ServerError, PushError, PullError, UserError, RefError) as e:
        err.print(headline("error", e), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except Exception as e:
        if type(e).__module__.startswith(("argilla", "httpx")):  # server refused or unreachable: say so
            err.print(headline("Argilla error", f"{type(e).__name__}: {e}"), highlight=False)
            raise typer.Exit(EXIT_INVALID) from None
        err.print(headline("internal error", f"{type(e).__name__}: {e}"), highlight=False)
        if debug:
            err.print(traceback.format_exc(), markup=False, highlight=False)
        else:
            err.print("Re-run with --debug for the traceback, and please report it.")
        raise typer.Exit(EXIT_INTERNAL) from None


@contextmanager
def _bar(description: str, enabled: bool | None = None) -> Iterator[Callable[[int, int], None]]:
    show = sys.stderr.isatty() if enabled is None else enabled
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show,
    )
    with progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int | None = None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


# ---------------------------------------------------------------- curate argilla


@argilla_app.command(
    epilog="Examples:\n\n  curate argilla up\n\n  curate argilla up --port 0 --home /tmp/argilla   # a free port\n\n"
    "  CURATE_ARGILLA_HOME=/data/argilla curate argilla up --host 0.0.0.0   # reachable from the network"
)
def up(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default 6900, or a free one if taken; 0 = free).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the server to answer.")] = 120.0,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Start the local Argilla server (creating its venv, database and owner on first use)."""
    from curate.annotate.server import ArgillaHome

    h = ArgillaHome(home)
    with _errors(debug):
        if not h.venv_ready():
            err.print(f"installing argilla-server into {h.venv} (first use, about a minute)...", markup=False)
        status = h.up(host=host, port=port, timeout=timeout)
    if as_json:
        print_json(status)
        return
    out.print(
        Text.assemble(
            (f"Argilla {status.get('version')}", "green"), f" at {status['url']}  (pid {status['pid']}, home {h.path})"
        )
    )
    out.print(
        Text.assemble("sign in as ", (str(status.get("username")), "bold"), "; password: `curate argilla password`")
    )
    out.print(
        f"(owner password and API key are stored in {h.credentials_file}, mode 0600)", highlight=False, markup=False
    )
    if os.environ.get("ARGILLA_API_URL"):
        err.print(
            headline(
                "note",
                f"ARGILLA_API_URL is set ({os.environ['ARGILLA_API_URL']}): `curate annotate` uses that "
                "server, not this one; unset ARGILLA_API_URL and ARGILLA_API_KEY to use the local server",
                "yellow",
            ),
            highlight=False,
        )


@argilla_app.command(epilog="Examples:\n\n  curate argilla down\n\n  curate argilla down --home /tmp/argilla")
def down(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Stop the local server (its data stays in the home)."""
    from curate.annotate.server import ArgillaHome

    stopped = ArgillaHome(home).down()
    if as_json:
        print_json({"stopped": stopped})
    else:
        out.print("stopped" if stopped else "not running")


@argilla_app.command(epilog="Examples:\n\n  curate argilla status\n\n  curate argilla status --json | jq .url")
def status(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Is the local server running: url, pid, version, health (exit 2 when not running)."""
    from curate.annotate.server import ArgillaHome

    s = ArgillaHome(home).status()
    if as_json:
        print_json(s)
    elif s["running"]:
        health = "[green]healthy[/]" if s["healthy"] else "[red]not answering[/]"
        out.print(
            f"running: {s['url']}  pid {s['pid']}  argilla-server {s.get('version')}  {health}  home {s['home']}",
            markup=False,
        )
    else:
        out.print(f"not running (home {s['home']}); start it with `curate argilla up`", markup=False)
    if not s["running"]:
        raise typer.Exit(EXIT_INVALID)


@argilla_app.command(
    epilog="Examples:\n\n  curate argilla password\n\n  export ARGILLA_API_KEY=$(curate argilla password --api-key)"
)
def password(
    home: HomeOpt = None,
    api_key: Annotated[bool, typer.Option("--api-key", help="Print the owner's API key instead.")] = False,
) -> None:
    """Print the local owner's password (or API key) from the 0600 credentials file."""
    from curate.annotate.server import ArgillaHome

    h = ArgillaHome(home)
    creds = h.credentials()
    if creds is None:
        err.print(f"no credentials in {h.path} yet: run `curate argilla up` first", markup=False)
        raise typer.Exit(EXIT_INVALID)
    sys.stdout.write((creds.api_key if api_key else creds.password) + "\n")


@argilla_app.command(epilog="Examples:\n\n  curate argilla install --venv .argilla-server-venv")
def install(
    home: HomeOpt = None,
    venv: Annotated[Path | None, typer.Option(help="Where to build the venv (default: HOME/venv).")] = None,
) -> None:
    """Build the server's virtual environment from the pinned lock file (done by `up` when missing)."""
    from curate.annotate.server import ArgillaHome

    h = ArgillaHome(home, venv=venv)
    with _errors():
        path = h.install()
    out.print(f"argilla-server ready in {path}", highlight=False, markup=False)


users_app = typer.Typer(help="Argilla users.", no_args_is_help=True, rich_markup_mode=None)
argilla_app.add_typer(users_app, name="users")


@users_app.command(
    "add",
    epilog="Examples:\n\n  curate argilla users add ann\n\n"
    "  ANN_PASSWORD=... curate argilla users add ann --password-env ANN_PASSWORD --workspace team",
)
def users_add(
    username: Annotated[str, typer.Argument(help="The new user's name.")],
    role: Annotated[str, typer.Option(help="annotator, admin or owner.")] = "annotator",
    password_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the password (default: generate one).")
    ] = None,
    workspace: Annotated[str | None, typer.Option(help="Workspace to join (default: the first one).")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user (default: an annotator) to the server and a workspace; prints a generated password once."""
    from curate.annotate.client import resolve
    from curate.annotate.users import add_user

    with _errors():
        pw = None
        if password_env:
            pw = os.environ.get(password_env)
            if pw is None:
                err.print(f"--password-env: {password_env} is not set; export it or leave the option out", markup=False)
                raise typer.Exit(EXIT_INVALID)
        info = add_user(resolve(home), username, role=role, password=pw, workspace=workspace)
    if as_json:
        print_json(info)
        return
    verb = "added" if info["created"] else "exists:"
    out.print(
        f"{verb} {info['username']} ({info['role']}) in workspace {info['workspace']}", highlight=False, markup=False
    )
    if info["password"]:
        out.print(f"password (shown once): {info['password']}", highlight=False, markup=False)


# ---------------------------------------------------------------- curate annotate


def _load_spec(recipe: Path | None) -> tuple[Any, Any]:
    from schemas.annotation import AnnotationSpec
    from schemas.recipe_loader import load_recipe_file

    if recipe is None:
        return None, AnnotationSpec()
    doc = load_recipe_file(recipe)
    if doc.recipe.annotation is None:
        from curate.annotate.push import PushError

        raise PushError(f"{recipe}: no `annotation:` section; add one (see README, Annotation with Argilla)")
    return doc, doc.recipe.annotation


def _override(spec: Any, **values: Any) -> Any:
    from pydantic import ValidationError

    changes = {k: v for k, v in values.items() if v is not None}
    if not changes:
        return spec
    try:
        return spec.model_validate({**spec.model_dump(), **changes})
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        err.print(headline("invalid option", f"{loc}: {first['msg']}"), highlight=False)
        raise typer.Exit(EXIT_INVALID) from None


RecipeOpt = Annotated[Path | None, typer.Option("--recipe", help="Recipe whose `annotation:` section to use.")]
StoreOpt = Annotated[Path, typer.Option("--store", help="Store root folder.")]


@annotate_app.command(
    epilog="Examples:\n\n  curate annotate push --from prefs@latest\n\n"
    "  curate annotate push --from prefs@3 --dataset prefs-round2 --question ranking --question ratings "
    "--min-submitted 2 --guidelines guidelines.md\n\n"
    "  curate annotate push --run runs/prefs/latest\n\n  curate annotate push --recipe recipes/annotate.yaml\n\n"
    "Pushing the same records again creates nothing (record ids come from the content) and keeps responses."
)
def push(
    ref: Annotated[str | None, typer.Option("--from", help="Published version NAME@VERSION (or NAME@latest).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run", help="A run folder (runs/NAME/latest).")] = None,
    recipe: RecipeOpt = None,
    dataset: Annotated[str | None, typer.Option(help="Argilla dataset name (default: source name).")] = None,
    question: Annotated[
        list[str] | None, typer.Option("--question", help="ranking, label, ratings, rationale (repeat).")
    ] = None,
    min_submitted: Annotated[int | None, typer.Option(help="Submitted responses that complete a record.")] = None,
    guidelines: Annotated[Path | None, typer.Option(help="Markdown file with annotator guidelines.")] = None,
    store: StoreOpt = Path("data/store"),
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bar.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Create or update an Argilla dataset from preference records for annotators to rank."""
    from curate.annotate.client import resolve
    from curate.annotate.push import push as do_push
    from curate.annotate.steps import read_source, recipe_source

    with _errors(debug):
        doc, spec = _load_spec(recipe)
        text = guidelines.read_text(encoding="utf-8") if guidelines else None
        spec = _override(spec, questions=question or None, min_submitted=min_submitted, guidelines=text)
        if doc is not None and ref is None and run_dir is None:
            df, label = recipe_source(doc)
            default_name = spec.dataset or doc.recipe.name
        else:
            df, label = read_source(ref, run_dir, store)
            default_name = spec.dataset or label.split("@")[0].removeprefix("run:")
        conn = resolve(home)
        with _bar("pushing records", progress) as bar:
            result = do_push(conn, df, dataset or default_name, spec, label, bar)
    r = result.as_dict()
    if as_json:
        print_json(r)
        return
    out.print(
        Text.assemble(
            ("pushed", "green"),
            f" {r['records']:,} records from {label} to Argilla dataset {r['dataset']} "
            f"({r['created']:,} new, {r['updated']:,} already there) in {r['seconds']} s",
        )
    )
    out.print(f"annotate at {r['url']}", highlight=False, markup=False)


@annotate_app.command(
    epilog="Examples:\n\n  curate annotate pull --dataset prefs\n\n"
    "  curate annotate pull --dataset prefs --to prefs-human --rule majority --min-annotators 2 --kto\n\n"
    "  curate annotate pull --recipe recipes/annotate.yaml --json\n\n"
    "  curate annotate pull --dataset prefs --no-publish --json | jq .annotation.agreement"
)
def pull(
    dataset: Annotated[str | None, typer.Option(help="Argilla dataset to pull.")] = None,
    recipe: RecipeOpt = None,
    to: Annotated[str | None, typer.Option("--to", help="Dataset to publish (default: DATASET-annotated).")] = None,
    rule: Annotated[str | None, typer.Option(help="mean_rank or majority.")] = None,
    ties: Annotated[str | None, typer.Option(help="drop, or suggestion (break ties with the AI suggestion).")] = None,
    min_annotators: Annotated[int | None, typer.Option(help="Submitted responses a record needs.")] = None,
    kto: Annotated[bool | None, typer.Option("--kto/--no-kto", help="Also publish KTO rows.")] = None,
    publish: Annotated[bool, typer.Option(help="Publish the result as the next dataset version.")] = True,
    store: Annotated[Path | None, typer.Option("--store", help="Store root (default: the spec's).")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bar.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Fetch submitted responses, aggregate annotators, publish preference pairs (and KTO rows)."""
    from curate.annotate.client import resolve
    from curate.annotate.pull import publish_annotations
    from curate.annotate.pull import pull as do_pull
    from curate.annotate.steps import merge_ai

    with _errors(debug):
        doc, spec = _load_spec(recipe)
        agg = spec.aggregate.model_dump()
        agg.update({k: v for k, v in {"rule": rule, "ties": ties, "min_annotators": min_annotators}.items() if v})
        output = spec.output.model_dump()
        if kto is not None:
            output["kto"] = kto
        spec = _override(spec, aggregate=agg, output=output)
        name = dataset or spec.dataset or (doc.recipe.name if doc else None)
        if name is None:
            err.print("--dataset: name the Argilla dataset to pull (or give --recipe)")
            raise typer.Exit(EXIT_INVALID)
        with _bar("pulling records", progress) as bar:
            pulled = do_pull(resolve(home), name, spec, progress=lambda done: bar(done, None))
        if doc is not None:  # a recipe that routed AI feedback: the AI's accepted pairs join the humans'
            pulled = merge_ai(pulled, doc)
        published = None
        if publish:
            root = str(store) if store else (doc.recipe.publish.store if doc and doc.recipe.publish else None)
            published = publish_annotations(pulled, to or spec.output.dataset or f"{name}-annotated", spec, root)
    s = pulled.snapshot
    if as_json:
        print_json({"annotation": s, "published": published})
        return
    o = s["outcomes"]
    out.print(
        Text.assemble(
            ("pulled", "green"),
            f" {s['records']:,} records, {s['responses']:,} responses from {name}: "
            f"{o['pair']} decided, {o['tie']} ties, {o['no_majority']} without majority, {o['discarded']} discarded, "
            f"{o['pending']} pending -> {s['pairs']} pairs, {s['kto_rows']} KTO rows",
        )
    )
    a = s["agreement"]
    out.print(
        f"agreement: {a['annotators']} annotators, Cohen's kappa {a.get('cohen_kappa')}, "
        f"Krippendorff's alpha {a.get('krippendorff_alpha')}",
        highlight=False,
        markup=False,
    )
    _annotator_table(s["annotators"])
    for key, p in (published or {}).items():
        state = "published" if p.get("created") else "unchanged"
        out.print(f"{key}: {p.get('ref', p['dataset'])} {state} ({p['rows']} rows)", highlight=False, markup=False)


def _annotator_table(users: dict[str, dict[str, int]]) -> None:
    if not users:
        return
    table = Table(title="responses per annotator")
    for col in ("annotator", "submitted", "discarded", "draft"):
        table.add_column(col, justify="left" if col == "annotator" else "right")
    for user, c in sorted(users.items()):
        table.add_row(user, str(c.get("submitted", 0)), str(c.get("discarded", 0)), str(c.get("draft", 0)))
    out.print(table)


@annotate_app.command(
    "status", epilog="Examples:\n\n  curate annotate status\n\n  curate annotate status --dataset prefs --json"
)
def annotate_status(
    dataset: Annotated[str | None, typer.Option(help="One Argilla dataset (default: all).")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Submitted / pending records per dataset and responses per annotator."""
    from curate.annotate.client import resolve
    from curate.annotate.progress import progress

    with _errors():
        conn = resolve(home)
        names = [dataset] if dataset else sorted(d.name for d in conn.client().datasets)
        states = [progress(conn, n) for n in names]
    if as_json:
        print_json(states)
        return
    if not states:
        out.print("no Argilla datasets yet; push one with `curate annotate push`")
    for p in states:
        out.print(
            Text.assemble(
                (str(p["dataset"]), "bold"),
                f" ({p['workspace']}): {p['completed']:,}/{p['total']:,} complete, "
                f"{p['pending']:,} pending (a record completes with {p['min_submitted']} submitted responses)",
            )
        )
        _annotator_table(p["users"])


@annotate_app.command(
    epilog="Examples:\n\n  curate annotate wait --dataset prefs --min-completed 100 --timeout 86400 --poll 300\n\n"
    "Exit code 2 on timeout (the progress so far is printed)."
)
def wait(
    dataset: Annotated[str, typer.Option(help="Argilla dataset.", show_default=False)],
    min_completed: Annotated[int | None, typer.Option(help="Records that must be complete (default: all).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before giving up.")] = 3600.0,
    poll: Annotated[float, typer.Option(help="Seconds between checks.")] = 30.0,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Wait until enough records are complete (a scheduled flow's step before pulling)."""
    from curate.annotate.client import resolve
    from curate.annotate.progress import wait_for_dataset

    with _errors():
        state = wait_for_dataset(resolve(home), dataset, min_completed, timeout, poll)
    if as_json:
        print_json(state)
    else:
        out.print(
            f"{state['completed']:,}/{state['total']:,} records complete in {dataset}", highlight=False, markup=False
        )
