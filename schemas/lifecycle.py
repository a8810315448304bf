"""Lifecycle recipes and lifecycle run records: raw files in, a gated model out, on a schedule.

A **lifecycle recipe** names the steps of one data-to-model refresh: the curation recipe it
refreshes, how the new prompts get labelled (AI feedback, human annotation in Argilla, or both),
the train recipes to run in order, the eval sets and metrics, the promotion gate and the schedule.
Paths are relative to the lifecycle recipe's folder, as in curation recipes. Unknown keys are
refused and every problem is reported at once with its line.

A **lifecycle run** (:class:`LifecycleRun`, ``OUT/lifecycle/NAME/runs/NNNNNN/state.json``) records
each finished step with its output, so a rerun after a failure resumes at the first unfinished
step; model manifests point back to it (:class:`LifecycleLineage`).

Example:
    >>> text = "name: loop\\ndata: quickstart.yaml\\n"
    >>> r = load_lifecycle_text(text, "loop.yaml")
    >>> (r.name, r.label, r.train)
    ('loop', None, [])
    >>> try:
    ...     load_lifecycle_text("name: loop\\ndata: q.yaml\\ntrain: [{recipe: sft.yaml}]\\n", "l.yaml")
    ... except RecipeError as e:
    ...     print(e.problems[0])
    l.yaml:1: train steps need eval: (the candidate is evaluated) and gate: (the promotion gate)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.evaluation import EvalSpec, GateSpec
from schemas.recipe_loader import RecipeError, parse_validated, read_recipe_text

__all__ = [
    "LabelSpec",
    "LifecycleEval",
    "LifecycleLineage",
    "LifecycleRecipe",
    "LifecycleRun",
    "RecipeError",
    "ScheduleSpec",
    "StepRecord",
    "TrainStepSpec",
    "is_lifecycle_text",
    "load_lifecycle_file",
    "load_lifecycle_text",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelSpec(_Strict):
    """How the new prompts of each refresh get preference labels."""

    mode: Literal["ai", "human", "both"] = Field(
        description="ai: the `recipe` (a feedback recipe) generates and judges; human: the data recipe's "
        "annotation: section pushes to Argilla and the loop waits, then pulls; both: the feedback recipe "
        "routes uncertain prompts to Argilla (feedback.route) and the loop waits for them too."
    )
    recipe: str | None = Field(
        None,
        description="ai / both: a curation recipe with a feedback: section whose `dataset:` source reads the "
        "data recipe's output; the loop points it at the version just published.",
    )

    @model_validator(mode="after")
    def _recipe_when_ai(self) -> LabelSpec:
        if self.mode in ("ai", "both") and not self.recipe:
            raise ValueError(
                f"label.mode {self.mode} needs label.recipe: a feedback recipe (see recipes/feedback.yaml)"
            )
        if self.mode == "human" and self.recipe:
            raise ValueError("label.mode human pulls the data recipe's annotation: labels; remove label.recipe")
        return self


class TrainStepSpec(_Strict):
    """One training step: a train recipe, with its dataset and starting model taken from upstream."""

    recipe: str = Field(description="A train recipe (recipes/train/*.yaml), relative to this file.")
    dataset: Literal["data", "label"] | None = Field(
        None,
        description="Which version published by this run it trains on: data (the curated version) or label "
        "(the labelled one). Default: label when the method needs preferences, else data.",
    )
    start: Literal["recipe", "previous"] = Field(
        "recipe",
        description="recipe: start from the train recipe's model.base; previous: from the previous train "
        "step's output (e.g. DPO on top of the SFT just trained).",
    )


class LifecycleEval(EvalSpec):
    """The evaluation of candidate and champion, side by side on the same eval sets.

    ``on`` takes dataset versions ``NAME@VERSION`` (frozen sets) and the words ``data`` / ``label``:
    the version this lifecycle run published.
    """

    on: list[str] = Field(  # type: ignore[assignment]
        default_factory=lambda: ["data"],
        description="Eval sets: NAME@VERSION (frozen), or data / label (the version this run published).",
    )


class ScheduleSpec(_Strict):
    """When `curate serve` runs the loop (a --cron / --interval flag overrides it)."""

    cron: str | None = None
    interval: float | None = Field(None, gt=0, description="Seconds between runs.")

    @model_validator(mode="after")
    def _one(self) -> ScheduleSpec:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("schedule: give exactly one of cron or interval")
        return self


class LifecycleRecipe(_Strict):
    """A lifecycle recipe (see the module docstring)."""

    version: Literal[1] = 1
    name: str = Field(pattern=_NAME, description="Names the loop: OUT/lifecycle/NAME/ and the Prefect deployment.")
    description: str = ""
    data: str = Field(description="The curation recipe refreshed each run (only new input files are read).")
    label: LabelSpec | None = None
    train: list[TrainStepSpec] = Field(default_factory=list, description="Train recipes, run in order.")
    eval: LifecycleEval | None = None
    gate: str | GateSpec | None = Field(None, description="A gate file (recipes/gates/*.yaml) or the gate inline.")
    runs_root: str = Field("../runs/train", description="Where training runs and the model registry live.")
    out: str = Field("../runs", description="Lifecycle runs and reports go to OUT/lifecycle/NAME/.")
    schedule: ScheduleSpec | None = None

    @model_validator(mode="after")
    def _complete(self) -> LifecycleRecipe:
        if self.train and (self.eval is None or self.gate is None):
            raise ValueError("train steps need eval: (the candidate is evaluated) and gate: (the promotion gate)")
        if self.train and self.train[0].start == "previous":
            raise ValueError("train[0].start: previous needs a train step before it; use start: recipe")
        uses_label = any(s.dataset == "label" for s in self.train) or "label" in (self.eval.on if self.eval else [])
        if uses_label and self.label is None:
            raise ValueError("a step reads the `label` version, but there is no label: section")
        return self


def is_lifecycle_text(text: str) -> bool:
    """Whether YAML ``text`` looks like a lifecycle recipe (a top-level ``data:`` key, no ``sources:``)."""
    import re

    return bool(re.search(r"(?m)^data:", text)) and not re.search(r"(?m)^sources:", text)


def load_lifecycle_text(text: str, file: str = "<lifecycle>") -> LifecycleRecipe:
    """Parse and validate a lifecycle recipe; raises :class:`RecipeError` with every problem and its line."""
    recipe, _ = parse_validated(text, file, LifecycleRecipe, "a lifecycle recipe", "name:, data:, train:")
    return recipe


def load_lifecycle_file(path: str | Path) -> LifecycleRecipe:
    """The lifecycle recipe in ``path``."""
    return load_lifecycle_text(read_recipe_text(path), str(path))


class StepRecord(_Strict):
    """One finished (or failed) step of a lifecycle run."""

    name: str = Field(description="curate, label, train:NAME, evaluate, gate, report")
    status: Literal["done", "failed"]
    started: str
    finished: str
    seconds: float
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class LifecycleRun(_Strict):
    """``state.json`` of one lifecycle run: what each step did, and where the run stands."""

    lifecycle: str
    run: int = Field(ge=1)
    recipe: dict[str, Any] = Field(description="file and sha256 of the lifecycle recipe")
    created: str
    status: Literal["running", "done", "noop", "failed"]
    orchestrator: dict[str, Any] = Field(default_factory=dict)
    attempts: int = Field(1, description="How many times this run was started (resumes count).")
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    error: str | None = None
    finished: str | None = None

    def done(self, step: str) -> bool:
        """Whether ``step`` finished in an earlier attempt."""
        rec = self.steps.get(step)
        return rec is not None and rec.status == "done"

    def output(self, step: str) -> dict[str, Any]:
        """The output of a finished step (KeyError if it has not finished)."""
        if not self.done(step):
            raise KeyError(step)
        return self.steps[step].output


class LifecycleLineage(_Strict):
    """What a model manifest records about the lifecycle run that trained it."""

    lifecycle: str
    run: int
    state: str = Field(description="Path of the run's state.json")
    flow_run_id: str | None = None
    step: str
    datasets: dict[str, str] = Field(default_factory=dict, description="data / label -> NAME@VERSION")
