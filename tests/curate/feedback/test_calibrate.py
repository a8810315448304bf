"""Calibration figures: hand-checked on tiny inline labels, then measured on AlpacaEval's annotations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from curate.feedback.calibrate import agreement_report, cohen_kappa
from curate.feedback.pairwise import PairwiseJudge
from tests.curate.feedback.test_pairwise import RuleJudge

SHARED = Path(__file__).resolve().parents[4] / "shared" / "datasets"
ANNOTATIONS = SHARED / "alpaca_eval_alpaca7b_vs_davinci003_gpt4_annotations.json"


def test_kappa_by_hand() -> None:
    a = np.array([0, 0, 1, 1])
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa(a, np.array([1, 1, 0, 0])) == -1.0
    assert cohen_kappa(np.array([0, 0]), np.array([0, 0])) is None  # one label everywhere: undefined


def test_ties_count_against_agreement_but_not_decisive_agreement() -> None:
    r = agreement_report(np.array([0, 1, 0, 1, -1]), np.array([0, -1, 0, 0, 1]), n_boot=100)
    assert r["n"] == 5 and r["n_reference_decisive"] == 4
    assert r["agreement"]["value"] == 0.5 and r["decisive_agreement"]["value"] == round(2 / 3, 4)
    lo, hi = r["agreement"]["ci95"]
    assert 0 <= lo <= 0.5 <= hi <= 1


def test_length_preference() -> None:
    lengths = (np.array([1, 5, 1]), np.array([9, 2, 1]))
    r = agreement_report(np.array([1, 0, 0]), np.array([1, 1, 0]), lengths=lengths, n_boot=50)
    assert r["prefers_longer"]["value"] == 0.5 and r["reference_prefers_longer"]["value"] == 1.0


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        agreement_report(np.array([0]), np.array([0, 1]))


@pytest.mark.integration
@pytest.mark.skipif(not ANNOTATIONS.exists(), reason="../shared/datasets is absent")
def test_the_longer_answer_baseline_on_alpaca_eval() -> None:
    rows = json.loads(ANNOTATIONS.read_text(encoding="utf-8"))
    ref = np.array([{1: 0, 2: 1}.get(int(float(r["preference"] or 0)), -1) for r in rows], np.int8)
    pairs = [((("user", r["instruction"]),), r["output_1"], r["output_2"]) for r in rows]
    comps = PairwiseJudge(RuleJudge("longer")).compare(pairs)
    verdicts = np.array([-1 if c.winner is None else c.winner for c in comps], np.int8)
    lengths = (np.array([len(r["output_1"]) for r in rows]), np.array([len(r["output_2"]) for r in rows]))
    flips = np.array([not c.consistent for c in comps])
    rep = agreement_report(ref, verdicts, flips, lengths, n_boot=300)
    print(json.dumps(rep))
    # the rule answers A on equal lengths, a position bias the swap exposes on exactly those pairs
    same = float(np.mean(lengths[0] == lengths[1]))
    assert rep["n"] == 805 and rep["position_flip_rate"]["value"] == round(same, 4) and same < 0.05
    assert rep["prefers_longer"]["value"] == 1.0
    # AlpacaEval's GPT-4 annotator prefers the longer output often, so the rule agrees well above chance
    assert 0.55 < rep["agreement"]["value"] < 0.9
