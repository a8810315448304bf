"""Fixtures for metric tests: the tiny model loaded once, and a context builder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def tiny(tiny_lm: Path) -> tuple[Any, Any]:
    from curate.models.trained import load_trained, locate_trained

    return load_trained(locate_trained(str(tiny_lm)), device="cpu")


@pytest.fixture
def make_ctx(tiny: tuple[Any, Any]) -> Callable[..., Any]:
    from schemas.evaluation import MetricSpec
    from train.eval.base import EvalContext

    def make(rows: Any, kind: str, spec: dict[str, Any], **kw: Any) -> EvalContext:
        model, tok = kw.pop("model", tiny)
        return EvalContext(model, tok, rows, kind, MetricSpec.model_validate(spec), batch_size=4, bootstrap=200, **kw)

    return make
