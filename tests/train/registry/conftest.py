"""Registry test fixtures: runs written the way `curate train` lays them out (manifest + card via
train.lineage.write_lineage), and evaluations saved the way the runner saves them (save_report)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.evaluation import EvalReport, EvalSet, MetricValue
from train.eval.results import save_report
from train.lineage import write_lineage
from train.registry import register_run

# metric -> (value, ci_low, ci_high, higher_is_better)
Figures = dict[str, tuple[float, float, float, bool]]
SAFE_FIGURES: Figures = {"refusal_rate": (0.9, 0.85, 0.95, True), "over_refusal_rate": (0.1, 0.05, 0.15, False)}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def make_run(root: Path) -> Callable[..., Path]:
    """``make_run("chat", "r1")``: a finished run folder ROOT/chat/r1 (registered unless register=False)."""

    def make(name: str, run_id: str, register: bool = True) -> Path:
        run = root / name / run_id
        (run / "adapter").mkdir(parents=True)
        manifest = {
            "name": name,
            "run_id": run_id,
            "created": f"2026-12-01T00:00:{len(list((root / name).glob('*/manifest.json'))):02d}+00:00",
            "method": "sft",
            "base_model": {"spec": "tiny"},
            "dataset": {"ref": "chat@1", "content_hash": "ab", "split": "train", "rows": 10},
            "output": {"kind": "adapter", "path": str(run / "adapter")},
        }
        write_lineage(run, manifest)
        if register:
            register_run(run)
        return run

    return make


def save_eval(
    run: Path,
    figures: Figures,
    sets: tuple[str, ...] = ("chat@1",),
    against: str | None = None,
    created: str = "2026-12-02T00:00:00+00:00",
) -> Path:
    """Save an EvalReport of ``run`` with ``figures`` on the eval sets ``sets``."""
    report = EvalReport(
        model=str(run),
        model_dir=str(run),
        created=created,
        sets=[EvalSet(ref=s, split="eval", kind="sft", rows=50, scored=50) for s in sets],
        metrics=[
            MetricValue(metric=m, value=v, n=50, ci_low=lo, ci_high=hi, higher_is_better=hib)
            for m, (v, lo, hi, hib) in figures.items()
        ],
        against=against,
    )
    return save_report(run, report)
