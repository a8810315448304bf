"""The whole lifecycle on tiny models against a real Prefect server, three times (plus a kill):

1. no champion yet: curate, AI-label, DPO, evaluate, the gate promotes;
2. new raw files and a challenger that is worse by construction (full fine-tuning at a destructive
   learning rate), killed during training: the rerun shows curation and labelling ``Cached``, trains,
   and the gate refuses, naming the criterion; the champion stays;
3. nothing new: a logged no-op that trains nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.lifecycle.flow import lifecycle_flow
from flows.lifecycle.state import RunFolder
from train.registry import list_versions, read_alias
from train.registry.trace import trace_model


def _kill_during_training(recipe: Path, api: str) -> str:
    """Start `curate lifecycle run` and SIGKILL it as soon as its training step starts; returns its log."""
    env = {**os.environ, "PREFECT_API_URL": api, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "lifecycle", "run", str(recipe)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    seen = []
    deadline = time.monotonic() + 300
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if "train:loop-dpo: started" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "".join(seen[-30:])
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-30:])
    return "".join(seen)


# every weight moves with a learning rate of 5: the model's loss on held-out answers explodes
DESTRUCTIVE_DPO = "adapter: {type: none}\ntraining: {max_steps: 6, batch_size: 2, learning_rate: 5.0, max_length: 64}\n"


@pytest.mark.integration
def test_lifecycle_promotes_then_refuses_a_worse_challenger_after_a_kill_then_noops(
    lifecycle_project: Any, prefect_api: str, task_states: Callable[..., dict[str, list[str]]]
) -> None:
    tmp_path, recipe = lifecycle_project.root, lifecycle_project.recipe
    runs_root = tmp_path / "runs" / "train"
    folder = RunFolder(tmp_path / "runs" / "lifecycle" / "loop")

    # run 1: no champion -> floors only -> promoted
    first = lifecycle_flow(str(recipe))
    assert first["status"] == "done" and first["run"] == 1
    assert first["datasets"] == {"data": "prompts@1", "label": "pairs@1"}
    assert first["gate"]["promoted"] and first["gate"]["champion_before"] is None
    assert read_alias(runs_root, "loop-dpo", "champion") == 1
    states = task_states(first["orchestrator"]["flow_run_id"], expect=10)
    for name in ("curate", "label", "train-loop-dpo", "evaluate", "gate", "lifecycle-report", "ingest", "feedback"):
        assert set(states[name]) == {"Completed"}, (name, states)  # ingest: curation and labelling
    report = Path(first["report"]).read_text(encoding="utf-8")
    assert "## What came in" in report and "## Who labelled what" in report and "**promoted** `loop-dpo@1`" in report
    v1 = list_versions(runs_root, "loop-dpo")[0]
    assert (v1.run_dir(runs_root) / "lifecycle-report.md").read_text(encoding="utf-8") == report
    manifest = json.loads((v1.run_dir(runs_root) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["lifecycle"]["flow_run_id"] == first["orchestrator"]["flow_run_id"]
    assert manifest["lifecycle"]["datasets"] == {"data": "prompts@1", "label": "pairs@1"}
    # the champion traces back to the raw file, through the labelled and the curated versions
    tree = trace_model("loop-dpo@champion", runs_root)
    assert [f.ref for f in tree.files()] == [(tmp_path / "raw" / "a.jsonl").as_uri()]
    assert [p.ref for p in tree.parents] == ["pairs@1"] and [p.ref for p in tree.parents[0].parents] == ["prompts@1"]

    # run 2: new raw file, a destructive challenger; killed as its training starts
    lifecycle_project.prompts("b.jsonl", "exercise", 10)
    lifecycle_project.train(DESTRUCTIVE_DPO)
    _kill_during_training(recipe, prefect_api)
    killed = folder.latest()
    assert killed is not None and killed.run == 2 and killed.status == "running"
    assert killed.done("curate") and killed.done("label") and not killed.done("train:loop-dpo")
    assert read_alias(runs_root, "loop-dpo", "champion") == 1  # nothing moved

    second = lifecycle_flow(str(recipe))  # resumes run 2
    assert second["run"] == 2 and second["attempts"] == 2 and second["datasets"]["data"] == "prompts@2"
    states = task_states(second["orchestrator"]["flow_run_id"], expect=6)
    assert states["curate"] == ["Cached"] and states["label"] == ["Cached"], states
    assert "ingest" not in states and "feedback" not in states  # nothing inside them ran again
    assert states["train-loop-dpo"] == ["Completed"] and states["gate"] == ["Completed"]
    gate = second["gate"]
    assert not gate["promoted"] and "change:heldout_loss" in gate["failed"], gate
    assert gate["champion_before"] == "loop-dpo@1"
    assert read_alias(runs_root, "loop-dpo", "champion") == 1
    assert "**refused** `loop-dpo@2`" in Path(second["report"]).read_text(encoding="utf-8")

    # run 3: nothing new -> no-op, nothing trained
    third = lifecycle_flow(str(recipe))
    assert third["run"] == 3 and third["status"] == "noop" and "models" not in third
    assert len(list_versions(runs_root, "loop-dpo")) == 2
    states = task_states(third["orchestrator"]["flow_run_id"], expect=2)
    assert states["curate"] == ["Completed"] and "train-loop-dpo" not in states
    # a killed attempt leaves no history line (it could not write one); its resume does
    assert [(h["run"], h["status"], h["attempts"]) for h in folder.history()] == [
        (1, "done", 1),
        (2, "done", 2),
        (3, "noop", 1),
    ]
