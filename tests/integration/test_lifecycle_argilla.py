"""The lifecycle with people in the loop (label mode ``both``) on the real local Argilla server: the AI
judge's candidates go to annotators, the loop waits, pulls what they decided, trains on it and promotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from curate.annotate.client import Connection
from curate.annotate.server import ArgillaHome
from curate.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("argilla")]

ROUTE_ALL = "route: {to_annotators: all}"
ANNOTATION = """annotation:
  dataset: loop-prefs
  questions: [ranking]
  wait: {min_completed: 6, timeout_s: 300, poll_s: 1}
  output: {store: ../store, dataset: pairs-human}
"""


def test_both_mode_waits_for_annotators_then_trains_on_their_labels(
    argilla_server: Any, lifecycle_project: Any
) -> None:
    root = lifecycle_project.root
    (root / "raw" / "a.jsonl").unlink()
    lifecycle_project.prompts("a.jsonl", "rain", 6)
    lifecycle_project.label(ROUTE_ALL, ANNOTATION, eval_fraction=0.0)
    loop = lifecycle_project.recipe
    text = loop.read_text().replace("label: {mode: ai, recipe: label.yaml}", "label: {mode: both, recipe: label.yaml}")
    # six pulled pairs get no eval split (pulls publish with the default 5%): score the training rows
    text = text.replace("  on: [label]\n", "  on: [label]\n  split: train\n  decontaminate: false\n")
    loop.write_text(text, encoding="utf-8")
    env = {**os.environ, **argilla_server.env(), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "lifecycle", "run", str(loop), "--local", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        creds = ArgillaHome(argilla_server.home).credentials()
        assert creds is not None
        owner = Connection(argilla_server.url, creds.api_key, "local").client()
        records: list[Any] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:  # the loop pushes, then waits
            ds = owner.datasets("loop-prefs", workspace="argilla")
            records = list(ds.records()) if ds is not None else []
            if len(records) == 6:
                break
            time.sleep(1)
        assert len(records) == 6, (proc.poll(), proc.stderr.read()[-3000:] if proc.poll() is not None else "")
        import argilla as rg

        me = owner.me.id
        for r in records:  # an annotator prefers the second answer every time
            ranking = [{"value": "response_2", "rank": 1}, {"value": "response_1", "rank": 2}]
            r.responses.add(rg.Response("ranking", ranking, user_id=me, status="submitted"))
        ds.records.log(records)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-4000:]
    s = json.loads(out)
    assert s["status"] == "done" and s["datasets"]["label"] == "pairs-human@1", s
    assert s["gate"]["promoted"], s["gate"]
    labelled = Store(root / "store").read("pairs-human@1")
    assert labelled.height == 6
    assert set(labelled["judge"].struct.field("kind")) == {"human"}  # who labelled what
    state = json.loads(Path(s["state"]).read_text())
    assert state["steps"]["label"]["output"]["mode"] == "both"
    assert state["steps"]["label"]["output"]["human"]["progress"]["completed"] >= 6
    assert state["steps"]["train:loop-dpo"]["output"]["dataset"] == "pairs-human@1"
