"""Annotation config: how preference records go to Argilla and how human labels come back.

The recipe's ``annotation:`` section (``schemas.recipe.Recipe.annotation``) and the
``curate annotate`` commands both use :class:`AnnotationSpec`. Every model rejects unknown keys.

Example (YAML, in a recipe whose ``output.kind`` is ``preference``):
    annotation:
      dataset: support-prefs             # Argilla dataset name (default: the recipe name)
      questions: [ranking, label, rationale]
      guidelines: Rank the answers by helpfulness, then honesty.
      min_submitted: 2                   # each record needs two annotators
      aggregate: {rule: mean_rank, ties: drop}
      output: {dataset: support-prefs-human, kto: true}

Example (Python):
    >>> spec = AnnotationSpec(questions=["ranking", "ratings"], min_submitted=2)
    >>> spec.aggregate.rule, spec.required
    ('mean_rank', ['ranking'])
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

Question = Literal["ranking", "label", "ratings", "rationale"]
"""``ranking``: order all responses; ``label``: pick the better one (or tie); ``ratings``: 1-5 per
response; ``rationale``: free text."""

DEFAULT_GUIDELINES = (
    "Read the conversation in **prompt**, then the candidate responses.\n\n"
    "- **ranking**: order the responses from best (1) to worst. Judge helpfulness first, then "
    "correctness and honesty, then tone. Equal ranks mean you cannot tell them apart.\n"
    "- **preferred**: the response you would want the assistant to give (or *tie*).\n"
    "- **rating_N**: 1 (harmful or useless) to 5 (excellent) for response N.\n"
    "- **rationale** (optional): one sentence on why.\n\n"
    "Use *Discard* for records you cannot judge (broken text, not a real question); do not guess."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AggregateSpec(_Strict):
    """How several annotators' responses to one record become one preference label."""

    rule: Literal["mean_rank", "majority"] = Field(
        "mean_rank",
        description="mean_rank: best = lowest mean rank, worst = highest; majority: best = the response most "
        "annotators ranked first, if at least min_agreement of them did.",
    )
    min_agreement: float = Field(
        0.5,
        ge=0,
        le=1,
        description="majority: share of a record's annotators that must pick the winner (strictly more than "
        "this share; 0.5 = a strict majority).",
    )
    min_annotators: int = Field(
        1, ge=1, description="Records with fewer submitted responses are left out (counted as pending)."
    )
    ties: Literal["drop", "suggestion"] = Field(
        "drop",
        description="A record whose best responses tie: drop it (counted as tie), or break the tie with the "
        "AI/model suggestion when the record has one (else drop).",
    )
    pairs: Literal["best_worst", "all_pairs"] = Field(
        "best_worst", description="One pair per record (best vs worst), or every pair with different mean ranks."
    )


class AnnotationOutputSpec(_Strict):
    """Where pulled labels are published."""

    store: str = Field("data/store", description="Store root folder of the published datasets.")
    dataset: str | None = Field(
        None, pattern=_NAME, description="Preference dataset to publish (default: <source dataset>-annotated)."
    )
    kto: bool = Field(False, description="Also publish KTO rows (best response true, worst false).")
    kto_dataset: str | None = Field(None, pattern=_NAME, description="KTO dataset name (default: <dataset>-kto).")


class WaitSpec(_Strict):
    """Wait until enough records are complete before pulling (a scheduled flow's step)."""

    min_completed: int | None = Field(
        None, ge=1, description="Records that must be complete (default: every record of the dataset)."
    )
    timeout_s: float = Field(3600.0, gt=0, description="Give up after this many seconds.")
    poll_s: float = Field(30.0, gt=0, description="Seconds between progress checks.")


class AnnotationSpec(_Strict):
    """An Argilla annotation round for preference records (see the module docstring)."""

    dataset: str | None = Field(
        None, pattern=_NAME, description="Argilla dataset name (default: the recipe's or source dataset's name)."
    )
    workspace: str | None = Field(None, description="Argilla workspace (default: the signed-in user's first one).")
    questions: list[Question] = Field(
        default_factory=lambda: ["ranking", "label", "rationale"],
        min_length=1,
        description="Questions shown to annotators: ranking, label, ratings, rationale.",
    )
    required: list[Question] | None = Field(
        None,
        description="Questions an annotator must answer to submit (default: the first of ranking/label/ratings).",
    )
    guidelines: str = Field(DEFAULT_GUIDELINES, min_length=1, description="Annotator guidelines (markdown).")
    min_submitted: int = Field(1, ge=1, description="Submitted responses that complete a record (distribution).")
    max_responses: int = Field(4, ge=2, le=8, description="Most candidate responses per record.")
    suggestions: bool = Field(True, description="Pre-fill suggestions from AI judges or model scores when present.")
    aggregate: AggregateSpec = Field(default_factory=AggregateSpec)
    output: AnnotationOutputSpec = Field(default_factory=AnnotationOutputSpec)
    wait: WaitSpec = Field(default_factory=WaitSpec)

    @model_validator(mode="after")
    def _questions_consistent(self) -> AnnotationSpec:
        if len(set(self.questions)) != len(self.questions):
            raise ValueError("questions: each question at most once")
        if not {"ranking", "label", "ratings"} & set(self.questions):
            raise ValueError(
                "questions: add at least one of ranking, label, ratings (rationale alone gives no preference)"
            )
        if self.required is None:
            first = next(q for q in self.questions if q in ("ranking", "label", "ratings"))
            self.__dict__["required"] = [first]
        missing = [q for q in self.required or [] if q not in self.questions]
        if missing:
            raise ValueError(f"required: {', '.join(missing)} not in questions; add it to questions or remove it")
        return self
