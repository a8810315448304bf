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

import difflib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML

from curate.convert import Converter, all_converters, get_converter
from curate.filters import all_filters, get_filter
from curate.ingest import InputError, InputFile, discover, read_batches
from schemas.fields import field_names
from schemas.kinds import Kind, content_schema
from schemas.recipe import Recipe, SourceSpec, is_url, resolve_secrets
from schemas.recipe_loader import (
    LoadedRecipe,
    Problem,
    RecipeError,
    format_loc,
    line_of,
    load_recipe_file,
    read_recipe_text,
    to_plain,
)
from schemas.stages import DecontaminateStage, FilterStage

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
    where: Callable[[tuple[Any, ...], str], Problem],
    i: int,
    spec: SourceSpec,
    want: Kind | None,
    problems: list[Problem],
    want_label: str = "output.kind",
) -> tuple[list[Converter], list[BaseModel]]:
    """Check one source's converter chain, options and column map (``want``: the output kind)."""
    loc: tuple[Any, ...] = ("sources", i, "convert")
    chain: list[Converter] = []
    for step, name in enumerate(spec.steps):
        try:
            chain.append(get_converter(name))
        except KeyError:
            near = difflib.get_close_matches(name, list(all_converters()), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(near)}?" if near else "; `curate converters` lists them"
            problems.append(
                where(loc if isinstance(spec.convert, str) else (*loc, step), f"unknown converter {name!r}{hint}")
            )
    if len(chain) != len(spec.steps):
        return [], []
    if chain[0].input is not None:
        problems.append(
            where(
                loc,
                f"{chain[0].name} converts {chain[0].input} records, so it cannot read raw input; "
                "put a raw converter first",
            )
        )
    for prev, nxt in itertools.pairwise(chain):
        if nxt.input != prev.output:
            problems.append(
                where(
                    loc, f"{prev.name} produces {prev.output} records but {nxt.name} reads {nxt.input or 'raw'} records"
                )
            )
    if want is not None and chain[-1].output != want:
        problems.append(where(loc, f"{chain[-1].name} produces {chain[-1].output} records, but {want_label} is {want}"))
    if len(spec.chain_options) > len(chain) - 1:
        problems.append(
            where(
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
                problems.append(where((*opt_loc, *err["loc"]), f"{conv.name} option {key}: {msg}"))
    known = {f.name for f in chain[0].fields}
    for key in spec.columns:
        if key not in known:
            problems.append(
                where(
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
    missing = [
        (fld.name, sp.spec.columns.get(fld.name, fld.name))
        for fld in sp.chain[0].fields
        if fld.required and sp.spec.columns.get(fld.name, fld.name) not in seen
    ]
    if missing:
        rows = "first row" if n == 1 else f"first {n} rows"
        verb = "does" if n == 1 else "do"
        needs = ", ".join(f"{name!r} (column {col!r})" for name, col in missing)
        fix = ", ".join(f"{name}: <column>" for name, _ in missing)
        problems.append(
            doc.problem(
                ("sources", sp.index, "columns"),
                f"{sp.chain[0].name} needs {needs}, which the {rows} of {f.name} {verb} not have "
                f"(columns: {', '.join(sorted(seen)[:12])}); map them: columns: {{{fix}}}",
            )
        )


def _check_stages(doc: LoadedRecipe, base: Path, check_files: bool, problems: list[Problem]) -> None:
    """Every stage names things that exist for the output kind: rules, params, fields, references."""
    kind = doc.recipe.record_kind
    fields = field_names(kind)
    numeric = [c for c, t in content_schema(kind).items() if t.is_numeric()]
    for i, stage in enumerate(doc.recipe.stages):
        loc: tuple[Any, ...] = ("stages", i)
        if isinstance(stage, FilterStage):
            try:
                flt = get_filter(stage.rule)
            except KeyError as e:
                near = difflib.get_close_matches(stage.rule, list(all_filters()), n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(near)}?" if near else ""
                problems.append(doc.problem((*loc, "rule"), str(e.args[0]) + hint))
                continue
            try:
                flt.Params.model_validate(stage.params)
            except ValidationError as e:
                for err in e.errors():
                    msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
                    problems.append(doc.problem((*loc, "params", *err["loc"]), f"{stage.rule}: {msg}"))
            field = stage.field or flt.default_field
            if field not in fields:
                problems.append(
                    doc.problem(
                        (*loc, "field"), f"{kind} records have no field {field!r}; use one of {', '.join(fields)}"
                    )
                )
            continue
        for name in stage.key or []:
            if name not in fields:
                problems.append(
                    doc.problem((*loc, "key"), f"{kind} records have no field {name!r}; use one of {', '.join(fields)}")
                )
        score = getattr(stage, "score_field", None)
        if score is not None and score not in numeric:
            choices = ", ".join(numeric) or f"none for {kind} records"
            problems.append(doc.problem((*loc, "score_field"), f"{score!r} is not a numeric column ({choices})"))
        if isinstance(stage, DecontaminateStage):
            for j, ref in enumerate(stage.against):
                rloc = (*loc, "against", j)
                if check_files:
                    try:
                        discover(ref.paths, ref.format, base)
                    except InputError as e:
                        problems.append(doc.problem((*rloc, "path"), str(e)))
                if ref.convert is not None:
                    steps = [ref.convert] if isinstance(ref.convert, str) else ref.convert
                    try:
                        out_kind = [get_converter(c) for c in steps][-1].output
                    except KeyError as e:
                        problems.append(doc.problem((*rloc, "convert"), str(e.args[0])))
                        continue
                    if ref.field not in field_names(out_kind):
                        problems.append(
                            doc.problem(
                                (*rloc, "field"),
                                f"{out_kind} records have no field "
                                f"{ref.field!r}; use one of "
                                f"{', '.join(field_names(out_kind))}",
                            )
                        )


class DatasetSourceError(ValueError):
    """A ``dataset:`` source that names no published version."""


def _dataset_files(ref: str, store: str, options: dict[str, str] | None = None) -> list[InputFile]:
    """The Parquet files of published version ``ref`` (read as they are: lineage names each file);
    a remote store's files are read through its filesystem (``options``: resolved storage options)."""
    from curate.store import RefError, Store, StoreError

    try:
        st = Store(store, options)
        files = st.version_files(ref)
    except (RefError, StoreError) as e:
        raise DatasetSourceError(f"{e}; publish it first, or check dataset and store") from None
    if st.location.remote:
        fs = st.location.fs
        return [InputFile(fs._strip_protocol(str(f)), "parquet", "none", fs) for f in files]
    return [InputFile(f, "parquet", "none") for f in files]


def _check_store(doc: LoadedRecipe, problems: list[Problem]) -> None:
    """A publish store that cannot work (a file where its folder should be, a missing ${ENV}) fails
    here, before any work, not after the run."""
    spec = doc.recipe.publish
    if spec is None:
        return
    from curate.store import Store, StoreError

    try:
        Store(spec.store, spec.storage_options).check_usable()
    except KeyError as e:
        problems.append(doc.problem(("publish", "storage_options"), str(e.args[0])))
    except StoreError as e:
        problems.append(doc.problem(("publish", "store"), str(e)))
    except Exception as e:  # an unreachable object store, missing credentials
        problems.append(doc.problem(("publish", "store"), f"cannot reach store {spec.store}: {type(e).__name__}: {e}"))


def _kind_label(doc: LoadedRecipe) -> str:
    """Which recipe key names the kind the sources must produce (for messages)."""
    return "feedback.input_kind" if doc.recipe.feedback is not None else "output.kind"


def escaping_paths(doc: LoadedRecipe, base_dir: Path | None = None, cwd: Path | None = None) -> list[Problem]:
    """Warnings for relative input paths that climb out of the recipe's folder (``../../etc/x``) and
    out of the working directory too.

    ``../data/raw/x.jsonl`` from a ``recipes/`` folder inside the project you run from is the common
    layout and passes; a path that leaves both the recipe's folder and the working directory reads
    files neither holds, so it is named on every ``validate`` and ``run``. Absolute paths and URLs are
    deliberate choices and pass silently. ``cwd``: the working directory (default: the process's).

    Example:
        >>> from schemas.recipe_loader import load_recipe_doc
        >>> doc = load_recipe_doc("name: d\\noutput: {kind: text}\\nsources:\\n"
        ...                       "  - {name: a, path: ../../etc/hosts, convert: text}\\n", "/r/x.yaml")
        >>> [w.message.split(";")[0] for w in escaping_paths(doc, Path("/r/recipes"), cwd=Path("/r"))]
        ["'../../etc/hosts' is outside the recipe's folder and the working directory (/etc/hosts)"]
        >>> escaping_paths(doc, Path("/r/recipes"), cwd=Path("/"))  # under the working directory: fine
        []
    """
    base = base_dir or Path(doc.file).resolve().parent
    here = (cwd or Path.cwd()).resolve()
    found = []
    refs: list[tuple[tuple[Any, ...], list[str]]] = [
        (("sources", i), s.paths) for i, s in enumerate(doc.recipe.sources)
    ]
    for j, stage in enumerate(doc.recipe.stages):
        for k, ref in enumerate(getattr(stage, "against", None) or []):
            refs.append((("stages", j, "against", k), ref.paths))
    for loc, paths in refs:
        for pattern in paths:
            if is_url(pattern) or Path(pattern).expanduser().is_absolute():
                continue
            where = Path(os.path.normpath(base / pattern))
            if not where.is_relative_to(base) and not where.is_relative_to(here):
                found.append(
                    doc.problem(
                        (*loc, "path"),
                        f"{pattern!r} is outside the recipe's folder and the working directory ({where}); "
                        "write it as an absolute path if that is meant",
                    )
                )
    return found


def plan(doc: LoadedRecipe, base_dir: Path | None = None, *, check_files: bool = True, peek: bool = False) -> Plan:
    """Validate the recipe's pipeline and resolve its inputs; raise RecipeError with all problems."""
    base = base_dir or Path(doc.file).resolve().parent
    problems: list[Problem] = []
    sources: list[SourcePlan] = []
    for i, spec in enumerate(doc.recipe.sources):
        chain, options = _chain(doc.problem, i, spec, doc.recipe.record_kind, problems, _kind_label(doc))
        sp = SourcePlan(i, spec, chain, options)
        if check_files:
            try:
                options = resolve_secrets(spec.storage_options)
                if spec.dataset is not None:
                    sp.files = _dataset_files(spec.dataset, spec.store, options)
                else:
                    sp.files = discover(spec.paths, spec.format, base, spec.compression, options)
            except DatasetSourceError as e:
                problems.append(doc.problem(("sources", i, "dataset"), str(e)))
            except KeyError as e:
                problems.append(doc.problem(("sources", i, "storage_options"), str(e.args[0])))
            except InputError as e:
                problems.append(doc.problem(("sources", i, "path"), str(e)))
        if peek:
            _peek(doc, sp, problems)
        sources.append(sp)
    _check_stages(doc, base, check_files, problems)
    if check_files:
        _check_feedback_models(doc, problems)
        _check_store(doc, problems)
    if problems:
        raise RecipeError(problems)
    return Plan(doc.recipe, base, sources)


def _model_problem(model: str, reward: bool = False) -> str | None:
    """Why an in-process model reference cannot work here, checked without loading anything."""
    from curate.models.source import ModelError, classify_source

    hint = "; give a model folder (with config.json), a .gguf file, package:PKG/FILE or a hub id"
    try:
        if reward:  # a `curate train` run (its manifest) or a classifier folder
            from curate.feedback.reward import locate

            locate(model)
            return None
        classify_source(model)
    except ModelError as e:
        return str(e).removeprefix("model.base: ").removeprefix("judge.model: ") + ("" if reward else hint)
    return None


def _check_feedback_models(doc: LoadedRecipe, problems: list[Problem]) -> None:
    """Every in-process generator and judge model of ``feedback:`` exists (endpoints are not called)."""
    fb = doc.recipe.feedback
    if fb is None:
        return
    refs = [(("feedback", "generators", i, "model"), g.model, False) for i, g in enumerate(fb.generators)]
    refs.append((("feedback", "judge", "model"), fb.judge.model, fb.judge.kind == "reward_model"))
    for loc, model, reward in refs:
        why = _model_problem(model, reward) if model else None
        if why:
            problems.append(doc.problem(loc, why))


def _partial_problems(path: Path) -> list[Problem]:
    """Chain checks for the sources that are valid on their own, when the recipe as a whole is not.

    So a recipe with a typo in ``output`` still gets its unknown converter reported in the same run.
    """
    text = read_recipe_text(path)
    try:
        root = YAML(typ="rt").load(text)
        raw_sources = root.get("sources") if isinstance(root, dict) else None
    except Exception:  # the YAML error itself is already reported by the loader
        return []
    if not isinstance(raw_sources, list):
        return []
    raw_kind = root.get("output", {}).get("kind") if isinstance(root.get("output"), dict) else None
    want = Kind(raw_kind) if raw_kind in {k.value for k in Kind} else None
    out: list[Problem] = []
    for i, raw in enumerate(raw_sources):
        try:
            spec = SourceSpec.model_validate(to_plain(raw))
        except (ValueError, RecursionError):  # invalid, or an alias bomb: already reported by the loader
            continue
        _chain(lambda loc, msg: Problem(str(path), line_of(root, loc), format_loc(loc), msg), i, spec, want, out)
    return out


def load_and_plan(path: str | Path, *, peek: bool = False, check_files: bool = True) -> Plan:
    """Load a recipe file and plan it; a RecipeError lists every problem found in either step."""
    try:
        doc = load_recipe_file(path)
    except RecipeError as e:
        raise RecipeError(e.problems + _partial_problems(Path(path))) from None
    return plan(doc, peek=peek, check_files=check_files)
