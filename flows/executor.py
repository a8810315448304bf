"""The Prefect executor of the run sequence: every step a task, mapped over files, shards and parts.

:func:`curate.engine.sequence.run_sequence` is the sequence; this executor only decides *how* a
step runs: as a Prefect task (named after the step, with the step's retries), submitted on the
flow's task runner (threads or Dask) and mapped where the sequence maps.

One cache: a cached step's Prefect cache key **is** its content key (:attr:`Step.key`), and its
results persist under ``OUT/.work/NAME/prefect-results``. Before a task looks its key up, the
step's own ``done`` check runs; when the step's files are gone (garbage-collected, deleted by
hand) the stale cache record is deleted, so Prefect recomputes instead of returning a reference to
missing files. A rerun after a failure therefore shows ``Cached`` for every finished step and runs
the rest.

What a task costs, and how it is kept down (measured in ``benchmarks/bench_flow.py``): a task
run costs the flow milliseconds and the server tens of milliseconds of CPU (its state events).
On the thread runner a ``batch`` step (hash, sketch, finish: short calls) runs all of a map's
calls as one task, on as many threads as the runner has, cached on a key made of the calls'
content keys (:class:`BatchCache`); ingest stays a task per file, and on Dask every call stays a
task so the workers share them. Arguments are handed to Prefect ``opaque`` (:func:`shallow`), so
it does not walk the run's plan before every task, while the UI's dependency arrows stay; the
ingest progress artifact is updated every :data:`PROGRESS_EVERY_S` seconds at most.
:attr:`PrefectExecutor.timings` has the seconds per step (orchestration included), in the shape
of the local executor's.

Example:
    >>> # with a flow: run_sequence(prep, PrefectExecutor(prep), refresh=False, hooks=default_hooks())
"""

from __future__ import annotations

import hashlib
import inspect
import os
import resource
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.context import FlowRunContext, TaskRunContext
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque

from curate.engine.sequence import Hook, Outcome, Step
from curate.engine.steps import Prepared


class StepCache(CachePolicy):
    """Prefect's cache key for a step: the step's content key, honoured only while its output exists."""

    def __init__(self, step: Step, records: Path):
        super().__init__()
        assert step.key is not None and step.done is not None
        self.step = step
        self.records = records
        # the key takes the step's leading arguments (not options such as ingest's on_batch)
        self.params = list(inspect.signature(step.fn).parameters)[: len(inspect.signature(step.key).parameters)]

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        args = [inputs[p] for p in self.params if p in inputs]
        prep: Prepared = args[0]
        key = self.step.key(*args)  # type: ignore[misc]
        if not self.step.done(prep, key):  # type: ignore[misc]
            (self.records / key).unlink(missing_ok=True)  # its files are gone: the record must not answer
        return key


PROGRESS_EVERY_S = 2.0
"""Shortest interval between two updates of the ingest progress artifact."""


class BatchCache(CachePolicy):
    """Prefect's cache key for a batch of a step's calls: made of the calls' content keys, honoured
    only while every call's output exists."""

    def __init__(self, step: Step, records: Path):
        super().__init__()
        assert step.key is not None and step.done is not None
        self.step = step
        self.records = records
        self.nargs = len(inspect.signature(step.key).parameters) - 1  # after prep

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        prep: Prepared = inputs["prep"]
        keys = [self.step.key(prep, *args[: self.nargs]) for args in inputs["calls"]]  # type: ignore[misc]
        key = hashlib.sha256("\n".join([self.step.name, *keys]).encode()).hexdigest()
        if not all(self.step.done(prep, k) for k in keys):  # type: ignore[misc]
            (self.records / key).unlink(missing_ok=True)
        return key


def shallow(arg: Any) -> Any:
    """``arg`` wrapped so that Prefect looks at it, not into it (for a list or dict: at each item).

    Before a task runs, Prefect walks every parameter recursively to resolve futures and to find
    the upstream task runs it came from (the UI's dependency arrows). Our arguments never hold
    futures, and the run's :class:`Prepared` alone has hundreds of nodes: walking it costs a few
    milliseconds per task and parameter. ``opaque`` keeps the top-level look-up (so an ingested
    shard still points at its ingest task run) and skips the walk.
    """
    if isinstance(arg, list | tuple):
        return type(arg)(opaque(a) for a in arg)
    if isinstance(arg, dict):
        return {k: opaque(v) for k, v in arg.items()}
    return opaque(arg)


def _same(arg: Any) -> Any:
    return arg


def run_batch(fn: Callable[..., Any], prep: Prepared, calls: list[tuple[Any, ...]], width: int = 1) -> list[Any]:
    """``[fn(prep, *args) for args in calls]``, on up to ``width`` threads; values in call order."""
    if width <= 1 or len(calls) <= 1:
        return [fn(prep, *args) for args in calls]
    with ThreadPoolExecutor(min(width, len(calls))) as pool:
        return list(pool.map(lambda args: fn(prep, *args), calls))


def _batched(fn: Callable[..., Any], width: int) -> Callable[[Prepared, list[tuple[Any, ...]]], list[Any]]:
    def run_all(prep: Prepared, calls: list[tuple[Any, ...]]) -> list[Any]:
        return run_batch(fn, prep, calls, width)

    run_all.__name__ = run_all.__qualname__ = f"{fn.__name__}_all"  # Prefect keys a task on its name
    run_all.__doc__ = f"{fn.__name__} for every argument tuple in ``calls``."
    return run_all


class PrefectExecutor:
    """Runs sequence steps as Prefect tasks inside the current flow run."""

    def __init__(self, prep: Prepared):
        self.records = (prep.work / "prefect-results").resolve()
        self._tasks: dict[str, Any] = {}
        # a submitted task's arguments go opaque only on threads: Dask pickles them, and an
        # unpickled ``opaque`` wraps a tuple of its value (a task direct call is always in-process)
        ctx = FlowRunContext.get()
        threads = ctx is not None and isinstance(ctx.task_runner, ThreadPoolTaskRunner)
        self._submitted = shallow if threads else _same
        # on threads a batch step's calls run as one task, as many at once as the runner runs tasks;
        # on Dask each call stays a task, so the cluster's workers share them
        self._width: int | None = None
        if threads:
            # the runner's width is private in Prefect: fall back to the cores when it moves
            self._width = getattr(ctx.task_runner, "_max_workers", None) or os.cpu_count() or 1  # type: ignore[union-attr]
        self.timings: dict[str, dict[str, float]] = {}
        """Per step: wall seconds of its calls (a mapped step: the whole map, orchestration included)
        and this process's peak RSS (MB) when it last finished; the same shape as the local executor's."""

    def _timed(self, name: str, started: float) -> None:
        t = self.timings.setdefault(name, {"seconds": 0.0, "peak_rss_mb": 0.0})
        t["seconds"] = round(t["seconds"] + time.perf_counter() - started, 3)
        t["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    def _options(self, step: Step, name: str, cache: type[StepCache] | type[BatchCache]) -> dict[str, Any]:
        """Task options of ``step`` under ``name``: its retries, and its content-key cache (``cache``)."""
        options: dict[str, Any] = {"name": name, "retries": step.retries}
        if step.retry_delay_seconds:
            options["retry_delay_seconds"] = list(step.retry_delay_seconds)
        if step.key is not None:
            policy = cache(step, self.records)
            options |= {"cache_policy": policy, "persist_result": True, "result_storage": self.records}
        else:  # nothing to reuse: skip Prefect's default of hashing every input (the plan, the refs)
            options |= {"cache_policy": NO_CACHE, "persist_result": False}
        return options

    def _task(self, step: Step) -> Any:
        t = self._tasks.get(step.name)
        if t is None:
            t = self._tasks[step.name] = task(step.fn, **self._options(step, step.name, StepCache))
        return t

    def _batch_task(self, step: Step, width: int) -> Any:
        """One task running all of a map's calls of a ``batch`` step on ``width`` threads (see :class:`Step`)."""
        assert step.batch is not None
        t = self._tasks.get(step.batch)
        if t is None:
            options = self._options(step, step.batch, BatchCache)
            t = self._tasks[step.batch] = task(_batched(step.fn, width), **options)
        return t

    def orchestrator(self) -> dict[str, Any]:
        # the flow run also inside a task (the lifecycle runs the curation sequence within its steps)
        from prefect.runtime import flow_run

        return {"name": "prefect", "flow_run_id": flow_run.id, "flow_run_name": flow_run.name}

    def call(self, step: Step, prep: Prepared, *args: Any) -> Any:
        started = time.perf_counter()
        value = self._task(step)(opaque(prep), *map(shallow, args))
        self._timed(step.name, started)
        return value

    def map(self, step: Step, prep: Prepared, calls: Sequence[tuple[Any, ...]], label: str = "") -> list[Any]:
        started = time.perf_counter()
        if step.batch is not None and self._width is not None:
            values = self._batch_task(step, self._width)(opaque(prep), opaque(list(calls))) if calls else []
            self._timed(step.name, started)
            return values
        t = self._task(step)
        wrap = self._submitted
        futures = [t.submit(wrap(prep), *map(wrap, args)) for args in calls]
        if step.progress:
            self._follow(futures, calls, prep, label)
        values = [f.result() for f in futures]
        self._timed(step.name, started)
        return values

    def _follow(self, futures: list[Any], calls: Sequence[tuple[Any, ...]], prep: Prepared, label: str) -> None:
        """Long per-file work: one progress artifact in the UI and a log line per finished file.

        The artifact is updated at most every :data:`PROGRESS_EVERY_S` seconds and at the end: each
        update is a request the flow waits for, and the server's work.
        """
        logger = get_run_logger()
        progress = create_progress_artifact(0.0, description=f"{prep.name}: input files {label}ed")
        index = {f: i for i, f in enumerate(futures)}
        last = time.perf_counter()
        for done, fut in enumerate(as_completed(futures), start=1):
            ref = fut.result()
            job = calls[index[fut]][0]
            logger.info("%s %s: %s rows -> %s records", label, job.uri, ref.tally["input_rows"], ref.records)
            if done == len(futures) or time.perf_counter() - last >= PROGRESS_EVERY_S:
                update_progress_artifact(progress, 100.0 * done / len(futures))
                last = time.perf_counter()

    def hook(self, hook: Hook, outcome: Outcome) -> Any:
        started = time.perf_counter()
        name = hook.name.replace("_", "-")
        t = task(
            hook.run,
            name=name,
            retries=hook.retries,
            retry_delay_seconds=[2, 10],
            cache_policy=NO_CACHE,
            persist_result=False,
        )
        value = t(opaque(outcome), opaque(self))
        self._timed(name, started)
        return value

    def table(self, key: str, rows: list[dict[str, Any]], description: str) -> None:
        create_table_artifact(rows, key=key, description=description)

    def markdown(self, key: str, text: str, description: str) -> None:
        create_markdown_artifact(text, key=key, description=description)
