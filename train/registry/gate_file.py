"""Read a promotion gate from YAML: a strict file whose only key is ``gate:`` (a :class:`GateSpec`).

Parsed with the project's recipe loader, so every problem comes back at once with its line.

Example:
    >>> load_gate_text("gate:\\n  floors: {heldout_loss: {max: 3.0}}\\n").floors["heldout_loss"].max
    3.0
    >>> try:
    ...     load_gate_text("gate:\\n  flors: {}\\n", "g.yaml")
    ... except RecipeError as e:
    ...     print(e.problems[0])
    g.yaml:2: gate.flors: unknown key (remove it or check its spelling)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from schemas.evaluation import GateSpec
from schemas.recipe_loader import RecipeError, parse_validated, read_recipe_text

__all__ = ["GateFile", "RecipeError", "load_gate_file", "load_gate_text"]


class GateFile(BaseModel):
    """A gate YAML file: ``gate:`` and nothing else."""

    model_config = ConfigDict(extra="forbid")

    gate: GateSpec


def load_gate_text(text: str, file: str = "<gate>") -> GateSpec:
    """Parse and validate gate YAML; raises :class:`RecipeError` with every problem and its line."""
    doc, _ = parse_validated(text, file, GateFile, "a gate file", "gate:")
    return doc.gate


def load_gate_file(path: str | Path) -> GateSpec:
    """The gate in the YAML file ``path`` (see :func:`load_gate_text`)."""
    return load_gate_text(read_recipe_text(path), str(path))
