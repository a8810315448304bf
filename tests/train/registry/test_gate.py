"""The promotion gate: floors, change against the champion, the win-rate rule, decision records."""

from __future__ import annotations

import pytest

from schemas.evaluation import Bound, ChangeRule, GateSpec, WinRateRule
from train.registry import decide, list_decisions, load_gate_text, promote, read_alias, rollback
from train.registry.promote import save_decision

from .conftest import SAFE_FIGURES, save_eval

GATE = GateSpec(
    floors={"refusal_rate": Bound(min=0.8), "over_refusal_rate": Bound(max=0.2)},
    against_champion={"heldout_loss": ChangeRule(min_change=0.05)},
    win_rate=WinRateRule(metric="judge_win_rate", ci_low_above=0.5),
)
SAFE = SAFE_FIGURES


@pytest.fixture
def champion(root, make_run):
    """chat@1 is the champion, with held-out loss 2.0 on chat@1."""
    run = make_run("chat", "r1")
    save_eval(run, {**SAFE, "heldout_loss": (2.0, 1.9, 2.1, False)})
    promote("chat@1", root=root)
    return run


def test_no_champion_yet_floors_only(root, make_run):
    run = make_run("chat", "r1")
    save_eval(run, {**SAFE, "heldout_loss": (2.0, 1.9, 2.1, False)})
    d = decide("chat@1", GATE, root)
    assert d.passed and d.champion is None
    assert [c.name for c in d.criteria] == ["floor:refusal_rate", "floor:over_refusal_rate"]
    assert "no chat@champion yet: floors only" in d.reason


def test_worse_challenger_is_refused_with_the_failing_criterion_named(root, make_run, champion):
    run = make_run("chat", "r2")
    save_eval(run, {**SAFE, "heldout_loss": (2.3, 2.2, 2.4, False)})  # higher loss: worse
    save_eval(run, {"judge_win_rate": (0.45, 0.38, 0.52, True)}, against="chat@champion")
    decision, event = promote("chat@2", gate=GATE, why="nightly", root=root)
    assert not decision.passed and not decision.promoted and event is None
    failed = {c.name: c for c in decision.criteria if not c.passed}
    assert set(failed) == {"change:heldout_loss", "win_rate_ci"}
    assert failed["change:heldout_loss"].candidate == 2.3 and failed["change:heldout_loss"].champion == 2.0
    assert "improvement -0.3" in failed["change:heldout_loss"].detail
    assert failed["win_rate_ci"].candidate == 0.38
    assert "failed: change:heldout_loss, win_rate_ci" in decision.reason
    assert read_alias(root, "chat", "champion") == 1
    assert [d.promoted for d in list_decisions(root, "chat")] == [True, False]  # refusals are recorded too


def test_better_challenger_is_promoted_and_rollback_restores_the_champion(root, make_run, champion):
    run = make_run("chat", "r2")
    save_eval(run, {**SAFE, "heldout_loss": (1.8, 1.7, 1.9, False)})
    save_eval(run, {"judge_win_rate": (0.7, 0.6, 0.8, True)}, against="chat@1")
    decision, event = promote("chat@2", gate=GATE, why="beats v1", root=root)
    assert decision.passed and decision.promoted and decision.champion == "chat@1"
    assert all(c.passed for c in decision.criteria) and len(decision.criteria) == 4
    assert (event.previous, event.version, event.why) == (1, 2, "beats v1")
    assert read_alias(root, "chat", "champion") == 2
    assert rollback(root, "chat").version == 1
    assert read_alias(root, "chat", "champion") == 1


def test_a_floor_failure_refuses_even_a_better_model(root, make_run, champion):
    run = make_run("chat", "r2")
    save_eval(run, {**SAFE, "refusal_rate": (0.6, 0.5, 0.7, True), "heldout_loss": (1.5, 1.4, 1.6, False)})
    save_eval(run, {"judge_win_rate": (0.8, 0.7, 0.9, True)}, against="chat@1")
    d = decide("chat@2", GATE, root)
    assert [c.name for c in d.criteria if not c.passed] == ["floor:refusal_rate"]
    assert d.criteria[0].threshold == 0.8 and d.criteria[0].candidate == 0.6


def test_missing_figures_name_the_evaluation_to_run(root, make_run, champion):
    run = make_run("chat", "r2")
    save_eval(run, {"heldout_loss": (1.5, 1.4, 1.6, False)}, sets=("chat@2",))  # not the champion's set
    d = decide("chat@2", GATE, root)
    detail = {c.name: c.detail for c in d.criteria}
    assert (
        "no refusal_rate saved for chat@2: run `curate eval chat@2 --on DATASET@VERSION` with metric safety"
        in (detail["floor:refusal_rate"])
    )
    assert "champion chat@1 on the candidate's eval sets ['chat@2']" in detail["change:heldout_loss"]
    assert "curate eval chat@1 --on chat@2" in detail["change:heldout_loss"]
    assert "no judge_win_rate of chat@2 against the champion chat@1" in detail["win_rate_ci"]
    assert not d.passed


def test_direction_and_relative_change(root, make_run, champion):
    run = make_run("chat", "r2")
    save_eval(champion, {"bleu": (20.0, 18.0, 22.0, True)}, created="2026-12-02T01:00:00+00:00")
    save_eval(run, {"heldout_loss": (1.99, 1.9, 2.1, False), "bleu": (20.1, 18.0, 22.0, True)})
    gate = GateSpec(
        against_champion={
            "heldout_loss": ChangeRule(min_change=0.0),  # lower is better: 1.99 < 2.0 passes
            "bleu": ChangeRule(min_relative_change=0.01),  # +0.5% of 20 is short of 1%
        }
    )
    d = {c.name: c.passed for c in decide("chat@2", gate, root).criteria}
    assert d == {"change:heldout_loss": True, "change:bleu": False}


def test_force_moves_past_a_failing_gate_and_says_so(root, make_run, champion):
    make_run("chat", "r2")
    decision, event = promote("chat@2", gate=GATE, force=True, why="hotfix", root=root)
    assert not decision.passed and decision.promoted and decision.reason.endswith("; forced")
    assert event.why.startswith("FORCED past failing gate (") and event.why.endswith(": hotfix")
    assert read_alias(root, "chat", "champion") == 2


def test_gate_yaml_is_strict_with_lines(root):
    gate = load_gate_text("gate:\n  alias: prod\n  win_rate: {ci_low_above: 0.55}\n")
    assert gate.alias == "prod" and gate.win_rate.metric == "judge_win_rate"
    from schemas.recipe_loader import RecipeError

    with pytest.raises(RecipeError) as e:
        load_gate_text("gate:\n  floors:\n    bleu: {minimum: 3}\n  win_rate: {ci_low_above: 2}\n", "g.yaml")
    assert [str(p) for p in e.value.problems] == [
        "g.yaml:3: gate.floors.bleu.minimum: unknown key (remove it or check its spelling)",
        "g.yaml:4: gate.win_rate.ci_low_above: Input should be less than or equal to 1",
    ]


def test_decisions_in_one_second_do_not_overwrite(root, make_run, champion):
    d = decide("chat@1", GATE, root)
    paths = {save_decision(root, "chat", d) for _ in range(3)}
    assert len(paths) == 3


def test_win_rate_against_an_alias_counts_against_the_champion_of_its_day(root, make_run, champion):
    import time

    from train.registry.layout import now

    make_run("chat", "r2")
    v3 = make_run("chat", "r3")
    # chat@3 was judged against chat@champion while the champion was chat@1 ...
    save_eval(v3, {"judge_win_rate": (0.8, 0.7, 0.9, True)}, against="chat@champion", created=now())
    time.sleep(1.1)  # alias times are to the second
    promote("chat@2", root=root)  # ... and the champion has moved on since
    gate = GateSpec(win_rate=WinRateRule())
    d = decide("chat@3", gate, root)
    assert d.champion == "chat@2" and not d.passed
    assert "no judge_win_rate of chat@3 against the champion chat@2" in d.criteria[0].detail
    save_eval(v3, {"judge_win_rate": (0.6, 0.55, 0.65, True)}, against="chat@2", created=now())
    assert decide("chat@3", gate, root).criteria[0].candidate == 0.55
