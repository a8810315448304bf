"""Serve a recipe as a scheduled Prefect deployment (``curate serve``): one mechanism for both kinds.

The deployment runs :func:`flows.lifecycle.flow.lifecycle_flow` every ``cron`` or ``interval``
(default: the lifecycle recipe's ``schedule:``): a lifecycle recipe runs the whole data-to-model
loop; a curation recipe is the lifecycle with no label, train or gate step, i.e. the incremental
refresh (deployment ``NAME-refresh``). The serving process executes the runs (so the recipe's
paths must be readable from it). It needs a Prefect server that outlives it: ``curate server up`` for a local one, or
``PREFECT_API_URL`` pointing at a team's server. To use a work pool instead of this process,
deploy ``flows/lifecycle/flow.py:lifecycle_flow`` with ``prefect deploy`` (see the README).

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
    out_dir: str | Path | None = None,
    name: str | None = None,
    runner: str | None = None,
    pull: bool = False,
) -> None:
    """Register the deployment with its schedule and execute its runs until interrupted.

    ``pull``: serve the annotation pull (wait for labels, pull, publish) instead of the refresh.
    """
    from flows.annotation import annotation_pull_flow
    from flows.runners import task_runner
    from schemas.recipe_loader import load_recipe_file

    if cron is not None and interval is not None:
        raise ValueError("give exactly one of --cron or --interval")
    if api_url() is None:
        raise RuntimeError(
            "schedules need a Prefect server: run `curate server up` and export the PREFECT_API_URL it "
            "prints, or export PREFECT_API_URL for your team's server"
        )
    if pull:
        doc = load_recipe_file(recipe)
        if doc.recipe.annotation is None:
            raise ValueError(f"{recipe}: --pull needs an annotation: section in the recipe")
        if (cron is None) == (interval is None):
            raise ValueError("give exactly one of --cron or --interval")
        annotation_pull_flow.serve(
            name=name or f"{doc.recipe.name}-pull",
            cron=cron,
            interval=interval,
            parameters={"recipe": str(recipe.resolve()), "wait": True},
            tags=["curate", "annotation", doc.recipe.name],
            description=f"Pull annotations of {doc.recipe.name} from Argilla and publish them",
        )
        return
    from flows.lifecycle.flow import lifecycle_flow
    from flows.lifecycle.sequence import load_any

    out = str(Path(out_dir).resolve()) if out_dir and "://" not in str(out_dir) else (str(out_dir) if out_dir else None)
    chain = load_any(recipe, out)
    if cron is None and interval is None and chain.recipe.schedule is not None:
        cron, interval = chain.recipe.schedule.cron, chain.recipe.schedule.interval
    if (cron is None) == (interval is None):
        raise ValueError("give exactly one of --cron or --interval (or schedule: in the lifecycle recipe)")
    data_only = not chain.train and chain.recipe.label is None
    what = "refresh" if data_only else "lifecycle"
    fl = lifecycle_flow.with_options(task_runner=task_runner(runner or chain.data.recipe.flow.runner))
    fl.serve(
        name=name or f"{chain.name}-{what}",
        cron=cron,
        interval=interval,
        parameters={"recipe": str(recipe.resolve()), "out_dir": out},
        tags=["curate", what, chain.name],
        description=f"{'Incremental refresh' if data_only else 'Lifecycle'} of {chain.name} from {recipe}",
    )
