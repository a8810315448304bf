"""Where evaluations of a model are kept: ``RUN_DIR/evaluations/ID.json``, one :class:`EvalReport` each.

The runner saves every evaluation of a trained model beside it; the registry's gate and ``curate
models compare`` read them back. Files are written atomically (temp file + rename), so a reader
never sees half a report. ``ID`` is the report's creation time plus a short hash of its spec and
model, so two evaluations never overwrite each other.

Example:
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> r = EvalReport(model="demo@1", created="2026-12-03T10:00:00+00:00")
    >>> _ = save_report(run, r)
    >>> [x.model for x in load_reports(run)]
    ['demo@1']
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from schemas.evaluation import EvalReport

FOLDER = "evaluations"


def save_report(run_dir: str | Path, report: EvalReport) -> Path:
    """Write ``report`` into ``run_dir/evaluations/`` atomically; returns its path."""
    folder = Path(run_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    text = report.model_dump_json(indent=2)
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    stamp = report.created.replace(":", "").replace("-", "").replace("+", "_")
    path = folder / f"{stamp}-{digest}.json"
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def load_reports(run_dir: str | Path) -> list[EvalReport]:
    """Every evaluation saved for ``run_dir``, oldest first (none: an empty list)."""
    folder = Path(run_dir) / FOLDER
    if not folder.is_dir():
        return []
    paths = list(folder.glob("*.json"))
    reports = [
        (EvalReport.model_validate(json.loads(p.read_text(encoding="utf-8"))), p.stat().st_mtime_ns) for p in paths
    ]
    # created has one-second resolution: the write time orders reports made within the same second
    return [r for r, _ in sorted(reports, key=lambda x: (x[0].created, x[1]))]


def latest_value(run_dir: str | Path, metric: str, on: str | None = None) -> tuple[EvalReport, float] | None:
    """The newest saved figure ``metric`` of ``run_dir`` (optionally only from evaluations on dataset ``on``)."""
    for report in reversed(load_reports(run_dir)):
        if on is not None and on not in {s.ref for s in report.sets}:
            continue
        v = report.value(metric)
        if v is not None:
            return report, v.value
    return None
