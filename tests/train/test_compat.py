"""The compatibility matrix and recipe validation: problems with lines and fixes, all at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.recipe_loader import RecipeError
from schemas.train_recipe import train_recipe_json_schema
from schemas.train_recipe_loader import load_train_recipe_doc, load_train_recipe_file
from train.compat import check_compat

ROOT = Path(__file__).resolve().parents[2]
BASE = "name: t\nmodel: {base: m}\ndataset: {ref: d@1}\n"


def problems(text: str) -> list[str]:
    return [str(p) for p in check_compat(load_train_recipe_doc(BASE + text, "t.yaml"))]


def test_unknown_keys_and_bad_values_are_reported_together():
    with pytest.raises(RecipeError) as e:
        load_train_recipe_doc(
            BASE + "method: dpo\nadapter: {type: qlora, rank: 8}\ntraining: {batch_size: 0}\n", "t.yaml"
        )
    got = [str(p) for p in e.value.problems]
    assert "t.yaml:5: adapter.rank: unknown key (remove it or check its spelling)" in got
    assert any(p.startswith("t.yaml:6: training.batch_size: Input should be greater than 0") for p in got)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("method: dpo\ntraining: {packing: true}\n", "training.packing: packing is only for method sft"),
        ("method: kto\ntraining: {batch_size: 1}\n", "training.batch_size: KTO needs a per-device batch size of at"),
        ("method: dpo\nadapter: {init: pissa}\nreference: {model: other}\n", "adapter.init: PiSSA rewrites the base"),
        ("method: sft\ndpo: {beta: 0.2}\n", "dpo: settings for method dpo, but method is sft"),
        ("method: sft\nadapter: {type: freeze}\n", "adapter.type: type freeze needs freeze_last_n"),
        ("method: sft\nadapter: {type: none, loraplus_lr_ratio: 16}\n", "adapter.loraplus_lr_ratio: loraplus_lr_"),
        ("method: dpo\ntraining: {assistant_only_loss: true}\n", "training.assistant_only_loss: assistant_only"),
        ("method: sft\nreference: {model: other}\n", "reference.model: method sft uses no reference model"),
        ("method: sft\ntraining: {device: cpu, precision: fp16}\n", "training.precision: fp16 mixed precision"),
        ("method: sft\ndistributed: {strategy: fsdp, preset: zero3}\n", "distributed.preset: preset zero3 belongs"),
        ("method: sft\ndistributed: {num_machines: 2}\n", "distributed.main_process_ip: multi-node runs need"),
        ("method: sft\ndistributed: {strategy: deepspeed, cpu: true}\n", "distributed.strategy: deepspeed needs GPUs"),
        (
            "method: sft\nadapter: {type: prefix}\ntraining: {gradient_checkpointing: true}\n",
            "training.gradient_checkpointing: prefix tuning feeds its trained prefixes as past key/values",
        ),
        ("method: sft\nadapter: {type: prompt}\ntraining: {packing: true}\n", "training.packing: prompt tuning"),
        ("method: dpo\nadapter: {type: prefix}\noutput: {merge: true}\n", "output.merge: prefix tuning trains"),
        ("method: reward\nadapter: {type: prompt}\n", "adapter.type: prompt tuning of a reward model"),
        ("method: sft\nadapter: {type: ia3, init: pissa}\n", "adapter.init: init applies to LoRA adapters"),
        ("method: sft\noptimizer: {type: galore_adamw}\n", "optimizer.type: GaLore is a full-parameter optimizer"),
        (
            "method: sft\nadapter: {type: none}\noptimizer: {type: badam}\ndistributed: {cpu: true}\n",
            "distributed: BAdam runs single-process here",
        ),
    ],
)
def test_incompatible_combinations(text, expected):
    found = problems(text)
    assert any(expected in p for p in found), found
    assert all(p.startswith("t.yaml:") for p in found)  # every problem has its line


def test_compatible_recipe_has_no_problems():
    assert problems("method: kto\nkto: {desirable_weight: 1.3}\ntraining: {batch_size: 4}\n") == []


def test_shipped_train_recipes_are_valid():
    files = sorted((ROOT / "recipes" / "train").glob("*.yaml"))
    assert len(files) >= 2
    for f in files:
        assert check_compat(load_train_recipe_file(f)) == [], f


def test_shipped_json_schema_is_current():
    shipped = json.loads((ROOT / "recipes" / "train" / "train_recipe.schema.json").read_text())
    assert shipped == train_recipe_json_schema(), "regenerate: see README, Training"
