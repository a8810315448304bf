"""Check a whole recipe before anything runs: converter chains, options, column maps, inputs.

:func:`plan` turns a loaded recipe into a :class:`Plan` (one :class:`SourcePlan` per source) or
raises :class:`~schemas.recipe_loader.RecipeError` listing every problem with its YAML line:
unknown converters, a chain whose kinds do not connect, a final kind that is not the output kind,
invalid converter options, column-map entries for fields the converter does not read, inputs that
match no file, and (with ``peek``) required fields that the first rows of an input do not have.

Example:
    >>> from schemas.recipe_loader import load_recipe_doc
    >>> doc = load_recipe_doc("name: d\\noutput: {kind: kto}\\nsources:\\n"
    ...                       "  - {name: a, path: x.jsonl, convert: alpaca_to_messages}\\n")
    >>> try:
    ...     plan(doc, check_files=False)
    ... except RecipeError as e:
    ...     print(e.problems[0].message)
    alpaca_to_messages produces sft records, but output.kind is kto
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from curate.convert import Converter, all_converters, get_converter
from curate.ingest import InputError, InputFile, discover, read_batches
from schemas.recipe import Recipe, SourceSpec, resolve_secrets
from schemas.recipe_loader import LoadedRecipe, Problem, RecipeError

PEEK_ROWS = 100


@dataclass
class SourcePlan:
    """What to do with one source: its files and its converter chain with validated options."""

    index: int
    spec: SourceSpec
    chain: list[Converter]
    options: list[BaseModel]
    files: list[InputFile] = field(default_factory=list)


@dataclass
class Plan:
    recipe: Recipe
    base_dir: Path
    sources: list[SourcePlan]


def _chain(
    doc: LoadedRecipe, i: int, spec: SourceSpec, problems: list[Problem]
) -> tuple[list[Converter], list[BaseModel]]:
    loc: tuple[Any, ...] = ("sources", i, "convert")
    chain: list[Converter] = []
    for step, name in enumerate(spec.steps):
        try:
            chain.append(get_converter(name))
        except KeyError:
            near = [n for n in all_converters() if name.split("_")[0] in n]
            hint = f"; did you mean {', '.join(near)}?" if near else "; `curate converters` lists them"
            problems.append(
                doc.problem(loc if isinstance(spec.convert, str) else (*loc, step), f"unknown converter {name!r}{hint}")
            )
    if len(chain) != len(spec.steps):
        return [], []
    if chain[0].input is not None:
        problems.append(
            doc.problem(
                loc,
                f"{chain[0].name} converts {chain[0].input} records, so it cannot read raw input; "
                "put a raw converter first",
            )
        )
    for prev, nxt in itertools.pairwise(chain):
        if nxt.input != prev.output:
            problems.append(
                doc.problem(
                    loc, f"{prev.name} produces {prev.output} records but {nxt.name} reads {nxt.input or 'raw'} records"
                )
            )
    want = doc.recipe.output.kind
    if chain[-1].output != want:
        problems.append(
            doc.problem(loc, f"{chain[-1].name} produces {chain[-1].output} records, but output.kind is {want}")
        )
    if len(spec.chain_options) > len(chain) - 1:
        problems.append(
            doc.problem(
                ("sources", i, "chain_options"),
                f"{len(spec.chain_options)} entries for {len(chain) - 1} later converter(s)",
            )
        )
    options: list[BaseModel] = []
    raw_opts = [spec.options, *spec.chain_options] + [{}] * max(0, len(chain) - 1 - len(spec.chain_options))
    for step, (conv, opts) in enumerate(zip(chain, raw_opts, strict=False)):
        opt_loc: tuple[Any, ...] = ("sources", i, "options") if step == 0 else ("sources", i, "chain_options", step - 1)
        try:
            options.append(conv.options.model_validate(opts))
        except ValidationError as e:
            for err in e.errors():
                key = ".".join(str(p) for p in err["loc"])
                msg = "unknown option" if err["type"] == "extra_forbidden" else err["msg"]
                problems.append(doc.problem((*opt_loc, *err["loc"]), f"{conv.name} option {key}: {msg}"))
    known = {f.name for f in chain[0].fields}
    for key in spec.columns:
        if key not in known:
            problems.append(
                doc.problem(
                    ("sources", i, "columns", key),
                    f"{chain[0].name} has no field {key!r}; its fields are {', '.join(sorted(known))}",
                )
            )
    return chain, options


def _peek(doc: LoadedRecipe, sp: SourcePlan, problems: list[Problem]) -> None:
    """Check that required fields exist in the first rows of the first input file."""
    if not sp.files or not sp.chain:
        return
    f = sp.files[0]
    seen: set[str] = set()
    n = 0
    lim = doc.recipe.limits
    for batch in read_batches(
        f,
        batch_rows=PEEK_ROWS,
        max_line_bytes=lim.max_line_bytes,
        text_unit=sp.spec.text_unit,
        csv_delimiter=sp.spec.csv.delimiter,
        csv_quote=sp.spec.csv.quote,
        csv_header=sp.spec.csv.header,
    ):
        for rec in batch.records:
            seen.update(rec)
        n += len(batch.records)
        break
    if n == 0:
        return
    for fld in sp.chain[0].fields:
        col = sp.spec.columns.get(fld.name, fld.name)
        if fld.required and col not in seen:
            cols = ", ".join(sorted(seen)[:12])
            problems.append(
                doc.problem(
                    ("sources", sp.index, "columns"),
                    f"{sp.chain[0].name} needs field {fld.name!r} from column {col!r}, which the first {n} rows of "
                    f"{f.name} do not have (columns: {cols}); map it: columns: {{{fld.name}: <column>}}",
                )
            )


def plan(doc: LoadedRecipe, base_dir: Path | None = None, *, check_files: bool = True, peek: bool = False) -> Plan:
    """Validate the recipe's pipeline and resolve its inputs; raise RecipeError with all problems."""
    base = base_dir or Path(doc.file).resolve().parent
    problems: list[Problem] = []
    sources: list[SourcePlan] = []
    for i, spec in enumerate(doc.recipe.sources):
        chain, options = _chain(doc, i, spec, problems)
        sp = SourcePlan(i, spec, chain, options)
        if check_files:
            try:
                options = resolve_secrets(spec.storage_options)
                sp.files = discover(spec.paths, spec.format, base, spec.compression, options)
            except KeyError as e:
                problems.append(doc.problem(("sources", i, "storage_options"), str(e.args[0])))
            except InputError as e:
                problems.append(doc.problem(("sources", i, "path"), str(e)))
        if peek:
            _peek(doc, sp, problems)
        sources.append(sp)
    if problems:
        raise RecipeError(problems)
    return Plan(doc.recipe, base, sources)
