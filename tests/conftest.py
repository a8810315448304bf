"""Shared fixtures: paths to the public datasets beside the project, and a recipe writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture
def shared_file() -> Callable[[str], Path]:
    """Path of a file in ../shared/datasets, skipping the test when it is absent."""

    def get(name: str) -> Path:
        path = SHARED_DATASETS / name
        if not path.exists():
            pytest.skip(f"{path} not present")
        return path

    return get


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[[str], Path]:
    """Write recipe YAML text into tmp_path/recipe.yaml and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "recipe.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
