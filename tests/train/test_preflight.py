"""Pre-flight catches deliberately broken inputs with messages that name the field and the fix."""

from __future__ import annotations

import datasets
import pytest
from transformers import AutoTokenizer

from train.common import prepare
from train.preflight import run_checks
from train.run import PreflightError, train_recipe
from train.templates import CHATML

CHAT = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name a color."},
            {"role": "assistant", "content": "Blue."},
        ]
    }
]


@pytest.fixture
def tok(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def _errors(report):
    return {c.name: c for c in report.checks if c.level == "error"}


def test_clean_input_passes_and_marks_trained_tokens(tok):
    report = run_checks("sft", "sft", datasets.Dataset.from_list(CHAT), tok, 64, assistant_only_loss=True)
    assert report.ok, report.format()
    assert "[[Blue.<|im_end|>]]" in report.sample
    assert "[[" not in report.sample.split("assistant")[0]  # system and user turns are not trained


def test_wrong_schema_kind(train_doc):
    with pytest.raises(PreflightError) as e:
        train_recipe(train_doc("dpo", dataset="chat"), dry_run=True)
    check = _errors(e.value.report)["schema"]
    assert check.field == "dataset.ref"
    assert "holds sft records" in check.message and "method dpo trains on preference" in check.message


def test_template_that_drops_a_role(tok):
    tok.chat_template = CHATML.replace("{% else %}", "{% elif message['role'] == 'user' %}")  # system vanishes
    report = run_checks("sft", "sft", datasets.Dataset.from_list(CHAT), tok, 64)
    check = _errors(report)["template"]
    assert "drops system messages (1 example(s), first in row 0)" in check.message
    assert check.field == "model.chat_template"


def test_template_that_raises(tok):
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}"
        "{% endif %}{{ m['content'] }}{% endfor %}"
    )
    report = run_checks("sft", "sft", datasets.Dataset.from_list(CHAT), tok, 64)
    assert "render error: no system" in _errors(report)["template"].message


def test_pad_equal_to_eos(tok):
    tok.pad_token = tok.eos_token
    report = run_checks("sft", "sft", datasets.Dataset.from_list(CHAT), tok, 64)
    check = _errors(report)["tokens"]
    assert check.field == "model.pad_token" and "pad token == EOS" in check.message
    assert "never learns to stop" in check.message


def test_pad_equal_to_eos_through_the_recipe(train_doc):
    from schemas.train_recipe_loader import load_train_recipe_doc

    doc = train_doc("reward")
    doc = load_train_recipe_doc(doc.text.replace("model: {", "model: {pad_token: '<|im_end|>', "), doc.file)
    with pytest.raises(PreflightError) as e:
        train_recipe(doc, dry_run=True)
    assert "score at the first EOS" in _errors(e.value.report)["tokens"].message


def test_every_example_truncated(train_doc):
    with pytest.raises(PreflightError) as e:
        train_recipe(train_doc("sft", training={"max_length": 4}), dry_run=True)
    check = _errors(e.value.report)["length"]
    assert check.field == "training.max_length"
    assert "every example is longer than training.max_length=4" in check.message


def test_some_examples_truncated_is_a_warning(tok):
    rows = [*CHAT, {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}]
    report = run_checks("sft", "sft", datasets.Dataset.from_list(rows), tok, 14)
    assert report.ok
    assert [c.level for c in report.checks if c.name == "length"] == ["warn"]


def test_assistant_only_loss_needs_generation_markers(tok):
    tok.chat_template = CHATML.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    report = run_checks("sft", "sft", datasets.Dataset.from_list(CHAT), tok, 64, assistant_only_loss=True)
    check = _errors(report)["masking"]
    assert "model.chat_template: chatml" in check.message


def test_memory_that_does_not_fit(train_doc):
    doc = train_doc("sft", adapter="none", training={"batch_size": 100000, "max_length": 1000000})
    setup = prepare(doc)
    from train.run import preflight

    report = preflight(setup)
    check = _errors(report)["memory"]
    assert "GiB needed" in check.message and "gradient_checkpointing" in check.message
