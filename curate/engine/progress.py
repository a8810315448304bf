"""Progress bars on stderr (quiet when stderr is not a terminal or when asked)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


@contextmanager
def byte_progress(total: int, description: str, enabled: bool | None = None) -> Iterator[Progress]:
    """A bytes-read progress bar with a single task (``progress.tasks[0]``)."""
    show = sys.stderr.isatty() if enabled is None else enabled
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show,
        transient=False,
    )
    with progress:
        progress.add_task(description, total=total, rows=0)
        yield progress
