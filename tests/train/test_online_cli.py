"""GRPO and RLOO end to end through the real `curate train` CLI: the policy starts from an SFT run, a
tiny reward model trained by `curate train` (method reward) scores it, and the lineage names both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.train.test_cli_integration import cli
from train.run import train_recipe

pytestmark = pytest.mark.integration


def _online_recipe(method: str, base: str, store: Path, extra: str = "") -> str:
    return (
        f"name: t-{method}\nmodel: {{base: {base}}}\n"
        f"dataset: {{ref: pairs@latest, store: {store}}}\nmethod: {method}\n"
        "adapter: {type: lora, r: 4, alpha: 8, dropout: 0.0}\n"
        "training: {max_steps: 2, batch_size: 4, learning_rate: 0.001, max_length: 64}\n"
        "output: {dir: runs}\n"
        f"{method}:\n"
        "  reward_model: t-reward-lora\n"
        "  reward_functions: [{type: length_penalty, target: 6, scale: 0.5}]\n"
        "  reward_weights: [1.0, 0.1]\n"
        "  num_generations: 2\n"
        "  max_completion_length: 6\n"
        "  beta: 0.04\n" + extra
    )


@pytest.fixture
def trained(train_doc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """A reward run and an SFT run of the tiny model under tmp_path/runs (trained in-process: quicker)."""
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))  # the SFT adapter merged into its base
    runs = {}
    for method, steps in (("reward", 10), ("sft", 2)):
        out = train_recipe(train_doc(method, training={"max_steps": steps}))
        runs[method] = out.manifest
    return runs


def test_grpo_and_rloo_train_from_an_sft_run_against_a_trained_reward_model(
    trained: dict[str, dict], tiny_model: Path, tiny_store: Path, tmp_path: Path
) -> None:
    rm = trained["reward"]
    for method, base in (("grpo", "t-sft-lora"), ("rloo", str(tiny_model))):
        (tmp_path / f"{method}.yaml").write_text(_online_recipe(method, base, tiny_store))
        run = cli("train", f"{method}.yaml", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert "[train] step 2/2" in run.stderr and "reward " in run.stderr
        m = json.loads((tmp_path / "runs" / f"t-{method}" / "latest" / "manifest.json").read_text())
        assert m["method"] == method and m["output"]["kind"] == "adapter"
        # the reward model's lineage: its run and the dataset version it learned from
        lineage = m["reward_model"]
        assert (lineage["name"], lineage["run_id"], lineage["method"]) == (rm["name"], rm["run_id"], "reward")
        assert lineage["dataset"]["ref"] == rm["dataset"]["ref"] == "pairs@1"
        assert lineage["dataset"]["content_hash"] == rm["dataset"]["content_hash"]
        assert lineage["weights"]["adapter_sha256"]
        assert m["rewards"]["names"] == ["reward_model", "length_penalty"] and m["rewards"]["weights"] == [1.0, 0.1]
        steps = [e for e in m["logs"] if "reward" in e]
        assert len(steps) == 2
        for key in ("reward_std", "kl", "completions/mean_length", "rewards/reward_model/mean"):
            assert all(isinstance(e[key], float) for e in steps), key
        assert {"reward_mean", "kl_last", "completion_length_mean"} <= set(m["metrics"])
        card = (tmp_path / "runs" / f"t-{method}" / "latest" / "README.md").read_text()
        assert f"**Reward model**: run `{rm['name']}/{rm['run_id']}` trained on `pairs@1`" in card
        assert "**Rewards**: reward_model x 1, length_penalty x 0.1" in card
    grpo = json.loads((tmp_path / "runs" / "t-grpo" / "latest" / "manifest.json").read_text())
    sft = trained["sft"]
    assert grpo["base_model"]["run"]["name"] == sft["name"] and grpo["base_model"]["run"]["method"] == "sft"
    assert grpo["base_model"]["run"]["dataset"]["ref"] == "chat@1"
    assert "**Started from**: run `t-sft-lora/" in (tmp_path / "runs" / "t-grpo" / "latest" / "README.md").read_text()


def test_a_reward_run_is_no_policy(trained: dict[str, dict], tmp_path: Path) -> None:
    from curate.models.source import ModelError
    from train.policy import policy_source

    with pytest.raises(ModelError, match=r"is a reward model \(method reward\); the policy must be a causal LM"):
        policy_source("t-reward-lora", None, tmp_path / "runs")
    assert policy_source("t-sft-lora", None, tmp_path / "runs").identity()["run"]["method"] == "sft"


def test_a_missing_reward_model_exits_2_before_anything_loads(
    tiny_model: Path, tiny_store: Path, tmp_path: Path
) -> None:
    text = _online_recipe("grpo", str(tiny_model), tiny_store).replace(
        "reward_model: t-reward-lora", "reward_model: gone"
    )
    (tmp_path / "grpo.yaml").write_text(text)
    run = cli("train", "grpo.yaml", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "ERROR reward [grpo.reward_model]: 'gone' is neither a `curate train` run" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "runs").exists()
