"""The reference log-prob cache: hit on the second run over the same dataset version, miss when the
tokenization or the data changes, and the cached numbers are the ones TRL computed."""

from __future__ import annotations

import math

import pytest

from schemas.train_recipe_loader import load_train_recipe_doc
from train.common import prepare
from train.run import entry_point


@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_second_run_hits_the_cache(method, train_doc, tmp_path):
    doc = train_doc(method)
    first = entry_point(method).train(prepare(doc, tmp_path / "r1"))
    assert first.ref_cache_events == ["miss:train"]
    second = entry_point(method).train(prepare(doc, tmp_path / "r2"))
    assert second.ref_cache_events == ["hit:train"]
    assert math.isfinite(second.metrics["train_loss"])
    col = "ref_chosen_logps" if method == "dpo" else "ref_logps"
    assert first.trainer.train_dataset[col] == second.trainer.train_dataset[col]

    # another max_length is another tokenization: computed afresh
    other = load_train_recipe_doc(doc.text.replace('"max_length": 64', '"max_length": 48'), doc.file)
    assert entry_point(method).train(prepare(other, tmp_path / "r3")).ref_cache_events == ["miss:train"]


def test_cache_can_be_switched_off(train_doc, tmp_path):
    doc = train_doc("dpo", extra="")
    doc = load_train_recipe_doc(doc.text.replace("reference: {", "reference: {cache: false, "), doc.file)
    assert entry_point("dpo").train(prepare(doc, tmp_path / "r")).ref_cache_events == []


def test_separate_reference_model_full_tuning(train_doc, tiny_model, tmp_path):
    """Full fine-tuning against a separate reference model: its identity keys the cache."""
    doc = train_doc("dpo", adapter="none")
    doc = load_train_recipe_doc(doc.text.replace("reference: {", f"reference: {{model: {tiny_model}, "), doc.file)
    first = entry_point("dpo").train(prepare(doc, tmp_path / "r1"))
    assert first.output_kind == "model" and first.ref_cache_events == ["miss:train"]
    assert math.isfinite(first.metrics["train_loss"])
    assert entry_point("dpo").train(prepare(doc, tmp_path / "r2")).ref_cache_events == ["hit:train"]
