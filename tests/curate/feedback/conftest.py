"""A tiny real causal LM (built from a config, nothing downloaded), once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from train.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-lm"))
