"""Annotation steps as Prefect tasks: wait for labels and pull them on a schedule.

A recipe with an ``annotation:`` section gets each new version pushed to Argilla by the run
sequence's ``annotation_push`` hook (:mod:`curate.engine.hooks`, under either driver);
:func:`annotation_pull_flow` waits (polling,
with the recipe's ``annotation.wait`` timeout) until enough records are complete, then pulls,
aggregates and publishes the labelled dataset. Served on a schedule (``curate serve RECIPE
--pull --cron ...``), a nightly refresh pushes today's pairs and the next pull collects them.

Example:
    >>> # annotation_pull_flow("recipes/annotate.yaml")    # -> {"published": {...}, "progress": {...}}
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from schemas.recipe_loader import LoadedRecipe, load_recipe_file


@task(name="annotate-wait")
def wait_task(doc: LoadedRecipe) -> dict[str, Any]:
    from curate.annotate.client import resolve
    from curate.annotate.progress import wait_for_dataset

    spec = doc.recipe.annotation
    assert spec is not None
    w = spec.wait
    return wait_for_dataset(
        resolve(), spec.dataset or doc.recipe.name, w.min_completed, w.timeout_s, w.poll_s, spec.workspace
    )


@task(name="annotate-pull", retries=2, retry_delay_seconds=[2, 10])
def pull_task(doc: LoadedRecipe) -> dict[str, Any]:
    from curate.annotate.steps import pull_stage

    pulled, published = pull_stage(doc)
    return {"annotation": pulled.snapshot, "published": published}


@flow(name="annotation-pull", log_prints=True)
def annotation_pull_flow(recipe: str, wait: bool = True) -> dict[str, Any]:
    """Wait until enough records are annotated (``annotation.wait``), then pull and publish them."""
    doc = load_recipe_file(recipe)
    if doc.recipe.annotation is None:
        raise ValueError(f"{recipe}: no annotation section; nothing to pull")
    progress = wait_task(doc) if wait else None
    out = pull_task(doc)
    pub = out["published"] or {}
    lines = [f"# {doc.recipe.name}: annotation pulled", ""]
    for kind, info in pub.items():
        if isinstance(info, dict):
            lines.append(f"- {kind}: `{info.get('dataset')}` created={info.get('created')} rows={info.get('rows')}")
    create_markdown_artifact("\n".join(lines), description="annotation pull")
    return {**out, "progress": progress}
