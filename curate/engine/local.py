"""``curate run --local``: the run sequence executed in this process, with a progress bar.

:class:`LocalExecutor` runs each step of :mod:`curate.engine.sequence` directly, one after the
other (ingest shows a bytes/rows progress bar on a terminal); the Prefect executor
(``flows.executor``) runs the very same sequence as tasks. Both produce the same dataset and run
the same after-publish hooks (:mod:`curate.engine.hooks`).

Example:
    >>> # run_recipe(load_recipe_file("recipes/quickstart.yaml")).summary["balanced"]  -> True
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from curate.engine.hooks import default_hooks
from curate.engine.progress import byte_progress
from curate.engine.sequence import Hook, Outcome, Step, run_sequence
from curate.engine.steps import Prepared, QuarantineLimitError, RunResult, prepare
from schemas.recipe_loader import LoadedRecipe

__all__ = ["LocalExecutor", "QuarantineLimitError", "RunResult", "run_recipe"]


def _retrying(fn: Callable[[], Any], retries: int, delays: Sequence[float]) -> Any:
    """``fn()``, retried up to ``retries`` times after an exception, waiting ``delays[attempt]`` (the last repeats)."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception:
            if attempt == retries:
                raise
            time.sleep((delays or (0.0,))[min(attempt, len(delays or (0.0,)) - 1)])
    raise AssertionError("unreachable")


class LocalExecutor:
    """Runs steps in order in this process (retrying those that declare retries)."""

    def __init__(self, show_progress: bool | None = None):
        self.show_progress = show_progress
        self.timings: dict[str, dict[str, float]] = {}
        """Per step: seconds (all its calls) and the process's peak RSS (MB) when it last finished."""

    def _timed(self, name: str, started: float) -> None:
        t = self.timings.setdefault(name, {"seconds": 0.0, "peak_rss_mb": 0.0})
        t["seconds"] = round(t["seconds"] + time.perf_counter() - started, 3)
        t["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    def orchestrator(self) -> dict[str, Any]:
        return {"name": "local"}

    def call(self, step: Step, prep: Prepared, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        value = _retrying(lambda: step.fn(prep, *args, **kwargs), step.retries, step.retry_delay_seconds)
        self._timed(step.name, started)
        return value

    def map(self, step: Step, prep: Prepared, calls: Sequence[tuple[Any, ...]], label: str = "") -> list[Any]:
        if not step.progress:
            return [self.call(step, prep, *args) for args in calls]
        total = sum(getattr(args[0], "size", 0) for args in calls)
        out = []
        with byte_progress(total, f"curate {prep.name}", self.show_progress) as bar:
            task = bar.tasks[0].id
            rows = 0

            def advance(nbytes: int, nrows: int) -> None:
                nonlocal rows
                rows += nrows
                bar.update(task, advance=nbytes, rows=rows)

            for args in calls:
                out.append(self.call(step, prep, *args, on_batch=advance))
        return out

    def hook(self, hook: Hook, outcome: Outcome) -> Any:
        return _retrying(lambda: hook.run(outcome, self), hook.retries, (2.0, 4.0))

    # a local run has no UI to show artifacts in: the run folder's report.md is the artifact
    def table(self, key: str, rows: list[dict[str, Any]], description: str) -> None:
        return None

    def markdown(self, key: str, text: str, description: str) -> None:
        return None


def run_recipe(
    doc: LoadedRecipe,
    out_dir: Path | None = None,
    show_progress: bool | None = None,
    report: bool = True,
    refresh: bool = False,
    hooks: Sequence[Hook] | None = None,
) -> RunResult:
    """Run a loaded recipe in-process; returns the committed run folder and its summary.

    ``report=False`` skips the markdown report and its plots (for callers that run many small recipes).
    ``refresh=True`` processes only inputs the latest published version has not seen and deduplicates
    them against it (:mod:`curate.engine.refresh`); with nothing new it returns ``run_dir=None`` and a
    summary with ``noop: true``. ``hooks``: after-publish work (default: :func:`default_hooks`).
    The returned summary also has ``steps``: seconds and peak RSS per step (not in ``summary.json``).

    Raises:
        RecipeError: the recipe or its inputs are invalid (nothing is written).
        QuarantineLimitError: too much input was quarantined (the run is still written for audit).
    """
    prep = prepare(doc, out_dir, report)
    ex = LocalExecutor(show_progress)
    outcome = run_sequence(prep, ex, refresh, default_hooks() if hooks is None else hooks)
    # per-step timers join what the caller gets (and `curate run --local --json` prints), not summary.json
    return RunResult(outcome.result.run_dir if outcome.result else None, {**outcome.summary(), "steps": ex.timings})
