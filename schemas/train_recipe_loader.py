"""Load a train recipe (YAML) into :class:`schemas.train_recipe.TrainRecipe`, reporting every problem at once.

Same conventions as curation recipes (``schemas.recipe_loader``): each problem names the YAML path,
its line, and what to do.

Example:
    >>> text = "name: t\\nmodel: {base: m}\\ndataset: {ref: d@1}\\nmethod: dpoo\\n"
    >>> try:
    ...     load_train_recipe_text(text, "t.yaml")
    ... except RecipeError as e:
    ...     print(e.problems[0])
    t.yaml:4: method: Input should be 'sft', 'reward', 'dpo', 'kto', 'orpo' or 'cpo'; got 'dpoo'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError

from schemas.recipe_loader import Problem, RecipeError, _loc, _message, format_loc, line_of, read_recipe_text, to_plain
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
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise RecipeError([Problem(file, line, "", f"not valid YAML: {e.problem}")]) from None
    if not isinstance(root, CommentedMap):
        raise RecipeError([Problem(file, 1, "", "a train recipe must be a YAML mapping (name:, model:, dataset:, "
                                   "method:)")])
    try:
        return LoadedTrainRecipe(TrainRecipe.model_validate(to_plain(root)), file, text, root)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = _loc(err)
            problems.append(Problem(file, line_of(root, loc), format_loc(loc), _message(err)))
        raise RecipeError(problems) from None


def load_train_recipe_text(text: str, file: str = "<train recipe>") -> TrainRecipe:
    """Parse and validate train recipe YAML text."""
    return load_train_recipe_doc(text, file).recipe


def load_train_recipe_file(path: str | Path) -> LoadedTrainRecipe:
    """Load the train recipe file at ``path`` keeping its YAML tree."""
    return load_train_recipe_doc(read_recipe_text(path), str(path))
