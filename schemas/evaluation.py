"""Contracts of evaluation and the model registry: what a metric reports, what an evaluation wrote,
what an eval recipe / train recipe ``eval:`` section asks for, and what the promotion gate decided.

Evaluators (``train/eval/``) return :class:`MetricValue` items; an evaluation run writes one
:class:`EvalReport` (``eval.json`` beside the model, and into its manifest's ``evaluations``); the
registry (``train/registry/``) writes a :class:`PromotionDecision` for every gate it runs and an
:class:`AliasEvent` for every alias it moves. Every figure carries its ``n`` and a bootstrap 95%
interval, so no number is quoted without its uncertainty.

Example:
    >>> v = MetricValue(metric="perplexity", value=12.5, n=200, ci_low=11.9, ci_high=13.2, higher_is_better=False)
    >>> v.interval()
    '12.5 [11.9, 13.2] (n=200)'
    >>> EvalSpec.model_validate({"metrics": ["heldout_loss", {"name": "bleu", "max_new_tokens": 64}]}).metrics[1].name
    'bleu'
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.feedback import JudgeSpec


class _Strict(BaseModel):
    # an overflowed figure (perplexity of a diverged model) stays infinite through JSON and back:
    # written as null it could not be read again, and the gate would fail on a valid report
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


MetricName = Literal[
    "heldout_loss",  # also reports perplexity
    "bleu",
    "rouge_l",
    "reward_accuracy",
    "implicit_reward_accuracy",
    "logprob_win_rate",  # also reports the length-normalized variant
    "judge_win_rate",
    "safety",  # refusal rate on adversarial prompts and over-refusal rate on benign look-alikes
    "lm_eval",
]


class MetricValue(_Strict):
    """One figure: its value, how many items it rests on, and its bootstrap interval."""

    metric: str = Field(description="e.g. heldout_loss, perplexity, bleu, logprob_win_rate_norm, lm_eval:TASK:acc.")
    value: float
    n: int = Field(ge=0, description="Items (rows, pairs, prompts, tokens for perplexity: say which in unit).")
    unit: str = Field("rows", description="What n counts: rows, pairs, prompts, tokens.")
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float = 0.95
    higher_is_better: bool
    details: dict[str, Any] = Field(default_factory=dict, description="ties, longer-answer wins, excluded rows...")

    def interval(self) -> str:
        """``value [low, high] (n=N)`` for tables and logs."""
        ci = f" [{self.ci_low:.4g}, {self.ci_high:.4g}]" if self.ci_low is not None and self.ci_high is not None else ""
        return f"{self.value:.4g}{ci} (n={self.n})"


class MetricSpec(_Strict):
    """One metric to compute and its options (a bare name in YAML means all defaults)."""

    name: MetricName
    max_new_tokens: int = Field(128, ge=1, le=32768, description="Generation length (bleu, rouge_l, judge, safety).")
    limit: int | None = Field(None, ge=1, description="Evaluate at most this many items (a seeded sample).")
    judge: JudgeSpec | None = Field(None, description="judge_win_rate / safety: the judge (pairwise for win rate).")
    against: str | None = Field(
        None,
        description="judge_win_rate / implicit_reward_accuracy: the other model (NAME@champion, a run, a model "
        "folder); default: the champion for judge_win_rate, the reference/base model for implicit rewards.",
    )
    reward_model: str | None = Field(None, description="reward_accuracy: the reward model (default: the model itself).")
    scorer: Literal["rules", "judge"] = Field("rules", description="safety: refusal detected by rules or by judge.")
    prompts: str | None = Field(
        None, description="safety: a folder with adversarial.jsonl and benign.jsonl (default: data/eval/safety)."
    )
    tasks: list[str] = Field(default_factory=list, description="lm_eval: task names.")
    include_path: str | None = Field(None, description="lm_eval: folder of task YAML (default: data/eval/lm_eval).")
    options: dict[str, Any] = Field(default_factory=dict, description="Metric-specific extras.")


class EvalSpec(_Strict):
    """What to evaluate on and with which metrics (a train recipe's ``eval:`` or an eval recipe's body)."""

    on: list[str] = Field(
        default_factory=list,
        description="Dataset versions NAME@VERSION (default: the trained dataset's version).",
    )
    split: str = Field("eval", description="Split of each version to evaluate on.")
    store: str | None = Field(None, description="Store of the datasets (default: the train recipe's).")
    metrics: list[MetricSpec] = Field(min_length=1)
    batch_size: int = Field(8, ge=1)
    bootstrap: int = Field(1000, ge=100, description="Bootstrap resamples for the 95% intervals.")
    seed: int = 0
    decontaminate: bool = Field(True, description="Drop eval rows near-duplicate to the model's training data.")
    contamination_threshold: float = Field(0.8, gt=0, le=1, description="Jaccard at or above which a row leaks.")

    @field_validator("metrics", mode="before")
    @classmethod
    def _bare_names(cls, v: Any) -> Any:
        return [{"name": m} if isinstance(m, str) else m for m in v] if isinstance(v, list) else v


class EvalSet(_Strict):
    """One dataset the model was scored on, after decontamination."""

    ref: str = Field(description="NAME@VERSION as resolved.")
    split: str
    kind: str
    rows: int = Field(description="Rows in the split.")
    scored: int = Field(description="Rows scored after leaked rows were excluded.")
    leaked: int = Field(0, description="Rows near-duplicate to the training data, excluded.")
    leaked_examples: list[dict[str, Any]] = Field(default_factory=list, description="A few (eval id, train id, J).")
    content_hash: str | None = None
    checked_against: str | None = Field(
        None, description="The training data the rows were checked against (None: the model's is unknown)."
    )


class EvalReport(_Strict):
    """``eval.json``: one evaluation of one model."""

    model: str = Field(description="The model as asked (NAME@N, NAME@champion, run folder, model spec).")
    model_dir: str | None = None
    created: str
    sets: list[EvalSet] = Field(default_factory=list)
    metrics: list[MetricValue] = Field(default_factory=list)
    against: str | None = Field(None, description="The model compared with (judge win rate), if any.")
    plots: list[str] = Field(default_factory=list)
    spec: dict[str, Any] = Field(default_factory=dict, description="The EvalSpec as run.")
    seconds: float = 0.0

    def value(self, metric: str) -> MetricValue | None:
        """The first figure named ``metric``."""
        return next((m for m in self.metrics if m.metric == metric), None)


class Bound(_Strict):
    """An absolute floor/ceiling on a metric's value."""

    min: float | None = None
    max: float | None = None


class ChangeRule(_Strict):
    """How much better than the champion a metric must be (in its own better direction)."""

    min_change: float = Field(0.0, description="Absolute improvement required (0: not worse).")
    min_relative_change: float | None = Field(None, description="Relative improvement required, e.g. 0.01 = 1%.")


class WinRateRule(_Strict):
    """The statistical rule: the lower end of the paired win rate's interval must clear ``ci_low_above``."""

    metric: str = "judge_win_rate"
    ci_low_above: float = Field(0.5, ge=0, le=1)


class GateSpec(_Strict):
    """The promotion gate (YAML): floors, minimum change against the champion, and the win-rate rule.

    Example (YAML)::

        gate:
          floors: {refusal_rate: {min: 0.8}, over_refusal_rate: {max: 0.2}, heldout_loss: {max: 3.0}}
          against_champion: {heldout_loss: {min_change: 0.0}}
          win_rate: {metric: judge_win_rate, ci_low_above: 0.5}
    """

    alias: str = Field("champion", description="The alias a pass moves.")
    floors: dict[str, Bound] = Field(default_factory=dict)
    against_champion: dict[str, ChangeRule] = Field(default_factory=dict)
    win_rate: WinRateRule | None = None


class Criterion(_Strict):
    """One check of the promotion gate, with the figures it compared."""

    name: str = Field(description="e.g. floor:over_refusal_rate, change:heldout_loss, win_rate_ci")
    metric: str
    passed: bool
    candidate: float | None = None
    champion: float | None = None
    threshold: float | None = None
    detail: str = ""


class PromotionDecision(_Strict):
    """What the gate decided about a candidate, written whether or not it promoted."""

    model: str = Field(description="NAME@N of the candidate.")
    champion: str | None = Field(None, description="NAME@N of the champion it was held against (none: first).")
    alias: str = "champion"
    passed: bool
    promoted: bool
    criteria: list[Criterion] = Field(default_factory=list)
    created: str
    reason: str = ""


class AliasEvent(_Strict):
    """One move of an alias, appended to the registry's log."""

    name: str
    alias: str
    version: int | None = Field(description="The version the alias now points at (None: removed).")
    previous: int | None = None
    action: Literal["promote", "rollback", "set", "remove"]
    who: str
    when: str
    why: str = ""
