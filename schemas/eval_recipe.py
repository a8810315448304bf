"""Eval recipes: which models to evaluate, on which dataset versions, with which metrics.

An eval recipe is the standalone form of a train recipe's ``eval:`` section, for models that are
already trained (or any model folder): ``curate eval recipes/eval/compare.yaml``. Unknown keys are
refused and every problem is reported at once with its line, as for the other recipes.

Example:
    >>> text = "name: e\\nmodels: [base, quickstart-sft]\\neval: {on: [quickstart@latest], metrics: [heldout_loss]}\\n"
    >>> load_eval_recipe_text(text, "e.yaml").eval.metrics[0].name
    'heldout_loss'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.evaluation import EvalSpec
from schemas.recipe_loader import parse_validated, read_recipe_text


class EvalRecipe(BaseModel):
    """Evaluate ``models`` with ``eval``; reports go beside each trained model."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Names the comparison chart.")
    description: str = ""
    models: list[str] = Field(
        min_length=1,
        description="Models side by side: NAME@N, NAME@champion, NAME (latest run), a run folder, a model folder, "
        "a .gguf or package:PKG/FILE.",
    )
    runs_root: str = Field("runs/train", description="Where `curate train` runs live (the train recipes' output.dir).")
    eval: EvalSpec


def load_eval_recipe_text(text: str, file: str = "<eval recipe>") -> EvalRecipe:
    """Parse and validate eval recipe YAML text; raises :class:`schemas.recipe_loader.RecipeError`."""
    recipe, _ = parse_validated(text, file, EvalRecipe, "an eval recipe", "name:, models:, eval:")
    return recipe


def load_eval_recipe_file(path: str | Path) -> EvalRecipe:
    """Load the eval recipe file at ``path``."""
    return load_eval_recipe_text(read_recipe_text(path), str(path))
