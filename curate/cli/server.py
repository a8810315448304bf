"""``curate server up | down | status``: a local Prefect server in the background (schedules, the UI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from curate.cli.app import EXIT_INTERNAL, EXIT_OK, JsonOpt, app, err, headline, out

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
        err.print(headline("server did not start", e), highlight=False)
        raise typer.Exit(EXIT_INTERNAL) from None
    verb = "started" if info["started"] else "already running"
    out.print(f"Prefect server {verb} (pid {info['pid']}); UI: {info['ui_url']}", highlight=False, markup=False)
    out.print(f"export PREFECT_API_URL={info['api_url']}", highlight=False, markup=False)


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
        out.print(
            f"running: pid {info['pid']}, API {info['api_url']}, log {info['log']}", highlight=False, markup=False
        )
    else:
        out.print(f"not running (home {info['home']})", highlight=False, markup=False)
    raise typer.Exit(EXIT_OK if info["running"] else EXIT_INTERNAL)
