"""Lifecycle recipes are checked as a whole chain before anything runs (no model is loaded here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.lifecycle.chain import load_chain
from schemas.lifecycle import is_lifecycle_text, load_lifecycle_text
from schemas.recipe_loader import RecipeError

DATA = """name: prompts
output: {kind: text, dir: ../runs}
sources:
  - {name: raw, path: "../raw/*.jsonl", convert: text}
publish: {store: ../store}
"""
LABEL = """name: pairs
output: {kind: preference, dir: ../runs}
sources:
  - {name: prompts, dataset: SOURCE, store: ../store, convert: text}
feedback:
  input_kind: text
  generators: [{name: g, model: some/model, n: 2}]
  judge: {kind: rating, model: some/model}
publish: {store: ../store}
"""
TRAIN = """name: NAME
model: {base: some/model}
dataset: {ref: pairs@latest}
method: METHOD
"""
LOOP = """name: loop
data: data.yaml
label: {mode: ai, recipe: label.yaml}
train:
  - {recipe: train.yaml}
eval: {on: [label], metrics: [heldout_loss, logprob_win_rate]}
gate: {floors: {heldout_loss: {max: 9}}, against_champion: {perplexity: {min_change: 0}}}
"""


def project(tmp: Path, loop: str = LOOP, method: str = "dpo", source: str = "prompts") -> Path:
    (tmp / "raw").mkdir()
    (tmp / "raw" / "a.jsonl").write_text('{"text": "hi"}\n')
    r = tmp / "recipes"
    r.mkdir()
    (r / "data.yaml").write_text(DATA)
    (r / "label.yaml").write_text(LABEL.replace("SOURCE", source))
    (r / "train.yaml").write_text(TRAIN.replace("METHOD", method).replace("NAME", f"t-{method}"))
    (r / "loop.yaml").write_text(loop)
    return r / "loop.yaml"


def problems(path: Path) -> list[str]:
    with pytest.raises(RecipeError) as e:
        load_chain(path)
    return [str(p) for p in e.value.problems]


def test_a_consistent_chain_loads_with_its_kinds_and_the_dpo_step_on_the_labels(tmp_path: Path) -> None:
    chain = load_chain(project(tmp_path))
    assert chain.kinds() == {"data": "text", "label": "preference"}
    assert chain.train_dataset(0) == "label"  # DPO needs pairs: the default is the labelled version
    assert chain.candidate_name == "t-dpo" and chain.out == (tmp_path / "runs" / "lifecycle" / "loop")
    assert chain.runs_root == tmp_path / "runs" / "train"


def test_a_step_whose_dataset_kind_its_method_cannot_train_on_is_named_with_its_line(tmp_path: Path) -> None:
    loop = LOOP.replace("{recipe: train.yaml}", "{recipe: train.yaml, dataset: data}")
    found = problems(project(tmp_path, loop))
    assert any(":5: train[0].dataset:" in p and "dpo on preference" in p and "text records" in p for p in found), found


def test_a_label_recipe_that_does_not_read_the_curated_data_is_refused(tmp_path: Path) -> None:
    found = problems(project(tmp_path, source="other"))
    assert any("label.recipe" in p and "dataset: prompts" in p for p in found), found


def test_metrics_the_sets_cannot_score_and_gate_criteria_nobody_computes_are_refused(tmp_path: Path) -> None:
    loop = LOOP.replace("metrics: [heldout_loss, logprob_win_rate]", "metrics: [logprob_win_rate]").replace(
        "on: [label]", "on: [data]"
    )
    found = problems(project(tmp_path, loop))
    assert any("logprob_win_rate scores preference records" in p for p in found), found
    assert any("gate floors.heldout_loss" in p and "add heldout_loss to eval.metrics" in p for p in found), found


def test_every_named_recipe_reports_its_own_problems_with_its_file_and_line(tmp_path: Path) -> None:
    path = project(tmp_path)
    (path.parent / "train.yaml").write_text(TRAIN.replace("METHOD", "dpo").replace("NAME", "t") + "epochs: 3\n")
    (path.parent / "data.yaml").write_text(DATA.replace("../raw", "../missing"))
    found = problems(path)
    assert any("train.yaml:5: epochs: unknown key" in p for p in found), found
    assert any("data.yaml" in p and "missing" in p for p in found), found


def test_a_frozen_eval_set_must_already_be_published(tmp_path: Path) -> None:
    found = problems(project(tmp_path, LOOP.replace("on: [label]", "on: [label, held@3]")))
    assert any("eval.on[1]: eval set held@3" in p and "publish it first" in p for p in found), found


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: l\ndata: d.yaml\ntrain: [{recipe: t.yaml}]\n", "train steps need eval:"),
        ("name: l\ndata: d.yaml\nlabel: {mode: ai}\n", "label.mode ai needs label.recipe"),
        ("name: l\ndata: d.yaml\nlabel: {mode: human, recipe: x.yaml}\n", "remove label.recipe"),
        ("name: l\ndata: d.yaml\nschedule: {cron: '0 3 * * *', interval: 5}\n", "exactly one of cron or interval"),
        ("name: l\ndata: d.yaml\ntrian: []\n", "trian: unknown key"),
        (
            "name: l\ndata: d.yaml\ntrain: [{recipe: t.yaml, start: previous}]\neval: {metrics: [heldout_loss]}\n"
            "gate: {floors: {}}\n",
            "train[0].start: previous needs a train step before it",
        ),
    ],
)
def test_lifecycle_recipe_problems_are_clear(text: str, message: str) -> None:
    with pytest.raises(RecipeError) as e:
        load_lifecycle_text(text, "l.yaml")
    assert any(message in str(p) for p in e.value.problems), e.value.problems


def test_lifecycle_recipes_are_told_apart_from_curation_recipes() -> None:
    assert is_lifecycle_text("name: l\ndata: d.yaml\n")
    assert not is_lifecycle_text(DATA)
    repo = Path(__file__).resolve().parents[2]
    assert is_lifecycle_text((repo / "recipes" / "lifecycle" / "demo.yaml").read_text())
