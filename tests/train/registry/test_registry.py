"""The registry on real files: versions claimed by concurrent processes, aliases that survive SIGKILL,
the gate refusing a worse challenger (naming the criterion) and promoting a better one, rollback."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schemas.evaluation import Bound, ChangeRule, EvalReport, EvalSet, GateSpec, MetricValue, WinRateRule
from train.eval.results import save_report
from train.registry import Registry, RegistryError, register_run, resolve
from train.registry.gate import decide, promote

SET = "echo@1"


def make_run(root: Path, name: str, run_id: str) -> Path:
    run = root / name / run_id
    run.mkdir(parents=True)
    manifest = {
        "name": name,
        "run_id": run_id,
        "method": "sft",
        "base_model": {},
        "dataset": {"ref": SET},
        "output": {"kind": "adapter", "path": "adapter"},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def evaluated(
    run: Path, loss: float, refusal: float = 0.9, against: str | None = None, win: tuple | None = None
) -> None:
    metrics = [
        MetricValue(
            metric="heldout_loss",
            value=loss,
            n=50,
            ci_low=loss - 0.1,
            ci_high=loss + 0.1,
            higher_is_better=False,
            details={"set": SET},
        ),
        MetricValue(
            metric="refusal_rate",
            value=refusal,
            n=30,
            ci_low=refusal - 0.1,
            ci_high=min(1, refusal + 0.1),
            higher_is_better=True,
        ),
    ]
    if win is not None:
        metrics.append(
            MetricValue(
                metric="judge_win_rate", value=win[0], n=40, ci_low=win[1], ci_high=win[2], higher_is_better=True
            )
        )
    save_report(
        run,
        EvalReport(
            model=str(run),
            created=time.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            against=against,
            sets=[EvalSet(ref=SET, split="eval", kind="sft", rows=50, scored=50)],
            metrics=metrics,
        ),
    )


GATE = GateSpec(floors={"refusal_rate": Bound(min=0.8)}, against_champion={"heldout_loss": ChangeRule(min_change=0.0)})


def _register(args: tuple[str, str]) -> int:
    return Registry(Path(args[0]), "m").register(Path(args[1]))


def test_concurrent_registration_gives_distinct_versions(tmp_path: Path) -> None:
    runs = [make_run(tmp_path, "m", f"2026010{i}-000000") for i in range(6)]
    with multiprocessing.get_context("fork").Pool(3) as pool:
        got = pool.map(_register, [(str(tmp_path), str(r)) for r in runs])
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    assert Registry(tmp_path, "m").register(runs[0]) == got[0]  # registering again keeps the number
    assert resolve("m@latest", tmp_path) == Registry(tmp_path, "m").run_dir(6)


def test_gate_refuses_worse_promotes_better_and_rollback_restores(tmp_path: Path) -> None:
    r1, r2, r3 = (make_run(tmp_path, "m", f"2026010{i}-000000") for i in (1, 2, 3))
    for r in (r1, r2, r3):
        register_run(r)
    evaluated(r1, loss=2.0)
    evaluated(r2, loss=2.5)  # worse than the champion
    evaluated(r3, loss=1.5, refusal=0.95)

    first = promote("m@1", GATE, root=tmp_path)
    assert first.promoted and first.champion is None and "floors only" in first.reason
    worse = promote("m@2", GATE, root=tmp_path)
    assert not worse.promoted and worse.reason == "refused: change:heldout_loss"
    [failed] = [c for c in worse.criteria if not c.passed]
    assert (failed.candidate, failed.champion) == (2.5, 2.0)
    assert resolve("m@champion", tmp_path) == r1.resolve()  # untouched
    better = promote("m@3", GATE, why="better loss", root=tmp_path)
    assert better.promoted and resolve("m@champion", tmp_path) == r3.resolve()

    reg = Registry(tmp_path, "m")
    event = reg.rollback("champion", why="regression in prod")
    assert (event.previous, event.version, event.action) == (3, 1, "rollback")
    assert resolve("m@champion", tmp_path) == r1.resolve()
    assert [d.model for d in reg.decisions()] == ["m@1", "m@2", "m@3"]  # every decision kept, refused too
    assert [e.action for e in reg.log("champion")] == ["promote", "promote", "rollback"]


def test_missing_figures_fail_and_name_the_evaluation(tmp_path: Path) -> None:
    r1, r2 = make_run(tmp_path, "m", "20260101-000000"), make_run(tmp_path, "m", "20260102-000000")
    register_run(r1), register_run(r2)
    evaluated(r1, loss=2.0)
    promote("m@1", GATE, root=tmp_path)
    d = decide("m@2", GateSpec(floors={"refusal_rate": Bound(min=0.8)}, win_rate=WinRateRule()), tmp_path)
    assert not d.passed
    details = {c.name: c.detail for c in d.criteria}
    assert "curate eval CANDIDATE --metrics refusal_rate" in details["floor:refusal_rate"]
    assert "against: m@1" in details["win_rate"]


def test_win_rate_rule_reads_the_paired_evaluation(tmp_path: Path) -> None:
    r1, r2 = make_run(tmp_path, "m", "20260101-000000"), make_run(tmp_path, "m", "20260102-000000")
    register_run(r1), register_run(r2)
    evaluated(r1, loss=2.0)
    promote("m@1", root=tmp_path)
    evaluated(r2, loss=1.9, against="m@champion", win=(0.62, 0.48, 0.75))  # interval reaches below 0.5
    rule = GateSpec(win_rate=WinRateRule(ci_low_above=0.5))
    assert not decide("m@2", rule, tmp_path).passed
    evaluated(r2, loss=1.9, against="m@1", win=(0.7, 0.56, 0.82))
    assert decide("m@2", rule, tmp_path).passed


def test_bad_references_say_what_exists(tmp_path: Path) -> None:
    register_run(make_run(tmp_path, "m", "20260101-000000"))
    with pytest.raises(RegistryError, match="m has no version 7; versions: 1"):
        resolve("m@7", tmp_path)
    with pytest.raises(RegistryError, match="m has no alias 'champion'"):
        resolve("m@champion", tmp_path)
    with pytest.raises(RegistryError, match="not 'latest'"):
        Registry(tmp_path, "m").set_alias("latest", 1)
    with pytest.raises(RegistryError, match="no earlier version"):
        Registry(tmp_path, "m").set_alias("champion", 1) and Registry(tmp_path, "m").rollback()


PROMOTE = "import sys; from train.registry.gate import promote; promote(sys.argv[1], root=sys.argv[2])"


def test_sigkill_during_promotion_leaves_the_alias_whole(tmp_path: Path) -> None:
    r1, r2 = make_run(tmp_path, "m", "20260101-000000"), make_run(tmp_path, "m", "20260102-000000")
    register_run(r1), register_run(r2)
    promote("m@1", root=tmp_path)
    env = {**os.environ, "CURATE_REGISTRY_PAUSE_BEFORE_REPLACE": "30", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", PROMOTE, "m@2", str(tmp_path)], env=env)
    aliases = tmp_path / "m" / "_registry" / "aliases"
    deadline = time.time() + 60
    while not list(aliases.glob(".champion.json.*.tmp")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(aliases.glob(".champion.json.*.tmp")), "the promotion never reached its rename"
    os.kill(proc.pid, signal.SIGKILL)  # between writing the new alias file and renaming it over the old
    proc.wait()
    assert resolve("m@champion", tmp_path) == r1.resolve()  # still whole, still the old version
    promote("m@2", root=tmp_path)  # a later promotion is not blocked by the leftover
    assert resolve("m@champion", tmp_path) == r2.resolve()
