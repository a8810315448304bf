"""RLOO and GRPO (RLHF phase 3): checks before loading, rule rewards that teach, a reward model trained
by `curate train` scoring the policy, and the lineage that names it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from schemas.train_recipe import RewardFunctionSpec
from schemas.train_recipe_loader import load_train_recipe_doc
from train.compat import check_compat
from train.online import prompt_dataset, rule_reward, step_summary
from train.run import PreflightError, train_recipe

BASE = "name: t\nmodel: {base: m}\ndataset: {ref: d@1}\n"
LETTER_E = "{type: contains, pattern: e, max_count: 8, name: letter_e}"


def problems(text: str, tmp_path: Path | None = None) -> list[str]:
    out = f"output: {{dir: {tmp_path}}}\n" if tmp_path else ""
    return [str(p) for p in check_compat(load_train_recipe_doc(BASE + out + text, "t.yaml"))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"method: grpo\ngrpo: {{num_generations: 1, reward_functions: [{LETTER_E}]}}\n",
            "t.yaml:5: grpo.num_generations: GRPO compares each completion with the others",
        ),
        (
            f"method: rloo\ntraining: {{batch_size: 6}}\nrloo: {{num_generations: 4, reward_functions: [{LETTER_E}]}}"
            "\n",
            "t.yaml:5: training.batch_size: the effective batch (batch_size 6 x grad_accum 1 x 1 process(es) = 6 "
            "completions) must hold whole groups of rloo.num_generations=4; set training.batch_size: 8",
        ),
        ("method: grpo\ngrpo: {num_generations: 2}\n", "t.yaml:5: grpo: grpo needs a reward: set grpo.reward_model"),
        (
            f"method: grpo\ngrpo: {{num_generations: 2, reward_weights: [1, 2], reward_functions: [{LETTER_E}]}}\n",
            "grpo.reward_weights: 2 weight(s) for 1 reward(s)",
        ),
        (
            "method: grpo\ngrpo: {num_generations: 2, reward_functions: [{type: format, pattern: '(?=x)'}]}\n",
            "grpo.reward_functions[0].pattern: not a valid regular expression (Rust regex syntax): look-around",
        ),
        (
            "method: grpo\ngrpo: {num_generations: 2, reward_functions: [{type: length_penalty}]}\n",
            "grpo.reward_functions[0]: length_penalty needs target",
        ),
        (
            f"method: grpo\ngrpo: {{num_generations: 2, reward_functions: [{LETTER_E}, {LETTER_E}]}}\n",
            "grpo.reward_functions: reward names repeat (letter_e, letter_e)",
        ),
    ],
)
def test_online_recipes_are_refused_before_anything_loads(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_a_missing_reward_model_fails_pre_flight_naming_where_it_was_looked_for(train_doc, tmp_path: Path) -> None:
    doc = train_doc("grpo", dataset="pairs", extra="grpo: {num_generations: 2, reward_model: my-rm}\n")
    with pytest.raises(PreflightError) as e:
        train_recipe(doc, dry_run=True)
    [check] = [c for c in e.value.report.checks if c.name == "reward"]
    assert (check.level, check.field) == ("error", "grpo.reward_model")
    runs = tmp_path / "runs"
    assert check.message == (
        f"'my-rm' is neither a `curate train` run (no manifest.json; also looked under {runs}/my-rm) nor a model "
        f"folder; list runs with `curate models list --root {runs}`"
    )
    assert not runs.exists()  # nothing was written


def test_an_unknown_registry_alias_names_what_exists(train_doc) -> None:
    doc = train_doc("rloo", dataset="pairs", extra="rloo: {num_generations: 2, reward_model: rm@champion}\n")
    with pytest.raises(PreflightError, match=r"\[rloo.reward_model\]: no trained model named 'rm' under .*known: none"):
        train_recipe(doc, dry_run=True)


def test_an_sft_run_is_no_reward_model(train_doc, tmp_path: Path) -> None:
    sft = train_recipe(train_doc("sft", training={"max_steps": 1})).manifest
    doc = train_doc("grpo", dataset="pairs", extra=f"grpo: {{num_generations: 2, reward_model: {sft['name']}}}\n")
    with pytest.raises(PreflightError) as e:
        train_recipe(doc, dry_run=True)
    assert "is a `curate train` run of method sft, not a reward model" in e.value.report.format()
    ok = train_recipe(
        train_doc("grpo", dataset="pairs", extra=f"grpo: {{num_generations: 2, reward_functions: [{LETTER_E}]}}\n"),
        dry_run=True,
    )
    assert ok.report.ok


def test_rule_rewards_score_whole_batches() -> None:
    fmt = rule_reward(RewardFunctionSpec(type="format", pattern=r"The answer is \d+\."))
    assert fmt(completions=[" The answer is 42. ", "The answer is 42. Or not."]) == [1.0, 0.0]
    assert fmt.__name__ == "format"
    length = rule_reward(RewardFunctionSpec(type="length_penalty", target=10, name="short"))
    assert length(completions=["a", "b"], completion_ids=[[0] * 10, [0] * 15]) == [0.0, -0.5]
    assert length.__name__ == "short"


def test_prompts_come_from_any_dataset_with_prompts(train_doc) -> None:
    from train.common import load_data

    for ref, kind in (("chat", "sft"), ("pairs", "preference"), ("unpaired", "kto")):
        doc = train_doc("sft", dataset=ref)
        ds, manifest = load_data(doc.recipe, "train")
        prompts = prompt_dataset(ds, manifest["kind"])
        assert manifest["kind"] == kind and prompts.column_names == ["prompt"] and len(prompts) == len(ds)
        assert all(p[-1]["role"] == "user" for p in prompts["prompt"])


def _letter_run(train_doc, learning_rate: float):
    doc = train_doc(
        "grpo",
        adapter="none",
        dataset="pairs",
        training={"max_steps": 30, "batch_size": 8, "learning_rate": learning_rate},
        extra=f"grpo: {{num_generations: 4, max_completion_length: 8, reward_functions: [{LETTER_E}]}}\n",
    )
    out = train_recipe(doc)
    rewards = [e["reward"] for e in out.setup.logs if "reward" in e]
    assert len(rewards) == 30
    return out, statistics.mean(rewards[:5]), statistics.mean(rewards[-5:]), rewards


def test_a_prompt_shared_by_several_rows_is_sampled_once() -> None:
    import datasets

    why, how = [{"role": "user", "content": "Why?"}], [{"role": "user", "content": "How?"}]
    rows = [
        {"prompt": p, "completion": [{"role": "assistant", "content": a}], "label": good}
        for p, a, good in [(why, "x", True), (why, "y", False), (how, "z", True)]
    ]
    assert prompt_dataset(datasets.Dataset.from_list(rows), "kto")["prompt"] == [why, how]


def test_a_rule_reward_preferring_a_letter_rises_over_a_few_dozen_steps(train_doc) -> None:
    """The reward counts the letter e in 8 sampled tokens (full marks at 8): about 0.2 at random."""
    out, first, last, rewards = _letter_run(train_doc, 0.01)
    assert last > first + 0.15, rewards  # measured: 0.21 -> 0.58
    # the same sampling without learning stays flat: the rise is what the policy learned
    _, still_first, still_last, still_rewards = _letter_run(train_doc, 1e-9)
    assert abs(still_last - still_first) < 0.1, still_rewards
    m = json.loads((out.run_dir / "manifest.json").read_text())
    assert m["method"] == "grpo" and m["metrics"]["reward_first"] == rewards[0]
    assert m["metrics"]["reward_last"] == rewards[-1] and m["metrics"]["completion_length_mean"] > 0
    assert all("rewards/letter_e/mean" in e and "reward_std" in e for e in m["logs"] if "reward" in e)
    assert m["rewards"]["names"] == ["letter_e"] and m["reward_model"] is None
    assert "**Rewards**: letter_e x 1" in (out.run_dir / "README.md").read_text()


@pytest.mark.parametrize(("method", "adapter"), [("rloo", "lora"), ("grpo", "qlora"), ("rloo", "none")])
def test_each_method_and_adapter_trains_and_saves(train_doc, method: str, adapter: str) -> None:
    section = f"{{num_generations: 2, max_completion_length: 4, beta: 0.1, reward_functions: [{LETTER_E}]}}"
    doc = train_doc(
        method,
        adapter=adapter,
        dataset="unpaired",
        training={"max_steps": 2, "batch_size": 4},
        extra=f"{method}: {section}\n",
    )
    out = train_recipe(doc)
    m = out.manifest
    kind = "model" if adapter == "none" else "adapter"
    assert m["output"]["kind"] == kind and (out.run_dir / kind).is_dir()
    steps = [e for e in m["logs"] if "reward" in e]
    assert len(steps) == 2 and all(isinstance(e["kl"], float) for e in steps)
    assert all(0 < e["completions/mean_length"] <= 4 for e in steps)


def test_step_summary_ignores_steps_without_rewards() -> None:
    assert step_summary([{"step": 3, "train_loss": 0.1}]) == {}
