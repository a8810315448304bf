"""AI feedback as Prefect tasks: the same pairs as --local, a refresh judges only the new prompts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from curate.engine.local import run_recipe
from curate.store import Store
from flows.curation import run_flow
from schemas.recipe_loader import load_recipe_file

RECIPE = """
name: fbflow
output: {{kind: preference, dir: {tmp}/runs}}
sources:
  - {{name: prompts, path: "prompts/*.jsonl", convert: text}}
feedback:
  input_kind: text
  generators:
    - {{name: tiny, model: {model}, n: 2, max_new_tokens: 6, temperature: 1.0}}
  judge: {{kind: rating, model: {model}, max_new_tokens: 2, aspects: {{helpfulness: "fully helpful"}}}}
publish: {{store: {tmp}/store, splits: {{eval: 0.0}}}}
"""


def _prompts(path: Path, start: int, n: int) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(json.dumps({"text": f"Prompt {i}: name a thing."}) for i in range(start, start + n)))


def test_feedback_flow_matches_local_and_refresh_judges_only_new_prompts(
    prefect_api: str, tiny_lm: Path, tmp_path: Path, task_states: Callable[..., dict[str, list[str]]]
) -> None:
    _prompts(tmp_path / "prompts" / "a.jsonl", 0, 6)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(tmp=tmp_path, model=tiny_lm))
    first = run_flow(recipe, incremental=True, runner="thread:2")
    fb = first["feedback"]
    assert fb["balanced"] and fb["prompts_in"] == 6 and fb["model_calls"] == 6 * 2 + 6 * 2
    assert task_states(first["orchestrator"]["flow_run_id"], expect=6)["feedback"] == ["Completed"]

    local = run_recipe(load_recipe_file(recipe), tmp_path / "local-runs", show_progress=False)
    assert local.summary["published"]["content_hash"] == first["published"]["content_hash"]
    # its own output folder, so its own request cache: the models ran again and said the same
    assert local.summary["feedback"]["model_calls"] == fb["model_calls"]

    _prompts(tmp_path / "prompts" / "b.jsonl", 100, 3)
    second = run_flow(recipe, incremental=True, runner="thread:2")
    fb2 = second["feedback"]
    assert fb2["prompts_in"] == 3 and fb2["model_calls"] == 3 * 2 + 3 * 2  # only the new prompts
    store = Store(tmp_path / "store")
    v1, v2 = store.read("fbflow@1"), store.read("fbflow@2")
    assert v2.height == v1.height + fb2["records_out"] and set(v1["id"]) <= set(v2["id"])
    assert store.manifest("fbflow@2")["feedback"]["prompts_in"] == 3
