"""Serve the refresh flow as a scheduled Prefect deployment (``curate serve``).

The deployment runs :func:`flows.curation.refresh_flow` on the recipe every ``cron`` or
``interval``; the serving process executes the runs (so the recipe's paths must be readable
from it). It needs a Prefect server that outlives it: ``curate server up`` for a local one, or
``PREFECT_API_URL`` pointing at a team's server. To use a work pool instead of this process,
deploy ``flows/curation.py:refresh_flow`` with ``prefect deploy`` (see the README).

Example:
    >>> # serve_refresh(Path("recipes/quickstart.yaml"), cron="0 3 * * *")   # blocks, runs nightly at 03:00
"""

from __future__ import annotations

from pathlib import Path


def api_url() -> str | None:
    """The Prefect API this process talks to, if one is configured (not the temporary one)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def serve_refresh(
    recipe: Path,
    *,
    cron: str | None = None,
    interval: float | None = None,
    out_dir: Path | None = None,
    name: str | None = None,
    runner: str | None = None,
    pull: bool = False,
) -> None:
    """Register the deployment with its schedule and execute its runs until interrupted.

    ``pull``: serve the annotation pull (wait for labels, pull, publish) instead of the refresh.
    """
    from flows.annotation import annotation_pull_flow
    from flows.curation import refresh_flow
    from flows.runners import task_runner
    from schemas.recipe_loader import load_recipe_file

    if (cron is None) == (interval is None):
        raise ValueError("give exactly one of --cron or --interval")
    if api_url() is None:
        raise RuntimeError(
            "schedules need a Prefect server: run `curate server up` and export the PREFECT_API_URL it "
            "prints, or export PREFECT_API_URL for your team's server"
        )
    doc = load_recipe_file(recipe)
    if pull:
        if doc.recipe.annotation is None:
            raise ValueError(f"{recipe}: --pull needs an annotation: section in the recipe")
        annotation_pull_flow.serve(
            name=name or f"{doc.recipe.name}-pull",
            cron=cron,
            interval=interval,
            parameters={"recipe": str(recipe.resolve()), "wait": True},
            tags=["curate", "annotation", doc.recipe.name],
            description=f"Pull annotations of {doc.recipe.name} from Argilla and publish them",
        )
        return
    fl = refresh_flow.with_options(task_runner=task_runner(runner or doc.recipe.flow.runner))
    fl.serve(
        name=name or f"{doc.recipe.name}-refresh",
        cron=cron,
        interval=interval,
        parameters={
            "recipe": str(recipe.resolve()),
            "out_dir": str(out_dir.resolve()) if out_dir else None,
            "report": True,
        },
        tags=["curate", doc.recipe.name],
        description=f"Incremental refresh of {doc.recipe.name} from {recipe}",
    )
