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
from urllib.parse import urlparse

from schemas.recipe import is_url

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


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def shared_work_warning(spec: str, output_dir: str, work_dir: str | None) -> str | None:
    """Why a run on ``spec`` may fail on a cluster of several machines, or None.

    Work files (shards, sketches, decisions) live in a local folder, never on object storage; with
    a URL ``output_dir`` and no ``work_dir`` that folder is this machine's cache, which workers on
    other machines cannot read. A local cluster (``dask``, ``dask:N``, a loopback address) is fine.

    Example:
        >>> shared_work_warning("dask:tcp://10.0.0.5:8786", "s3://b/runs", None).split(":")[0]
        'output.dir is a URL and output.work_dir is unset'
        >>> shared_work_warning("dask:tcp://10.0.0.5:8786", "s3://b/runs", "/mnt/nfs/work") is None
        True
        >>> shared_work_warning("dask:4", "s3://b/runs", None) is None
        True
    """
    kind, _, arg = spec.partition(":")
    if kind != "dask" or not arg or arg.isdigit() or work_dir or not is_url(output_dir):
        return None
    if urlparse(arg).hostname in _LOOPBACK:
        return None
    return (
        f"output.dir is a URL and output.work_dir is unset: work files stay in this machine's cache, which "
        f"workers of the cluster at {arg} on other machines cannot read; set output.work_dir to a folder every "
        "worker mounts at the same path (e.g. NFS)"
    )
