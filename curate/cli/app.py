"""The ``curate`` application object, consoles, shared options and error helpers of every command group.

Exit codes: 0 success; 2 invalid recipe or input (message says what to fix); 1 internal error.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from schemas.recipe_loader import RecipeError

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
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]


def headline(title: str, detail: object = None, style: str = "red bold") -> Text:
    """``title`` in ``style``, then ``": detail"`` as plain text.

    Messages carry user data (paths, values, server replies) that may hold ``[...]``: printed
    through markup they would be restyled, swallowed or raise. A :class:`Text` is never parsed.

    Example:
        >>> headline("input error", "no file matches data/[abc].jsonl").plain
        'input error: no file matches data/[abc].jsonl'
    """
    return Text.assemble((title, style), "" if detail is None else f": {detail}")


def _fail_recipe(e: RecipeError, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": False, "problems": [p.__dict__ for p in e.problems]}, indent=2))
    else:
        err.print(headline("recipe invalid", f"{len(e.problems)} problem(s)"))
        for p in e.problems:
            err.print(f"  {p}", markup=False, highlight=False)
    raise typer.Exit(EXIT_INVALID)


def print_json(data: object) -> None:
    """``data`` as indented JSON on stdout (``--json`` of the command groups)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _lookup(getter: Callable[[str], T], name: str) -> T:
    """A registry entry by name; an unknown name prints the registry's message and exits 2."""
    try:
        return getter(name)
    except KeyError as e:
        err.print(str(e.args[0]), highlight=False, markup=False)
        raise typer.Exit(EXIT_INVALID) from None


def _internal(e: BaseException, debug: bool) -> None:
    err.print(headline("internal error", f"{type(e).__name__}: {e}"), highlight=False)
    if debug:
        err.print(traceback.format_exc(), markup=False, highlight=False)
    else:
        err.print("Re-run with --debug for the traceback, and please report it.")
    raise typer.Exit(EXIT_INTERNAL)


LocalOpt = Annotated[
    bool, typer.Option("--local", help="Run in this process, step by step, without Prefect (for debugging).")
]


def _prefect_env(quiet: bool = False) -> dict:
    """Choose the Prefect API before Prefect is imported (see :mod:`flows.environment`)."""
    from flows.environment import choose_api

    api = choose_api()
    if api["source"] == "temporary" and not quiet:
        err.print(
            "no Prefect server: starting a temporary one for this run (10-20 s). `curate server up` once, "
            "and later runs reuse it and show in its UI; --local runs without Prefect.",
            highlight=False,
        )
    return api
