"""Annotation progress per dataset and per annotator, and a step that waits for enough labels.

:func:`wait_until_complete` is a plain function (no orchestrator): a scheduled flow can push today,
then call it (polling, with a timeout) before pulling tomorrow.

Example:
    >>> ticks = iter([{"total": 4, "completed": 1}, {"total": 4, "completed": 4}])
    >>> wait_until_complete(lambda: next(ticks), poll_s=0, sleep=lambda s: None)["completed"]
    4
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from curate.annotate.client import Connection
from curate.annotate.pull import PullError, _find_dataset


def progress(conn: Connection, name: str, workspace: str | None = None) -> dict[str, Any]:
    """``{dataset, total, completed, pending, users: {name: {submitted, discarded, draft}}}``.

    A record is *completed* once it has the dataset's ``min_submitted`` submitted responses.
    """
    client = conn.client()
    ds = _find_dataset(client, name, workspace)
    raw = ds.progress(with_users_distribution=True)
    users: dict[str, dict[str, int]] = {}
    for user, parts in (raw.get("users") or {}).items():
        total = {"submitted": 0, "discarded": 0, "draft": 0}
        for part in ("completed", "pending"):
            for status in total:
                total[status] += int((parts.get(part) or {}).get(status, 0))
        users[user] = total
    return {
        "dataset": name,
        "workspace": ds.workspace.name,
        "total": int(raw.get("total", 0)),
        "completed": int(raw.get("completed", 0)),
        "pending": int(raw.get("pending", 0)),
        "min_submitted": ds.settings.distribution.min_submitted,
        "users": users,
    }


class AnnotationTimeout(TimeoutError):
    """Not enough records were completed in time; ``progress`` holds the last state seen."""

    def __init__(self, message: str, progress: dict[str, Any]):
        super().__init__(message)
        self.progress = progress


def wait_until_complete(
    check: Callable[[], dict[str, Any]],
    min_completed: int | None = None,
    timeout_s: float = 3600.0,
    poll_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll ``check()`` (e.g. ``lambda: progress(conn, name)``) until ``completed >= min_completed``.

    Args:
        check: returns a progress dict with ``total`` and ``completed``.
        min_completed: records that must be complete (default: all of them, at least one).
        timeout_s: give up after this long, raising :class:`AnnotationTimeout`.
        poll_s: seconds between checks.

    Returns:
        The last progress dict.
    """
    deadline = clock() + timeout_s
    while True:
        state = check()
        need = min_completed if min_completed is not None else max(int(state.get("total", 0)), 1)
        if int(state.get("completed", 0)) >= need:
            return state
        if clock() >= deadline:
            raise AnnotationTimeout(
                f"{state.get('completed', 0)} of {need} records complete after {timeout_s:.0f} s "
                f"({state.get('total', 0)} in the dataset)",
                state,
            )
        sleep(poll_s)


def wait_for_dataset(
    conn: Connection,
    name: str,
    min_completed: int | None = None,
    timeout_s: float = 3600.0,
    poll_s: float = 30.0,
    workspace: str | None = None,
) -> dict[str, Any]:
    """:func:`wait_until_complete` on an Argilla dataset (the flow step to wrap)."""
    return wait_until_complete(lambda: progress(conn, name, workspace), min_completed, timeout_s, poll_s)


__all__ = ["AnnotationTimeout", "PullError", "progress", "wait_for_dataset", "wait_until_complete"]
