"""Prefect flows over the run sequence: ``curate`` (a full run) and ``curate-refresh`` (only what is new).

Orchestration only: both flows call :func:`curate.engine.sequence.run_sequence`, the one run
sequence that ``curate run --local`` also executes, with :class:`flows.executor.PrefectExecutor`
(steps as tasks, mapped over files, shards and parts on threads or Dask, cached on the steps'
content keys) and the same after-publish hooks (:func:`curate.engine.hooks.default_hooks`:
Argilla push, refresh log, artifacts).

Example:
    >>> # from flows.curation import run_flow
    >>> # result = run_flow(Path("recipes/quickstart.yaml"), runner="thread")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.settings import temporary_settings

from curate.engine.hooks import default_hooks
from curate.engine.sequence import run_sequence
from curate.engine.steps import prepare
from flows.executor import PrefectExecutor
from flows.runners import task_runner
from schemas.recipe_loader import load_recipe_file


def _curate(recipe: str, out_dir: str | None, report: bool, incremental: bool) -> dict[str, Any]:
    prep = prepare(load_recipe_file(recipe), out_dir or None, report)
    ex = PrefectExecutor(prep)
    outcome = run_sequence(prep, ex, incremental, default_hooks())
    if outcome.noop:
        get_run_logger().info("nothing new since %s: no-op", (outcome.refresh or {}).get("base_version") or "-")
        return {**outcome.summary(), "steps": ex.timings}
    assert outcome.result is not None
    # per-step timers (orchestration included) join what the caller gets, as with --local; not summary.json
    return {"run_dir": str(outcome.result.run_dir), **outcome.summary(), "steps": ex.timings}


@flow(name="curate", log_prints=True)
def curate_flow(recipe: str, out_dir: str | None = None, report: bool = True) -> dict[str, Any]:
    """Run a curation recipe: ingest every input, stages, run folder, publish, hooks."""
    return _curate(recipe, out_dir, report, incremental=False)


@flow(name="curate-refresh", log_prints=True)
def refresh_flow(recipe: str, out_dir: str | None = None, report: bool = True) -> dict[str, Any]:
    """Incremental refresh: only inputs the latest version has not seen, deduplicated against it."""
    return _curate(recipe, out_dir, report, incremental=True)


def run_flow(
    recipe: Path,
    out_dir: str | Path | None = None,
    report: bool = True,
    runner: str = "thread",
    incremental: bool = False,
) -> dict[str, Any]:
    """Run :func:`curate_flow` (or :func:`refresh_flow`) on the task runner ``runner`` names, in this
    process (flow-run heartbeats off unless configured: :func:`foreground_settings`)."""
    fl = refresh_flow if incremental else curate_flow
    with temporary_settings(updates=foreground_settings()):
        return fl.with_options(task_runner=task_runner(runner))(
            str(recipe), str(out_dir) if out_dir is not None else None, report
        )


HEARTBEAT_VARS = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


def foreground_settings() -> dict[Any, Any]:
    """Prefect settings for a flow run in the foreground of ``curate run``.

    Heartbeats are off unless the user set a frequency (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, in
    the environment or the Prefect profile): they serve zombie detection by an automation, while a
    foreground run reports its own crash; and Prefect stops the heartbeat thread by waiting for its
    one-second sleep to end, up to a second added to every run. Deployments (``curate serve``)
    keep them.

    Example:
        >>> from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY as F
        >>> foreground_settings() == {F: None} or "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" in os.environ
        True
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings
    from prefect.settings.models.flows import FlowsSettings

    default = FlowsSettings.model_fields["heartbeat_frequency"].default
    if any(os.environ.get(v) for v in HEARTBEAT_VARS) or get_current_settings().flows.heartbeat_frequency != default:
        return {}
    return {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
