"""Task runners by name: ``thread`` (default), ``dask`` (a local cluster), ``dask:ADDRESS`` (an existing one).

Example:
    >>> type(task_runner("thread")).__name__
    'ThreadPoolTaskRunner'
    >>> task_runner("ray")
    Traceback (most recent call last):
    ...
    ValueError: unknown runner 'ray': use thread, thread:N, dask, dask:N (local workers) or dask:tcp://HOST:PORT
"""

from __future__ import annotations

import os
from typing import Any

DASK_LOCAL_WORKERS = 2


def task_runner(spec: str) -> Any:
    """The Prefect task runner ``spec`` names (see the module docstring)."""
    kind, _, arg = spec.partition(":")
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=int(arg) if arg else max(2, os.cpu_count() or 2))
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if arg and not arg.isdigit():  # a scheduler address: the cluster and its storage are someone else's
            return DaskTaskRunner(address=arg)
        workers = int(arg) if arg else DASK_LOCAL_WORKERS
        # Processes, one thread each: the GIL-bound parts of ingest run in parallel, as on a real cluster.
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})
    raise ValueError(
        f"unknown runner {spec!r}: use thread, thread:N, dask, dask:N (local workers) or dask:tcp://HOST:PORT"
    )
