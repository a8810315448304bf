"""Smoke test of the Argilla benchmark: a tiny run end to end, checking the JSON it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("argilla")]

ROOT = Path(__file__).resolve().parents[2]


def test_bench_argilla_smoke(argilla_venv: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ARGILLA_API_URL", "ARGILLA_API_KEY")}
    env["CURATE_ARGILLA_VENV"] = str(argilla_venv)
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_argilla.py", "--records", "40", "--queries", "3", "--repeats", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["benchmark"] == "argilla" and out["records"] == 40
    assert out["up_fresh_home_s"] > 0 and out["up_existing_home_s"] > 0
    assert out["push"]["created"] == 40 and out["repush"] == {**out["repush"], "created": 0, "updated": 40}
    assert out["ui_search"]["queries"] == 3 and out["ui_search"]["median_ms"] > 0
    assert out["temp_dirs_left"] == []
