"""Lineage: a run's manifest and card tie the output to the dataset version, its content hash, the
recipe and the code; merged outputs behave like base + adapter; eval splits are evaluated."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from curate.store import Store
from schemas.train_recipe_loader import load_train_recipe_doc
from train.lineage import find_model, list_models
from train.run import train_recipe


def test_manifest_card_merge_and_eval(train_doc, tiny_store, tmp_path):
    doc = train_doc("sft", extra="")
    text = doc.text.replace("dataset: {", "dataset: {eval_split: eval, ").replace("output: {", "output: {merge: true, ")
    doc = load_train_recipe_doc(text, doc.file)
    outcome = train_recipe(doc)
    run = outcome.run_dir
    m = json.loads((run / "manifest.json").read_text())

    stored = Store(tiny_store).manifest("chat@latest")
    assert m["dataset"]["ref"] == "chat@1" and m["dataset"]["content_hash"] == stored["content_hash"]
    assert m["dataset"]["rows"] == 10 and m["dataset"]["split"] == "train"
    assert m["recipe"]["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert (run / "recipe.yaml").read_text() == text
    assert m["code_version"]["package"] and m["libraries"]["trl"] and m["hardware"]["device"] == "cpu"
    assert m["training"]["precision"] == "fp32" and m["training"]["gradient_checkpointing"] is False
    assert "eval_loss" in m["metrics"] and m["metrics"]["train_loss"] > 0
    assert [e["step"] for e in m["logs"] if "loss" in e] == [1, 2, 3]
    assert m["preflight"]["ok"] is True
    card = (run / "README.md").read_text()
    assert card.startswith("---\nbase_model: ") and stored["content_hash"] in card

    # the newest run is found by name, and listed
    assert find_model(m["name"], Path(run).parent.parent)["run_id"] == run.name
    assert [x["run_id"] for x in list_models(Path(run).parent.parent)] == [run.name]

    # merged weights = base + adapter
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(m["output"]["merged"]).eval()
    base = AutoModelForCausalLM.from_pretrained(m["base_model"]["folder"])
    adapted = PeftModel.from_pretrained(base, m["output"]["path"]).eval()
    ids = torch.tensor([[5, 17, 42, 99]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted(ids).logits, rtol=1e-4, atol=1e-5)
