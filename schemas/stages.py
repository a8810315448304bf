"""Recipe models of the stages that run after ingest: filters, exact and near dedup, decontamination.

Stages run in the order written under ``stages:``. Each is a mapping with a ``type``.

Example (YAML):
    stages:
      - {type: filter, rule: instruction_defects}
      - {type: filter, rule: gopher_quality, field: response, params: {min_doc_words: 20}}
      - {type: exact_dedup, key: [prompt]}
      - {type: near_dedup, key: [conversation], threshold: 0.8}
      - type: decontaminate
        key: [prompt]
        against:
          - {name: eval, path: ../eval/*.jsonl, column: instruction}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Keep = Literal["first", "longest", "score"]
Verify = Literal["exact", "estimate", "none"]
Clusters = Literal["connected", "non_transitive"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Normalization(_Strict):
    """How text is normalized before comparing; each step can be turned off."""

    unicode: bool = Field(True, description="NFKC: compatibility forms (full-width letters, ligatures) compare equal.")
    case: bool = Field(True, description="Lower-case.")
    punctuation: bool = Field(True, description="Treat punctuation and symbols as spaces.")
    whitespace: bool = Field(True, description="Collapse whitespace runs and strip the ends.")


class MinHashParams(_Strict):
    """Shingling and signature parameters (the same params give the same signatures)."""

    num_perm: int = Field(128, ge=16, le=1024, description="Signature length (bins).")
    repeats: int = Field(2, ge=1, le=16, description="Bins each shingle is hashed into (fewer empty bins).")
    shingle: Literal["word", "char"] = Field("word", description="Shingle unit: word n-grams or character n-grams.")
    shingle_size: int = Field(5, ge=1, le=64, description="n of the n-grams.")
    seed: int = Field(1, ge=0, description="Hash seed.")
    normalization: Normalization = Field(default_factory=Normalization)


class _KeyedStage(_Strict):
    name: str | None = Field(None, description="Label in reports (default: the stage type).")
    key: list[str] | None = Field(
        None,
        description="Fields compared, joined (e.g. [prompt] or [prompt, chosen]); default per kind: "
        "text -> text, alpaca -> text, sft/kto -> conversation, preference -> [prompt, chosen].",
    )


class _KeepPolicy(_Strict):
    keep: Keep = Field(
        "first",
        description="Which member of a duplicate group stays: first seen, longest (most text in the whole "
        "record), or highest score_field.",
    )
    score_field: str | None = Field(None, description="Numeric column ranking rows for keep: score (higher wins).")

    @model_validator(mode="after")
    def _score_needs_field(self) -> _KeepPolicy:
        if self.keep == "score" and not self.score_field:
            raise ValueError("keep: score needs score_field (a numeric column such as margin or score_chosen)")
        return self


class FilterStage(_Strict):
    """Drop rows a quality rule rejects; ``curate filters`` lists the rules and their parameters."""

    type: Literal["filter"]
    rule: str = Field(description="Filter name, e.g. gopher_quality, instruction_defects, length.")
    field: str | None = Field(None, description="Field the rule reads (default: the rule's own, usually response).")
    params: dict[str, Any] = Field(default_factory=dict, description="Rule parameters (defaults: published values).")
    name: str | None = Field(None, description="Label in reports (default: the rule name).")


class ExactDedupStage(_KeyedStage, _KeepPolicy):
    """Drop rows whose normalized key text equals an earlier kept row's."""

    type: Literal["exact_dedup"]
    normalization: Normalization = Field(default_factory=Normalization)


class NearDedupStage(_KeyedStage, _KeepPolicy):
    """Drop near-duplicates: MinHash LSH candidates, verified, then grouped.

    ``clusters: connected`` (default) removes every row of a connected component of verified pairs
    but its best row, so removal is transitive: on a chain A~B~C~D where only neighbours are
    similar, only A stays although A and D share nothing. ``clusters: non_transitive`` visits rows
    in ``keep`` order and removes a row only when it is within ``threshold`` of a row already kept
    (on that chain A and C stay, B and D go). Either way the audit names, for each removed row, the
    neighbour it really resembles (``duplicate_of``) and the row that stays for it
    (``representative``).
    """

    type: Literal["near_dedup"]
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity at or above which rows are duplicates.")
    minhash: MinHashParams = Field(default_factory=MinHashParams)
    bands: int | None = Field(
        None,
        ge=1,
        description="LSH bands (default: optimal for threshold; favouring recall when candidates are verified).",
    )
    rows: int | None = Field(None, ge=1, description="Rows per band (give bands and rows together).")
    verify: Verify = Field("exact", description="Check candidates by exact or estimated Jaccard, or not at all.")
    clusters: Clusters = Field(
        "connected",
        description="connected: drop all of a connected group but its best row (transitive along chains); "
        "non_transitive: drop a row only if it is within threshold of a row that is kept.",
    )
    workers: int = Field(1, ge=1, le=64, description="Threads computing signatures (the kernel releases the GIL).")

    @model_validator(mode="after")
    def _bands_rows(self) -> NearDedupStage:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give bands and rows together, or neither (then they are chosen for threshold)")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.minhash.num_perm:
            raise ValueError(
                f"bands x rows = {self.bands * self.rows} exceeds minhash.num_perm = {self.minhash.num_perm}"
            )
        return self


class ReferenceSpec(_Strict):
    """A reference set (eval set, benchmark, earlier data) read with the same ingest readers."""

    name: str = Field(description="Name used in the leak report.")
    path: str | list[str] = Field(description="File(s), glob or URL, relative to the recipe's folder.")
    format: Literal["auto", "jsonl", "json", "parquet", "csv", "text", "hf_disk"] = "auto"
    column: str | None = Field(None, description="Raw column holding the text to compare (e.g. instruction).")
    convert: str | list[str] | None = Field(None, description="Or: a converter (chain) to a record kind ...")
    field: str | None = Field(None, description="... and the field of that kind to compare (e.g. prompt).")

    @model_validator(mode="after")
    def _one_source_of_text(self) -> ReferenceSpec:
        if (self.column is None) == (self.convert is None):
            raise ValueError("give either column (a raw text column) or convert + field")
        if self.convert is not None and self.field is None:
            raise ValueError("convert needs field: which field of the converted records to compare")
        return self

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class DecontaminateStage(_KeyedStage):
    """Drop rows that exactly or nearly duplicate anything in reference sets, and report the leaks."""

    type: Literal["decontaminate"]
    against: list[ReferenceSpec] = Field(min_length=1)
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity counted as a leak.")
    minhash: MinHashParams = Field(default_factory=MinHashParams)
    verify: Verify = "exact"


Stage = Annotated[FilterStage | ExactDedupStage | NearDedupStage | DecontaminateStage, Field(discriminator="type")]
