"""``model.attn_implementation`` reaches the loaded model; ``prepare(data=...)`` trains on a given dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.models.source import ModelError, load_model, resolve_source
from schemas.recipe_loader import RecipeError
from schemas.train_recipe_loader import load_train_recipe_doc
from train.common import build_model, load_data, prepare, ref_cache


def _text(model: Path, store: Path | str, tmp_path: Path, attn: str | None, method: str = "sft") -> str:
    extra = f", attn_implementation: {attn}" if attn else ""
    return (
        "name: attn\n"
        f"model: {{base: {model}{extra}}}\n"
        f"dataset: {{ref: {'chat' if method == 'sft' else 'pairs'}@latest, store: {store}}}\n"
        f"method: {method}\n"
        "adapter: {type: lora, r: 4, alpha: 8}\n"
        "training: {max_steps: 1, batch_size: 2, max_length: 64}\n"
        f"output: {{dir: {tmp_path / 'runs'}}}\n"
    )


@pytest.mark.parametrize(("attn", "expected"), [(None, "sdpa"), ("eager", "eager"), ("sdpa", "sdpa")])
def test_attn_implementation_reaches_the_model(
    tiny_model: Path, tiny_store: Path, tmp_path: Path, attn: str | None, expected: str
) -> None:
    """Unset: transformers' choice (SDPA for Llama); set: what the recipe names."""
    setup = prepare(load_train_recipe_doc(_text(tiny_model, tiny_store, tmp_path, attn), "t.yaml"), tmp_path / "run")
    model, _ = build_model(setup)
    assert model.get_base_model().config._attn_implementation == expected


def test_reference_cache_key_tells_attention_kernels_apart(tiny_model: Path, tiny_store: Path, tmp_path: Path) -> None:
    """DPO reference log-probs computed with another kernel round differently: a different cache entry
    (``auto`` keeps the key it had before the option existed: no attention entry)."""
    caches = {}
    for attn in (None, "sdpa", "eager"):
        doc = load_train_recipe_doc(_text(tiny_model, tiny_store, tmp_path, attn, method="dpo"), "t.yaml")
        caches[attn] = ref_cache(prepare(doc, tmp_path / f"run-{attn}"))
    assert len({c.key for c in caches.values()}) == 3
    assert "attn_implementation" not in caches[None].parts["tokenization"]
    assert caches["eager"].parts["tokenization"]["attn_implementation"] == "eager"


def test_unknown_attn_implementation_names_the_field(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as e:
        load_train_recipe_doc(_text(tiny_model, "data/store", tmp_path, "flash"), "t.yaml")
    (problem,) = [str(p) for p in e.value.problems]
    assert problem.startswith("t.yaml:2: model.attn_implementation: Input should be 'auto', 'sdpa' or 'eager'")


def test_architecture_without_sdpa_gets_a_clear_error(tmp_path: Path) -> None:
    """GraniteSWA has no SDPA kernel: asking for it names the field and the fix; auto falls back to eager."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        "granite_swa",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=100,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "m")
    src = resolve_source(str(tmp_path / "m"))
    with pytest.raises(
        ModelError, match=r"^model\.attn_implementation: GraniteSWAForCausalLM does not support .* or eager$"
    ):
        load_model(src, attn_implementation="sdpa")
    assert load_model(src).config._attn_implementation == "eager"


def test_prepare_takes_an_already_loaded_dataset(tiny_model: Path, tiny_store: Path, tmp_path: Path) -> None:
    """With ``data`` the store named by the recipe is never read (here it does not exist)."""
    real = load_train_recipe_doc(_text(tiny_model, tiny_store, tmp_path, None), "t.yaml")
    ds, manifest = load_data(real.recipe, "train")
    missing = load_train_recipe_doc(_text(tiny_model, tmp_path / "no-store", tmp_path, None), "t.yaml")
    setup = prepare(missing, tmp_path / "run", data=(ds.select(range(3)), manifest))
    assert len(setup.train_dataset) == 3 and setup.kind == "sft"
    assert setup.data_manifest["content_hash"] == manifest["content_hash"]
