"""Fixtures for training tests: a tiny model (built once per session), a store with one dataset per
kind, and a writer of train recipes pointing at both. Nothing touches a model hub."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from schemas.kinds import MESSAGES
from schemas.train_recipe_loader import LoadedTrainRecipe, load_train_recipe_doc

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")


def _msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _frames(n: int = 12) -> dict[str, tuple[pl.DataFrame, str]]:
    split = ["eval" if i % 6 == 5 else "train" for i in range(n)]
    sft = pl.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "messages": [
                [_msg("user", f"What is {i} plus one?"), _msg("assistant", f"It is {i + 1}.")] for i in range(n)
            ],
            "split": split,
        },
        schema={"id": pl.String, "messages": MESSAGES, "split": pl.String},
    )
    pref = pl.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "prompt": [[_msg("user", f"What color is the sky at {i}?")] for i in range(n)],
            "chosen": [[_msg("assistant", "The sky is blue.")] for _ in range(n)],
            "rejected": [[_msg("assistant", f"A dog number {i}.")] for i in range(n)],
            "split": split,
        },
        schema={"id": pl.String, "prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "split": pl.String},
    )
    kto = pl.DataFrame(
        {
            "id": [f"k{i}" for i in range(n)],
            "prompt": [[_msg("user", f"What color is the sky at {i}?")] for i in range(n)],
            "completion": [
                [_msg("assistant", "The sky is blue." if i % 2 else f"A dog number {i}.")] for i in range(n)
            ],
            "label": [bool(i % 2) for i in range(n)],
            "split": split,
        },
        schema={"id": pl.String, "prompt": MESSAGES, "completion": MESSAGES, "label": pl.Boolean, "split": pl.String},
    )
    return {"chat": (sft, "sft"), "pairs": (pref, "preference"), "unpaired": (kto, "kto")}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama model + trained BPE tokenizer with a ChatML template (hidden 64, 2 layers)."""
    from train.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with datasets ``chat`` (sft), ``pairs`` (preference) and ``unpaired`` (kto), 10 train rows each."""
    from curate.store import Store

    root = tmp_path_factory.mktemp("store")
    store = Store(root)
    for name, (df, kind) in _frames().items():
        store.publish(name, df, {"kind": kind})
    return root


DATASET_FOR = {"sft": "chat", "reward": "pairs", "dpo": "pairs", "orpo": "pairs", "cpo": "pairs", "kto": "unpaired"}


@pytest.fixture
def train_doc(tiny_model: Path, tiny_store: Path, tmp_path: Path) -> Callable[..., LoadedTrainRecipe]:
    """Build a validated train recipe for the tiny model and store: ``train_doc("dpo", adapter="dora", extra=...)``.

    ``extra`` is YAML appended at the end (more top-level sections); ``training`` and ``adapter_extra``
    entries override the training and adapter defaults.
    """

    def make(
        method: str,
        adapter: str = "lora",
        training: dict | None = None,
        extra: str = "",
        dataset: str = "",
        adapter_extra: dict | None = None,
    ) -> LoadedTrainRecipe:
        loop = {"max_steps": 3, "batch_size": 2, "max_length": 64, "learning_rate": 0.001, **(training or {})}
        lora = {"type": adapter, "r": 4, "alpha": 8, "dropout": 0.0, **(adapter_extra or {})}
        text = (
            f"name: t-{method}-{adapter}\n"
            f"model: {{base: {tiny_model}}}\n"
            f"dataset: {{ref: {dataset or DATASET_FOR[method]}@latest, store: {tiny_store}}}\n"
            f"method: {method}\n"
            f"adapter: {json.dumps(lora)}\n"  # JSON is YAML
            f"training: {json.dumps(loop)}\n"
            f"output: {{dir: {tmp_path / 'runs'}}}\n"
            f"reference: {{cache_dir: {tmp_path / 'refcache'}}}\n"
            f"{extra}"
        )
        path = tmp_path / "train.yaml"
        path.write_text(text, encoding="utf-8")
        return load_train_recipe_doc(text, str(path))

    return make
