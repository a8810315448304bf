"""Load a YAML recipe into :class:`schemas.recipe.Recipe`, reporting every problem at once.

Each problem names the YAML path (``sources[0].format``), its line in the file, and what to do.

Example:
    >>> text = ("name: demo\\noutput: {kind: sft}\\nsources:\\n"
    ...         "  - {name: a, path: x.jsonl, convert: text, colour: red}\\n")
    >>> try:
    ...     load_recipe_text(text, "demo.yaml")
    ... except RecipeError as e:
    ...     print(e.problems[0])
    demo.yaml:4: sources[0].colour: unknown key (remove it or check its spelling)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from schemas.recipe import Recipe

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class RecipeError(ValueError):
    """A recipe that cannot be used; ``problems`` lists everything found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


MAX_VALUES = 100_000
"""Most values (mappings, lists and scalars, aliases counted each time they are used) a recipe
may expand to. YAML aliases share one node, so a few lines of nested anchors ("billion laughs")
can stand for billions of values: such a recipe is refused before anything expands it."""


class TooManyValues(ValueError):
    """A YAML document that expands to more than :data:`MAX_VALUES` values."""


def to_plain(node: Any, budget: list[int] | None = None) -> Any:
    """ruamel's round-trip nodes as plain dicts/lists (merge keys ``<<`` included).

    Raises :class:`TooManyValues` past :data:`MAX_VALUES` values, counting every use of an alias.
    """
    budget = budget if budget is not None else [MAX_VALUES]
    budget[0] -= 1
    if budget[0] < 0:
        raise TooManyValues(f"the document expands to more than {MAX_VALUES:,} values")
    if isinstance(node, dict):
        return {str(k): to_plain(v, budget) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v, budget) for v in node]
    return node


def _key_line(node: CommentedMap, key: Any) -> int:
    """0-based line of ``key`` in ``node``, or in the mapping a merge key (``<<: *base``) took it from."""
    try:
        return int(node.lc.key(key)[0])
    except KeyError:
        for item in getattr(node, "merge", None) or []:
            source = item[1] if isinstance(item, tuple) else item  # (index, map) in older ruamel versions
            if isinstance(source, CommentedMap) and key in source:
                return _key_line(source, key)
        return int(node.lc.line)


def line_of(root: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node of ``loc`` that exists in the YAML tree."""
    node, line = root, None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = _key_line(node, part) + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(root, CommentedMap):
        line = root.lc.line + 1
    return line


def format_loc(loc: tuple[Any, ...]) -> str:
    """``('sources', 0, 'format')`` -> ``sources[0].format``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key (remove it or check its spelling)"
    if kind == "missing":
        return "required key is missing (add it)"
    if kind == "literal_error" or kind == "enum":
        return f"{msg}; got {err.get('input')!r}"
    return msg.removeprefix("Value error, ")


def _loc(err: dict[str, Any]) -> tuple[Any, ...]:
    # pydantic adds union branch names (e.g. 'str', 'list[str]') to locations; they are not YAML keys.
    return tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in {"str", "function-after"})))


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe with the YAML tree it came from, to place later problems on lines."""

    recipe: Recipe
    file: str
    text: str
    root: Any

    def problem(self, loc: tuple[Any, ...], message: str) -> Problem:
        """A :class:`Problem` at the YAML path ``loc`` of this recipe."""
        return Problem(self.file, line_of(self.root, loc), format_loc(loc), message)


def load_recipe_text(text: str, file: str = "<recipe>") -> Recipe:
    """Parse and validate recipe YAML text; raise :class:`RecipeError` with all problems."""
    return load_recipe_doc(text, file).recipe


def parse_validated(text: str, file: str, model: type[M], what: str, keys: str) -> tuple[M, Any]:
    """Parse YAML ``text`` and validate it as ``model``; returns the model and the YAML tree.

    Raises :class:`RecipeError` listing every problem with its line. ``what`` and ``keys`` name the
    document and its top keys for the message when it is not a mapping at all.
    """
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise RecipeError([Problem(file, line, "", f"not valid YAML: {e.problem}")]) from None
    except RecursionError:
        raise RecipeError([Problem(file, None, "", "not usable YAML: nested too deeply")]) from None
    if not isinstance(root, CommentedMap):
        raise RecipeError([Problem(file, 1, "", f"{what} must be a YAML mapping ({keys})")])
    try:
        plain = to_plain(root)
    except TooManyValues as e:
        msg = f"{e} (YAML anchors and aliases nested inside each other); write the values out or use fewer aliases"
        raise RecipeError([Problem(file, None, "", msg)]) from None
    except RecursionError:
        raise RecipeError([Problem(file, None, "", "not usable YAML: nested too deeply")]) from None
    try:
        return model.model_validate(plain), root
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = _loc(err)
            problems.append(Problem(file, line_of(root, loc), format_loc(loc), _message(err)))
        raise RecipeError(problems) from None


def load_recipe_doc(text: str, file: str = "<recipe>") -> LoadedRecipe:
    """Like :func:`load_recipe_text`, keeping the YAML tree for line numbers."""
    recipe, root = parse_validated(text, file, Recipe, "a recipe", "name:, output:, sources:")
    return LoadedRecipe(recipe, file, text, root)


def load_recipe(path: str | Path) -> Recipe:
    """Load the recipe file at ``path``."""
    return load_recipe_file(path).recipe


def read_recipe_text(path: str | Path) -> str:
    """The text of a recipe file, or a :class:`RecipeError` saying why it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError([Problem(str(p), None, "", "file not found")]) from None
    except UnicodeDecodeError:
        raise RecipeError([Problem(str(p), None, "", "not UTF-8 text")]) from None
    return text


def load_recipe_file(path: str | Path) -> LoadedRecipe:
    """Load the recipe file at ``path`` keeping its YAML tree (see :class:`LoadedRecipe`).

    Folder settings (``output.dir``, stores) are resolved against the recipe's folder, as its input
    paths are, so a run does the same from any working directory.
    """
    doc = load_recipe_doc(read_recipe_text(path), str(path))
    return replace(doc, recipe=doc.recipe.with_paths_from(Path(path).resolve().parent))
