"""Load a train recipe (YAML) into :class:`schemas.train_recipe.TrainRecipe`, reporting every problem at once.

Same conventions as curation recipes (``schemas.recipe_loader``): each problem names the YAML path,
its line, and what to do.

Example:
    >>> from schemas.recipe_loader import RecipeError
    >>> text = "name: t\\nmodel: {base: m}\\ndataset: {ref: d@1}\\nmethod: dpoo\\n"
    >>> try:
    ...     load_train_recipe_text(text, "t.yaml")
    ... except RecipeError as e:
    ...     print(e.problems[0])
    t.yaml:4: method: Input should be 'sft', 'reward', 'dpo', 'kto', 'orpo', 'cpo', 'rloo' or 'grpo'; got 'dpoo'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.recipe_loader import Problem, format_loc, line_of, parse_validated, read_recipe_text
from schemas.train_recipe import TrainRecipe


@dataclass(frozen=True)
class LoadedTrainRecipe:
    """A validated train recipe with its text and YAML tree (to place later problems on lines)."""

    recipe: TrainRecipe
    file: str
    text: str
    root: Any

    def problem(self, loc: tuple[Any, ...], message: str) -> Problem:
        """A :class:`Problem` at the YAML path ``loc`` of this recipe."""
        return Problem(self.file, line_of(self.root, loc), format_loc(loc), message)


def load_train_recipe_doc(text: str, file: str = "<train recipe>") -> LoadedTrainRecipe:
    """Parse and validate train recipe YAML text; raise :class:`RecipeError` listing all problems."""
    recipe, root = parse_validated(text, file, TrainRecipe, "a train recipe", "name:, model:, dataset:, method:")
    return LoadedTrainRecipe(recipe, file, text, root)


def load_train_recipe_text(text: str, file: str = "<train recipe>") -> TrainRecipe:
    """Parse and validate train recipe YAML text."""
    return load_train_recipe_doc(text, file).recipe


def load_train_recipe_file(path: str | Path) -> LoadedTrainRecipe:
    """Load the train recipe file at ``path`` keeping its YAML tree."""
    return load_train_recipe_doc(read_recipe_text(path), str(path))
