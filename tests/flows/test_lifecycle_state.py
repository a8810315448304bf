"""Lifecycle run folders: one run at a time, a failed or killed run resumes, every run is in the history."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.lifecycle.state import LifecycleBusy, RunFolder
from schemas.lifecycle import StepRecord

RECIPE = {"file": "loop.yaml", "sha256": "0"}


def _done(name: str, **output: object) -> StepRecord:
    return StepRecord(name=name, status="done", started="t", finished="t", seconds=0.1, output=dict(output))


def test_a_failed_run_is_resumed_with_its_finished_steps_and_then_a_new_run_starts(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    with pytest.raises(RuntimeError), folder.open("loop", RECIPE, {"name": "local"}) as state:
        folder.record(state, _done("curate", version="d@1"))
        raise RuntimeError("training crashed")
    failed = folder.latest()
    assert failed is not None and failed.status == "failed" and "training crashed" in (failed.error or "")
    with folder.open("loop", RECIPE, {"name": "local"}) as state:
        assert (state.run, state.attempts, state.status) == (1, 2, "running")
        assert state.done("curate") and state.output("curate") == {"version": "d@1"}
        assert state.error is None
    with folder.open("loop", RECIPE, {"name": "local"}) as state:
        assert (state.run, state.attempts) == (2, 1) and not state.steps
    assert [(h["run"], h["status"]) for h in folder.history()] == [(1, "failed"), (1, "done"), (2, "done")]


def test_the_consumed_version_is_the_last_completed_runs_data(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    with folder.open("loop", RECIPE, {}) as state:
        folder.record(state, _done("curate", version="d@1", noop=False))
    with folder.open("loop", RECIPE, {}) as state:
        folder.record(state, _done("curate", version="d@1", noop=True))
        state.status = "noop"
    assert folder.consumed() == "d@1"
    assert [s.status for s in folder.states()] == ["done", "noop"]


def test_a_second_process_cannot_run_the_lifecycle_while_one_holds_it(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    code = (
        "import sys; from pathlib import Path; from flows.lifecycle.state import RunFolder, LifecycleBusy\n"
        f"f = RunFolder(Path({str(tmp_path)!r}))\n"
        "try:\n"
        "    with f.open('loop', {'file': 'x', 'sha256': '0'}, {}): pass\n"
        "except LifecycleBusy as e:\n"
        "    print('busy:', e); sys.exit(3)\n"
    )
    with folder.open("loop", RECIPE, {}):
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert other.returncode == 3 and "already running" in other.stdout, other.stderr
    assert LifecycleBusy.__doc__


def test_a_killed_run_left_running_is_resumed_by_the_next_start(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    # what a SIGKILL leaves: a state that still says running, and nobody holding the lock
    code = (
        "import os; from pathlib import Path; from flows.lifecycle.state import RunFolder\n"
        "from schemas.lifecycle import StepRecord\n"
        f"f = RunFolder(Path({str(tmp_path)!r}))\n"
        "with f.open('loop', {'file': 'x', 'sha256': '0'}, {}) as s:\n"
        "    f.record(s, StepRecord(name='curate', status='done', started='t', finished='t', seconds=1))\n"
        "    os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 9
    left = json.loads((tmp_path / "runs" / "000001" / "state.json").read_text())
    assert left["status"] == "running" and list(left["steps"]) == ["curate"]
    with folder.open("loop", RECIPE, {}) as state:
        assert state.run == 1 and state.attempts == 2 and state.done("curate")
