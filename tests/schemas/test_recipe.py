from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.recipe import recipe_json_schema, resolve_secrets
from schemas.recipe_loader import RecipeError, load_recipe_text

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
name: demo
output: {kind: sft}
sources:
  - name: a
    path: data/*.jsonl
    convert: alpaca_to_messages
"""


def test_minimal_recipe_loads_with_defaults() -> None:
    r = load_recipe_text(GOOD)
    assert r.output.dir == "runs"
    assert r.sources[0].steps == ["alpaca_to_messages"]
    assert r.limits.max_chars > 0


def test_all_problems_reported_at_once_with_lines() -> None:
    text = """name: demo
output:
  kind: sft
  colour: blue
limits: {max_chars: 0}
sources:
  - name: a
    path: x.jsonl
    format: yaml
    convert: text
"""
    with pytest.raises(RecipeError) as e:
        load_recipe_text(text, "r.yaml")
    got = {(p.path, p.line) for p in e.value.problems}
    assert got == {("output.colour", 4), ("limits.max_chars", 5), ("sources[0].format", 9)}
    assert "unknown key" in str(e.value)


def test_yaml_syntax_error_names_line() -> None:
    with pytest.raises(RecipeError) as e:
        load_recipe_text("name: x\nsources: [\n", "bad.yaml")
    assert e.value.problems[0].line is not None
    assert "not valid YAML" in e.value.problems[0].message


def test_literal_secrets_are_rejected_and_references_kept() -> None:
    text = GOOD + "    storage_options: {aws_secret_access_key: hunter2}\n"
    with pytest.raises(RecipeError) as e:
        load_recipe_text(text)
    assert "${AWS_SECRET_ACCESS_KEY}" in str(e.value)
    assert "hunter2" not in str(e.value)
    ok = load_recipe_text(GOOD + "    storage_options: {aws_secret_access_key: '${MY_KEY}'}\n")
    assert ok.sources[0].storage_options["aws_secret_access_key"] == "${MY_KEY}"
    assert "${MY_KEY}" in ok.model_dump_json()


def test_resolve_secrets_requires_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    with pytest.raises(KeyError, match="NOPE_NOT_SET"):
        resolve_secrets({"token": "${NOPE_NOT_SET}"})


def test_later_stages_are_refused_clearly() -> None:
    with pytest.raises(RecipeError) as e:
        load_recipe_text(GOOD + "eval: {tasks: [mmlu]}\n")
    assert "not available in this version" in str(e.value)


def test_feedback_needs_a_preference_or_kto_output() -> None:
    fb = "feedback: {generators: [{name: g, model: m}], judge: {kind: pairwise, model: m}}\n"
    with pytest.raises(RecipeError) as e:
        load_recipe_text(GOOD + fb)
    assert "needs output.kind: preference or kto" in str(e.value)
    r = load_recipe_text(GOOD.replace("kind: sft", "kind: preference") + fb)
    assert r.feedback is not None and r.record_kind.value == "sft" and r.output.kind.value == "preference"


def test_shipped_json_schema_is_current() -> None:
    shipped = json.loads((ROOT / "recipes" / "recipe.schema.json").read_text())
    assert shipped == recipe_json_schema(), "regenerate: curate schema -o recipes/recipe.schema.json"


def test_every_shipped_recipe_validates() -> None:
    from curate.engine.plan import plan
    from schemas.recipe_loader import load_recipe_file

    recipes = sorted((ROOT / "recipes").glob("*.yaml"))
    assert recipes, "no recipes shipped"
    docs = [load_recipe_file(p).recipe for p in recipes]
    published = {(r.publish.dataset if r.publish else None) or r.name for r in docs}
    for path in recipes:
        doc = load_recipe_file(path)
        upstream = [s.dataset.split("@")[0] for s in doc.recipe.sources if s.dataset]
        if upstream:  # reads a version another shipped recipe publishes (make demo runs it first)
            assert set(upstream) <= published, (path, upstream)
            plan(doc, check_files=False)
            continue
        plan(doc, peek=True)


def test_every_shipped_lifecycle_recipe_validates_as_a_chain() -> None:
    from flows.lifecycle.chain import load_chain

    lifecycles = sorted((ROOT / "recipes" / "lifecycle").glob("*.yaml"))
    assert lifecycles
    for path in lifecycles:
        chain = load_chain(path, check_files=False)  # frozen eval sets exist once make demo published them
        assert chain.train and chain.gate is not None


def test_every_shipped_eval_recipe_and_gate_validates() -> None:
    from schemas.eval_recipe import load_eval_recipe_file
    from train.registry import load_gate_file

    evals, gates = (
        sorted((ROOT / "recipes" / "eval").glob("*.yaml")),
        sorted((ROOT / "recipes" / "gates").glob("*.yaml")),
    )
    assert evals and gates, "no eval recipe or gate shipped"
    for path in evals:
        assert load_eval_recipe_file(path).eval.metrics
    for path in gates:
        load_gate_file(path)
