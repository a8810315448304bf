"""``curate feedback calibrate|prompts`` in a subprocess on a real tiny LM judge: --json, the
written report, the request cache, and exit 2 when agreement is below ``min_agreement``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curate.feedback.calibration import load_labelled
from tests.curate.feedback.test_calibration import build_position_biased_model, preference_rows, write_jsonl

pytestmark = pytest.mark.integration


def curate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


RECIPE = """
name: judge-check
output: {{kind: preference, dir: runs}}
sources: [{{name: prefs, path: pairs.jsonl, convert: alpaca_eval_to_preference}}]
feedback:
  input_kind: preference
  judge: {{kind: pairwise, model: "{model}", swap: {swap}, max_new_tokens: 4}}
  calibration: {{data: pairs.jsonl, limit: 10, min_agreement: {min_agreement}}}
"""


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_position_biased_model(tmp_path_factory.mktemp("biased"))


def test_calibrate_json_gate_and_cache(biased: Path, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "pairs.jsonl", preference_rows(10))
    ref = load_labelled("pairs.jsonl", tmp_path, limit=10)["label"].to_numpy()
    share_a = float(np.mean(ref[ref >= 0] == 0))
    # without the swap the first-position bias "agrees" wherever the reference prefers a
    (tmp_path / "plain.yaml").write_text(
        RECIPE.format(model=biased, swap="false", min_agreement=round(share_a - 0.01, 4)), encoding="utf-8"
    )
    res = curate("feedback", "calibrate", "plain.yaml", "--json", "--n-boot", "100", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["n"] == 10 and rep["passed"] is True and rep["agreement"]["value"] == round(share_a, 4)
    assert rep["data"]["ref"] == str(tmp_path / "pairs.jsonl") and rep["model_calls"] == 10
    folder = tmp_path / "runs" / "judge-check" / "calibration"
    assert json.loads((folder / "calibration.json").read_text(encoding="utf-8"))["agreement"] == rep["agreement"]
    assert (folder / "calibration.md").exists() and (folder / "calibration.png").exists()

    # with the swap every verdict flips into a tie: agreement 0, below the gate -> exit 2, report still written
    (tmp_path / "swap.yaml").write_text(RECIPE.format(model=biased, swap="true", min_agreement=0.5), encoding="utf-8")
    res = curate("feedback", "calibrate", "swap.yaml", "--json", "--out", "gate", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "calibration failed" in res.stderr and "below calibration.min_agreement 0.5" in res.stderr
    rep = json.loads(res.stdout)
    assert rep["passed"] is False and rep["position_flip_rate"]["value"] == 1.0 and rep["agreement"]["value"] == 0
    # the first order of each pair was asked (and cached) by the unswapped run: only the swapped order is new
    assert rep["model_calls"] == 10
    assert json.loads((tmp_path / "gate" / "calibration.json").read_text(encoding="utf-8"))["passed"] is False


def test_calibrate_input_errors_exit_2(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "name: x\noutput: {kind: preference}\nsources: [{name: s, path: p.jsonl, convert: alpaca_eval_to_preference}]\n"
        "feedback: {input_kind: preference, judge: {kind: pairwise, model: m}}\n",
        encoding="utf-8",
    )
    res = curate("feedback", "calibrate", "r.yaml", cwd=tmp_path)
    assert res.returncode == 2 and "feedback.calibration is missing" in res.stderr
    res = curate("feedback", "calibrate", "r.yaml", "--data", "nothere.jsonl", cwd=tmp_path)
    assert res.returncode == 2 and "does not exist" in res.stderr
    (tmp_path / "bad.yaml").write_text("name: x\nfeedback: {judge: {kind: vote, model: m}}\n", encoding="utf-8")
    res = curate("feedback", "calibrate", "bad.yaml", cwd=tmp_path)
    assert res.returncode == 2 and "recipe invalid" in res.stderr and "feedback.judge.kind" in res.stderr


def test_prompts_prints_templates_with_hashes(tmp_path: Path) -> None:
    from curate.feedback.prompts import PAIRWISE, prompt_hash

    res = curate("feedback", "prompts", "pairwise", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert list(info) == ["pairwise"] and info["pairwise"]["templates"][0] == {
        "hash": prompt_hash(PAIRWISE),
        "text": PAIRWISE,
    }
    res = curate("feedback", "prompts", cwd=tmp_path)
    assert res.returncode == 0 and "== critique_revise" in res.stdout and prompt_hash(PAIRWISE) in res.stdout
    assert curate("feedback", "prompts", "vote", cwd=tmp_path).returncode == 2
