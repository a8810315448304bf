"""Lifecycle run folders: ``OUT/lifecycle/NAME/runs/NNNNNN/state.json``, resumed after a failure.

One lifecycle runs at a time (an exclusive ``flock`` on ``OUT/lifecycle/NAME/.lock``; a second
start exits with :class:`LifecycleBusy`). A run whose last attempt did not finish (failed, or killed:
its state still says ``running`` while nobody holds the lock) is **resumed**: the same run number,
its finished steps kept, so a killed training run does not repeat the curation or the labelling.
Every finished run (no-op included) adds a line to ``history.jsonl``.

Example:
    >>> import tempfile
    >>> folder = RunFolder(Path(tempfile.mkdtemp()))
    >>> with folder.open("loop", {"file": "loop.yaml", "sha256": "0"}, {"name": "local"}) as state:
    ...     state.run, state.status
    (1, 'running')
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.lifecycle import LifecycleRun, StepRecord

STATE = "state.json"


class LifecycleBusy(RuntimeError):
    """Another process is running this lifecycle."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunFolder:
    """The lifecycle's folder: its runs, its lock and its history."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run: int) -> Path:
        return self.runs / f"{run:06d}"

    def states(self) -> list[LifecycleRun]:
        """Every run's state, oldest first."""
        if not self.runs.is_dir():
            return []
        out = []
        for p in sorted(self.runs.glob(f"*/{STATE}")):
            out.append(LifecycleRun.model_validate_json(p.read_text(encoding="utf-8")))
        return out

    def latest(self) -> LifecycleRun | None:
        states = self.states()
        return states[-1] if states else None

    def consumed(self) -> str | None:
        """The data version the last completed (non-no-op) run trained from, if any."""
        for s in reversed(self.states()):
            if s.status == "done" and s.done("curate"):
                return s.output("curate").get("version")
        return None

    def save(self, state: LifecycleRun) -> Path:
        """Write ``state`` atomically (temp file + rename): a crash never leaves half a state file."""
        folder = self.run_dir(state.run)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{STATE}.tmp"
        tmp.write_text(state.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, folder / STATE)
        return folder / STATE

    def record(self, state: LifecycleRun, rec: StepRecord) -> None:
        """Add one step's record to ``state`` and save it."""
        state.steps[rec.name] = rec
        self.save(state)

    def history(self) -> list[dict[str, Any]]:
        path = self.root / "history.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _append_history(self, state: LifecycleRun) -> None:
        entry = {
            "run": state.run,
            "status": state.status,
            "created": state.created,
            "finished": state.finished,
            "attempts": state.attempts,
            "orchestrator": state.orchestrator,
            "steps": {k: v.status for k, v in state.steps.items()},
            "error": state.error,
        }
        with (self.root / "history.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")

    @contextmanager
    def open(self, name: str, recipe: dict[str, Any], orchestrator: dict[str, Any]) -> Iterator[LifecycleRun]:
        """Hold the lock and yield the run to execute: the unfinished one (resumed) or a new one.

        On leaving, a run still ``running`` is marked ``done`` (or ``failed`` with the error, when an
        exception passes through; it is re-raised) and added to the history.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LifecycleBusy(
                    f"lifecycle {name} is already running (lock {self.root / '.lock'} is held); wait for it to finish"
                ) from None
            last = self.latest()
            if last is not None and last.status in ("running", "failed"):
                state = last.model_copy(
                    update={
                        "attempts": last.attempts + 1,
                        "status": "running",
                        "orchestrator": orchestrator,
                        "error": None,
                    }
                )
            else:
                run = (last.run + 1) if last is not None else 1
                state = LifecycleRun(
                    lifecycle=name, run=run, recipe=recipe, created=now(), status="running", orchestrator=orchestrator
                )
            self.save(state)
            try:
                yield state
            except BaseException as e:
                state.status = "failed"
                state.error = f"{type(e).__name__}: {e}"[:2000]
                state.finished = now()
                self.save(state)
                self._append_history(state)
                raise
            if state.status == "running":
                state.status = "done"
            state.finished = now()
            self.save(state)
            self._append_history(state)
