"""The lifecycle as a Prefect flow: ``curate lifecycle run RECIPE`` and ``curate serve RECIPE --cron ...``.

Orchestration only: :func:`flows.lifecycle.sequence.execute` with :class:`flows.executor.PrefectExecutor`
(each lifecycle step a task, cached on its run and step; the curation and labelling steps run the
curation sequence's tasks inside them). A curation recipe is served as a lifecycle with no label,
train or gate step: the scheduled data refresh is that special case.

Example:
    >>> # lifecycle_flow("recipes/lifecycle/demo.yaml")   # -> the run summary (status, gate, report)
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.executor import PrefectExecutor
from flows.lifecycle.sequence import execute, load_any


def orchestrator() -> dict[str, Any]:
    """This flow run, for the lifecycle state and the model manifests."""
    return {"name": "prefect", "flow_run_id": flow_run.id, "flow_run_name": flow_run.name}


@flow(name="curate-lifecycle", log_prints=True)
def lifecycle_flow(recipe: str, out_dir: str | None = None) -> dict[str, Any]:
    """Run (or resume) one lifecycle run of ``recipe`` (a lifecycle recipe, or a curation recipe;
    ``out_dir`` replaces a curation recipe's output.dir)."""
    return execute(load_any(recipe, out_dir), PrefectExecutor, orchestrator())
