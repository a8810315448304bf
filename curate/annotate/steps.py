"""The recipe's annotation stages: push a published (or just-run) dataset, pull and publish labels.

A recipe with ``output.kind: preference`` and an ``annotation:`` section (``schemas.annotation``)
gets two stages that flows and ``curate annotate push/pull --recipe`` call:

- :func:`push_stage`: the recipe's dataset (``publish.dataset``@latest, else ``runs/NAME/latest``)
  -> the Argilla dataset ``annotation.dataset`` (default: the recipe name);
- :func:`pull_stage`: that Argilla dataset -> ``annotation.output.dataset`` (default
  ``NAME-annotated``) as the next version, with the annotation snapshot in its manifest.

Humans and AI together (a recipe with ``feedback.route.to_annotators: uncertain`` or ``all``): the
push sends the run's *routed* prompts (``uncertain.parquet``: ties, flipped and low-confidence AI
verdicts) with the AI scores as suggestions, instead of the published pairs; the pull publishes
the human-decided pairs together with the AI pairs the recipe accepted (its published version),
each row's ``judge`` saying who decided it (``human`` with the annotators, or ``ai`` with the model).

Example:
    >>> # push_stage(load_recipe_file("recipes/annotate.yaml"))            # -> PushResult
    >>> # wait_for_dataset(resolve(), "prefs", min_completed=100)          # a flow's waiting step
    >>> # pull_stage(load_recipe_file("recipes/annotate.yaml"))            # -> published refs
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from curate.annotate.client import Connection, resolve
from curate.annotate.pull import Pulled, publish_annotations, pull
from curate.annotate.push import PushError, PushResult, push
from schemas.annotation import AnnotationSpec
from schemas.recipe_loader import LoadedRecipe


def read_source(
    ref: str | None = None, run_dir: str | Path | None = None, store: str | Path = "data/store"
) -> tuple[pl.DataFrame, str]:
    """Records to annotate and a label for them: a store version ``NAME@VERSION`` or a run folder."""
    if (ref is None) == (run_dir is None):
        raise PushError("give exactly one source: --from NAME@VERSION (a published version) or --run RUN_DIR")
    if ref is not None:
        from curate.store import Store

        st = Store(store)
        name, version = st.resolve(ref)
        return st.read(f"{name}@{version}"), f"{name}@{version}"
    folder = Path(run_dir)  # type: ignore[arg-type]
    files = (
        sorted((folder / "data").glob("*.parquet")) if (folder / "data").is_dir() else sorted(folder.glob("*.parquet"))
    )
    if not files:
        raise PushError(
            f"--run {folder}: no Parquet files in {folder / 'data'} (give a run folder, e.g. runs/NAME/latest)"
        )
    return pl.read_parquet(files), f"run:{folder.resolve().name if folder.name == 'latest' else folder.name}"


def _spec(doc: LoadedRecipe) -> AnnotationSpec:
    spec = doc.recipe.annotation
    if spec is None:
        raise PushError(
            f"{doc.file}: no annotation section; add `annotation: {{}}` (see README, Annotation with Argilla)"
        )
    return spec


def recipe_source(doc: LoadedRecipe) -> tuple[pl.DataFrame, str]:
    """The records a recipe produced: its published dataset's latest version, else its latest run."""
    recipe = doc.recipe
    if recipe.publish is not None:
        return read_source(ref=f"{recipe.publish.dataset or recipe.name}@latest", store=recipe.publish.store)
    return read_source(run_dir=Path(recipe.output.dir) / recipe.name / "latest")


def _routes(doc: LoadedRecipe) -> bool:
    return doc.recipe.feedback is not None and doc.recipe.feedback.routes_to_annotators


def routed_source(doc: LoadedRecipe, run_dir: str | Path | None = None) -> tuple[pl.DataFrame, str]:
    """The prompts a feedback run routed to annotators (``uncertain.parquet`` of ``run_dir``, default
    the recipe's latest run), as prompt + two responses (the AI's best and worst) + their scores."""
    folder = Path(run_dir) if run_dir is not None else Path(doc.recipe.output.dir) / doc.recipe.name / "latest"
    path = folder / "uncertain.parquet"
    if not path.exists():
        raise PushError(f"{path} is missing: run the recipe first (`curate run {doc.file}`)")
    return pl.read_parquet(path), f"run:{folder.resolve().name}"


def push_stage(
    doc: LoadedRecipe,
    conn: Connection | None = None,
    progress: Callable[[int, int], None] | None = None,
    run_dir: str | Path | None = None,
) -> PushResult:
    """Push the recipe's records to its Argilla dataset (see the module docstring).

    ``run_dir``: the run whose routed prompts go out (recipes that route AI feedback to annotators).
    """
    spec = _spec(doc)
    df, label = routed_source(doc, run_dir) if _routes(doc) else recipe_source(doc)
    return push(conn or resolve(), df, spec.dataset or doc.recipe.name, spec, label, progress)


def accepted_ai_pairs(doc: LoadedRecipe) -> tuple[pl.DataFrame, str | None]:
    """The AI-judged pairs a routing recipe published (its dataset's latest version), contract columns."""
    from curate.store import Store
    from schemas.kinds import Kind, polars_schema

    recipe = doc.recipe
    empty = pl.DataFrame(schema=polars_schema(Kind.PREFERENCE))
    if recipe.publish is None:
        return empty, None
    store = Store(recipe.publish.store)
    name = recipe.publish.dataset or recipe.name
    if name not in store.names() or not store.versions(name):
        return empty, None
    ref = f"{name}@{store.resolve(f'{name}@latest')[1]}"
    return store.read(ref).select(list(polars_schema(Kind.PREFERENCE))), ref


def merge_ai(pulled: Pulled, doc: LoadedRecipe) -> Pulled:
    """``pulled`` with the AI pairs a routing recipe accepted added (a human decision wins over an
    identical AI row); ``pulled`` itself for a recipe that does not route AI feedback."""
    from curate.annotate.pull import build_kto

    if not _routes(doc):
        return pulled
    ai, ref = accepted_ai_pairs(doc)
    if ai.height == 0:
        return pulled
    pref = pl.concat([pulled.preference, ai.cast(dict(pulled.preference.schema))], how="vertical")
    pref = pref.unique("id", keep="first", maintain_order=True)
    snapshot = {**pulled.snapshot, "merged_ai": {"from": ref, "rows": ai.height}}
    return Pulled(pref, build_kto(pref), pulled.decisions, pulled.responses, snapshot)


def pull_stage(
    doc: LoadedRecipe, conn: Connection | None = None, publish: bool = True
) -> tuple[Pulled, dict[str, Any] | None]:
    """Pull the recipe's Argilla dataset, aggregate, and publish the labelled version(s)."""
    spec = _spec(doc)
    name = spec.dataset or doc.recipe.name
    pulled = merge_ai(pull(conn or resolve(), name, spec), doc)
    if not publish:
        return pulled, None
    store = doc.recipe.publish.store if doc.recipe.publish else spec.output.store
    target = (
        spec.output.dataset
        or f"{(doc.recipe.publish.dataset if doc.recipe.publish else None) or doc.recipe.name}-annotated"
    )
    return pulled, publish_annotations(pulled, target, spec, store)
