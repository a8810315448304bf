"""``curate converters | filters | schema``: what recipes can use, with examples."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from curate.cli.app import _lookup, app, out
from curate.convert import all_converters, get_converter
from schemas.kinds import Kind
from schemas.recipe import recipe_json_schema
from schemas.records import RECORD_MODELS


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
    out.print(Text.assemble((conv.name, "bold"), f": {conv.summary}"))
    out.print(
        f"reads {conv.input.value if conv.input else 'raw records'}, writes {conv.output.value} records", markup=False
    )
    for f in conv.fields:
        out.print(
            f"  field {f.name} ({f.type}{', required' if f.required else ', optional'}): {f.doc}",
            highlight=False,
            markup=False,
        )
    for key, info in conv.options.model_fields.items():
        out.print(f"  option {key} = {info.default!r}", highlight=False, markup=False)
    if conv.example:
        out.print(
            "example:\n" + "\n".join("  " + line for line in conv.example.splitlines()), highlight=False, markup=False
        )


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
    out.print(Text.assemble((name, "bold"), f": {cls.summary} (default field: {cls.default_field})"))
    for key, info in cls.Params.model_fields.items():
        doc = f"  {info.description}" if info.description else ""
        out.print(f"  {key} = {info.default!r}{doc}", highlight=False, markup=False)
    out.print(
        f"example:\n  stages:\n    - {{type: filter, rule: {name}, field: {cls.default_field}}}",
        highlight=False,
        markup=False,
    )


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
