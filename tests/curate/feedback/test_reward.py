"""The reward-model judge on a reward model trained here by the real `curate train` (tiny Llama, LoRA SEQ_CLS).

The run trains on pairs whose chosen answer is always "The sky is blue." and whose rejected one is a
numbered dog; held-out prompts and dogs check that the judge reads the scores the right way round.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

from curate.feedback.cache import RequestCache
from curate.feedback.reward import RewardModelJudge, locate
from curate.models.backend import Messages
from curate.models.source import ModelError
from schemas.kinds import MESSAGES

GOOD = "The sky is blue."


def _msgs(role: str, text: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


def _prompt(i: int) -> Messages:
    return (("user", f"What color is the sky at {i}?"),)


def _train(root: Path, lm: Path, name: str, good_is_chosen: bool = True, steps: int = 20) -> Path:
    """A `curate train` run of method reward on 32 pairs of (the sky is blue, a numbered dog)."""
    from curate.store import Store
    from schemas.train_recipe_loader import load_train_recipe_doc
    from train.run import train_recipe

    n = 32
    good, bad = [_msgs("assistant", GOOD)] * n, [_msgs("assistant", f"A dog number {i}.") for i in range(n)]
    pairs = pl.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "prompt": [_msgs("user", _prompt(i)[0][1]) for i in range(n)],
            "chosen": good if good_is_chosen else bad,
            "rejected": bad if good_is_chosen else good,
            "split": ["train"] * n,
        },
        schema={"id": pl.String, "prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "split": pl.String},
    )
    Store(root / "store").publish(name, pairs, {"kind": "preference"})
    text = (
        f"name: {name}\nmodel: {{base: {lm}}}\n"
        f"dataset: {{ref: {name}@latest, store: {root / 'store'}}}\nmethod: reward\n"
        'adapter: {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0}\n'
        f'training: {{"max_steps": {steps}, "batch_size": 8, "max_length": 64, "learning_rate": 0.003}}\n'
        f"output: {{dir: {root / 'runs'}}}\n"
    )
    outcome = train_recipe(load_train_recipe_doc(text, str(root / f"{name}.yaml")))
    assert outcome.run_dir is not None
    return outcome.run_dir


@pytest.fixture(scope="module")
def reward_run(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reward model that learned to prefer "The sky is blue." (20 steps, a few seconds)."""
    return _train(tmp_path_factory.mktemp("rm"), tiny_lm, "rm")


def _items(ids: range) -> list[tuple[Messages, str]]:
    return [(_prompt(i), GOOD if i % 2 else f"A dog number {i}.") for i in ids]


def test_scores_are_finite_deterministic_and_batch_size_free(reward_run: Path) -> None:
    items = _items(range(100, 107))
    # fp32 on the CPU: on a GPU the judge runs in bf16, where padding can move a score by bf16 rounding
    one = RewardModelJudge.load(str(reward_run), batch_size=1, device="cpu").rate(items)
    four = RewardModelJudge.load(str(reward_run), batch_size=4, device="cpu")
    again = four.rate(items)
    assert all(r.error is None and r.score is not None and math.isfinite(r.score) for r in one)
    assert [r.score for r in four.rate(items)] == [r.score for r in again]
    for a, b in zip(one, again, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-4)
    assert four.identity()["kind"] == "reward_model" and len(four.identity()["adapter_sha256"]) == 64
    assert four.identity()["run"]["name"] == "rm"


def test_the_trained_preference_shows_on_held_out_prompts(reward_run: Path, tiny_lm: Path, tmp_path: Path) -> None:
    # a random score head prefers one of the two answers everywhere by chance: a run trained the
    # other way round must prefer the other one, so only what was learned can pass both
    flipped = _train(tmp_path, tiny_lm, "rm-flipped", good_is_chosen=False)
    held_out = range(200, 230)
    for run, want_good in ((reward_run, True), (flipped, False)):
        judge = RewardModelJudge.load(str(run))
        good = judge.rate([(_prompt(i), GOOD) for i in held_out])
        bad = judge.rate([(_prompt(i), f"A dog number {i}.") for i in held_out])
        wins = sum((g.score > b.score) == want_good for g, b in zip(good, bad, strict=True))  # type: ignore[operator]
        assert wins > len(held_out) / 2, f"{run.name}: the trained preference held on {wins}/{len(held_out)} prompts"


def test_an_over_long_item_fails_with_its_reason_and_the_batch_goes_on(reward_run: Path) -> None:
    judge = RewardModelJudge.load(str(reward_run), batch_size=2)
    long = " ".join(["the sky is blue"] * 400)  # past the tiny model's 1024 positions
    rs = judge.rate([(_prompt(1), GOOD), (_prompt(2), long), (_prompt(3), "A dog.")])
    assert rs[1].score is None and rs[1].error is not None and rs[1].error.startswith("too_long: ")
    assert "> context 1024" in rs[1].error
    assert rs[0].error is None and rs[2].error is None and judge.calls == 2


def test_a_cached_rerun_asks_the_model_nothing(reward_run: Path, tmp_path: Path) -> None:
    items = _items(range(300, 306))
    first = RewardModelJudge.load(str(reward_run), cache=RequestCache(tmp_path / "c.sqlite"))
    scores = [r.score for r in first.rate(items)]
    assert first.calls == 6
    rerun = RewardModelJudge.load(str(reward_run), cache=RequestCache(tmp_path / "c.sqlite"))
    assert [r.score for r in rerun.rate(items)] == scores and rerun.calls == 0


def test_refs_name_runs_and_refuse_what_is_not_a_reward_model(reward_run: Path, tiny_lm: Path) -> None:
    runs_root = reward_run.parent.parent
    by_name = locate("rm", runs_root)
    assert by_name.run is not None and Path(by_name.run["dir"]) == reward_run.resolve()
    assert by_name.adapter is not None and (by_name.adapter / "adapter_config.json").is_file()
    with pytest.raises(ModelError, match="without a sequence-classification head"):
        locate(str(tiny_lm))
    with pytest.raises(ModelError, match="curate models list"):
        locate("no-such-run", runs_root)
    from curate.feedback.judges import build_judge
    from schemas.feedback import JudgeSpec

    built = build_judge(JudgeSpec(kind="reward_model", model=str(reward_run), batch_size=2))
    assert isinstance(built, RewardModelJudge) and built.batch_size == 2
    manifest = json.loads((reward_run / "manifest.json").read_text())
    assert manifest["method"] == "reward" and manifest["output"]["kind"] == "adapter"


def test_the_feedback_step_relabels_pairs_with_the_reward_model(reward_run: Path, tmp_path: Path) -> None:
    """Preference rows whose labels are backwards, re-judged by the reward model through a feedback part."""
    from curate.feedback.part import label_part
    from schemas.feedback import FeedbackSpec
    from schemas.kinds import Kind, polars_schema

    n = 6
    src = {"name": "noisy", "uri": "file:///noisy.jsonl", "sha256": "x", "row": 1}
    rows = pl.DataFrame(
        {
            "id": [f"n{i}" for i in range(n)],
            "prompt": [_msgs("user", _prompt(200 + i)[0][1]) for i in range(n)],
            "chosen": [_msgs("assistant", f"A dog number {200 + i}.") for i in range(n)],
            "rejected": [_msgs("assistant", GOOD)] * n,
            "source": [src] * n,
        },
        schema={
            k: v
            for k, v in polars_schema(Kind.PREFERENCE).items()
            if k in ("id", "prompt", "chosen", "rejected", "source")
        },
    )
    rows.write_parquet(tmp_path / "noisy.parquet")
    spec = FeedbackSpec.model_validate(
        {"input_kind": "preference", "judge": {"kind": "reward_model", "model": str(reward_run)}}
    )
    res = label_part(tmp_path / "noisy.parquet", spec, Kind.PREFERENCE, Kind.PREFERENCE, tmp_path / "out", None)
    assert res["tally"]["balanced"] and res["tally"]["outcomes"]["pairs"] == n
    out = pl.read_parquet(res["data"])
    chosen = out["chosen"].list.first().struct.field("content")
    assert (chosen == GOOD).all() and (out["margin"] > 0).all()
    assert out["judge"].struct.field("model").str.starts_with(str(reward_run)).all()
