"""`curate lifecycle run|status` and `curate validate` on lifecycle recipes, through the real CLI
(a lifecycle with no train step: the curation refresh as a lifecycle, so no model loads)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.lifecycle.state import RunFolder

DATA = """name: notes
output: {kind: text, dir: ../runs}
sources:
  - {name: raw, path: "../raw/*.jsonl", convert: text}
stages:
  - {type: exact_dedup}
publish: {store: ../store}
"""


def _curate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _project(tmp: Path, loop: str = "name: refresh-only\ndata: data.yaml\n") -> Path:
    (tmp / "raw").mkdir()
    (tmp / "raw" / "a.jsonl").write_text('{"text": "first note"}\n{"text": "second note"}\n{"text": "first note"}\n')
    (tmp / "recipes").mkdir()
    (tmp / "recipes" / "data.yaml").write_text(DATA)
    (tmp / "recipes" / "loop.yaml").write_text(loop)
    return tmp / "recipes" / "loop.yaml"


@pytest.mark.integration
def test_lifecycle_cli_runs_then_noops_and_reports_status(tmp_path: Path) -> None:
    recipe = _project(tmp_path)
    ok = _curate("validate", str(recipe), cwd=tmp_path)
    assert ok.returncode == 0 and "lifecycle refresh-only: curate -> report" in ok.stdout, ok.stderr
    first = _curate("lifecycle", "run", str(recipe), "--local", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    s1 = json.loads(first.stdout)
    assert s1["status"] == "done" and s1["datasets"] == {"data": "notes@1"} and "gate" not in s1
    report = Path(s1["report"]).read_text()
    assert "published `notes@1`" in report and "| exact_dedup | 3 | 2 | 1 | exact_dedup: 1 |" in report
    second = _curate("lifecycle", "run", str(recipe), "--local", cwd=tmp_path)
    assert second.returncode == 0 and "run 2: noop" in second.stdout, second.stderr
    status = _curate("lifecycle", "status", str(recipe), cwd=tmp_path)
    assert "run 1 [done]" in status.stdout and "run 2 [noop]" in status.stdout, status.stderr


@pytest.mark.integration
def test_lifecycle_cli_refuses_a_broken_chain_and_a_second_concurrent_run(tmp_path: Path) -> None:
    recipe = _project(
        tmp_path,
        "name: loop\ndata: data.yaml\ntrain: [{recipe: nowhere.yaml}]\neval: {metrics: [heldout_loss]}\n"
        "gate: {floors: {}}\n",
    )
    bad = _curate("validate", str(recipe), cwd=tmp_path)
    assert bad.returncode == 2 and "nowhere.yaml: file not found" in bad.stdout + bad.stderr
    ran = _curate("lifecycle", "run", str(recipe), "--local", cwd=tmp_path)
    assert ran.returncode == 2 and "nowhere.yaml" in ran.stdout + ran.stderr

    recipe.write_text("name: loop\ndata: data.yaml\n")
    folder = RunFolder(tmp_path / "runs" / "lifecycle" / "loop")
    with folder.open("loop", {"file": str(recipe), "sha256": "0"}, {"name": "test"}):
        busy = _curate("lifecycle", "run", str(recipe), "--local", cwd=tmp_path)
    assert busy.returncode == 2 and "already running" in busy.stderr, busy.stderr
    assert "internal error" not in busy.stderr
