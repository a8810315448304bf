"""Contracts that cross packages: the run summary, the dataset version manifest, the model manifest.

The engine writes a :class:`RunSummary` (``summary.json`` of every run folder), the store commits a
:class:`DatasetManifest` with every version (and the annotation pull publishes one too), and the
trainers write a :class:`ModelManifest` beside every model. Each is validated when written and
when read (:func:`checked`), so a typo in a key or a missing field fails where it is made, not
three packages later. Unknown keys are refused: adding a field means adding it here.

The JSON on disk stays a plain object (these models check it; they do not reshape it), so files
written before these models existed read back unchanged.

Example:
    >>> checked(CodeVersion, {"package": "0.1.0", "git_commit": None, "python": "3.11.7"})["python"]
    '3.11.7'
    >>> checked(Counts, {"input_rows": 1})
    Traceback (most recent call last):
    ...
    schemas.manifests.ContractError: Counts: kept: Field required; ...
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.provenance import CodeVersion

__all__ = [
    "CodeVersion",
    "ContractError",
    "Counts",
    "DatasetManifest",
    "ModelManifest",
    "RunSummary",
    "checked",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Counts(_Strict):
    """Where every input row went: ``input_rows = kept + quarantined + duplicates + dropped``."""

    input_rows: int
    kept: int
    quarantined: int
    duplicates: int
    dropped: int
    balanced: bool
    quarantined_by_reason: dict[str, int]
    duplicates_by_reason: dict[str, int]
    dropped_by_reason: dict[str, int]


class FileAccount(Counts):
    """The accounting of one input file."""

    uri: str
    sha256: str
    format: str
    compression: str
    output_records: int
    records_rejected_by_reason: dict[str, int]
    # what was read (absent in summaries written before these fields existed)
    bytes: int | None = None  # the first ``bytes`` bytes of the file were read: what ``sha256`` covers
    multiline_rows: int = 0  # kept rows read from several physical lines (run folder: multiline_rows.jsonl)
    changed_while_read: dict[str, int] | None = None  # it grew while read: size_when_hashed, size_after_read


class SourceAccount(Counts):
    """The accounting of one recipe source, and of each of its files."""

    output_records: int
    records_rejected_by_reason: dict[str, int]
    files: list[FileAccount]


class StageResult(_Strict):
    """What one stage did (records in and out, per reason, with examples)."""

    name: str
    type: str
    outcome: str
    records_in: int
    records_out: int
    removed: int
    seconds: float
    by_reason: dict[str, int]
    examples: dict[str, list[dict[str, Any]]]
    stats: dict[str, Any]


class Orchestrator(_Strict):
    """Who ran the sequence: ``local``, or ``prefect`` with its flow run."""

    name: str
    flow_run_id: str | None = None
    flow_run_name: str | None = None


class FeedbackAccount(_Strict):
    """What AI feedback did with the prompts that survived the stages (``curate/feedback``).

    ``prompts_in = sum(outcomes)`` over ``pairs``, ``tie``, ``too_few``, ``failed`` and ``routed``
    (sent to annotators); ``records_out`` counts the published pairs (or KTO rows).
    """

    prompts_in: int
    outcomes: dict[str, int]
    failed_by_reason: dict[str, int]
    too_few_by_reason: dict[str, int]
    records_out: int
    candidates: int
    candidate_failures: int
    model_calls: int
    cache_hits: int
    cache_misses: int
    cache_hit_rate: float | None
    parts: int
    parts_reused: int
    balanced: bool
    judge: dict[str, Any]
    generators: list[dict[str, Any]]
    pairs: dict[str, Any]
    route: dict[str, Any]
    calibration: dict[str, Any] | None = None


class RunSummary(Counts):
    """``summary.json`` of a run folder (and what ``curate run --json`` prints)."""

    run_id: str
    recipe: str
    kind: str
    seconds: float
    rows_per_second: float | None
    output_records: int
    records_rejected_by_reason: dict[str, int]
    sources: dict[str, SourceAccount]
    outputs: dict[str, Any]
    orchestrator: Orchestrator
    code_version: CodeVersion
    stages: list[StageResult] = []
    refresh: dict[str, Any] | None = None
    published: dict[str, Any] | None = None
    annotation_push: dict[str, Any] | None = None
    feedback: FeedbackAccount | None = None


class RecipeRef(_Strict):
    """The recipe (or annotation spec) that made a version: name, sha256 and text (``${ENV}`` kept)."""

    name: str
    sha256: str
    text: str


class InputFile(_Strict):
    """An input file of a version; ``carried``: kept from the parent version by a refresh."""

    source: str
    uri: str
    sha256: str
    format: str
    rows: int
    carried: bool = False
    bytes: int | None = None  # the bytes read (what sha256 covers): the first ``bytes`` bytes of the file
    multiline_rows: int = 0  # rows read from several physical lines (quoted newlines in CSV)
    changed_while_read: dict[str, int] | None = None  # grew while read: only the first size_when_hashed bytes count


class DatasetManifest(_Strict):
    """What a published version records about how it was made (see ``curate/store``)."""

    kind: str
    # what made it: a run (recipe, inputs, stages, accounting) or an annotation pull (annotation);
    # the store's own API may publish a bare frame, so none of these is required
    recipe: RecipeRef | None = None
    inputs: list[InputFile] = []
    stages: list[dict[str, Any]] = []
    splits: dict[str, Any] | None = None
    accounting: Counts | None = None
    annotation: dict[str, Any] | None = None
    code_version: CodeVersion | None = None
    license: str | None = None  # the card's license (``other`` when the inputs' licenses are unknown)
    orchestrator_run_id: str | None = None
    split_leaks: dict[str, Any] | None = None
    stage_results: list[dict[str, Any]] = []
    run_id: str | None = None
    refresh: dict[str, Any] | None = None
    feedback: dict[str, Any] | None = None  # generator and judge models, prompt hashes, cache hits, calibration
    # filled in by the store when it commits
    dataset: str
    version: int
    parent_version: int | None
    content_hash: str
    rows: int
    rows_per_split: dict[str, int]
    published_at: str


class MemoryFigures(_Strict):
    """A training run's pre-flight memory estimate beside the peak measured on the run (``ratio`` =
    estimate / measured; see ``train/memory_probe.py``)."""

    how: str
    device: str
    baseline_bytes: int
    peak_bytes: int
    measured_bytes: int
    estimate_bytes: int
    measured_gib: float
    estimate_gib: float
    ratio: float | None = None


class ModelManifest(_Strict):
    """``manifest.json`` of a trained model: where it came from, how it was trained, what it scored."""

    name: str
    run_id: str
    method: str
    base_model: dict[str, Any]
    dataset: dict[str, Any]
    output: dict[str, Any]
    metrics: dict[str, Any] = {}
    # written by every `curate train` run; optional for manifests of models trained elsewhere
    created: str | None = None
    task: str | None = None
    adapter: dict[str, Any] | None = None
    reference_model: str | None = None
    recipe: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    code_version: CodeVersion | None = None
    libraries: dict[str, str | None] = {}
    hardware: dict[str, Any] = {}
    distributed: dict[str, Any] | None = None
    logs: list[Any] = []
    ref_cache: list[Any] = []
    preflight: dict[str, Any] | None = None
    # every evaluation of this model (schemas.evaluation.EvalReport as JSON), newest last
    evaluations: list[dict[str, Any]] = []
    reward_model: dict[str, Any] | None = None  # rloo / grpo: the reward run's lineage (its dataset versions)
    rewards: dict[str, Any] | None = None  # rloo / grpo: reward names, weights and rule-based functions
    memory: MemoryFigures | None = None
    # the lifecycle run that trained it (schemas.lifecycle.LifecycleLineage): run, flow run, dataset versions
    lifecycle: dict[str, Any] | None = None


class ContractError(ValueError):
    """A summary or manifest does not match its contract (the message names every bad field)."""


M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` itself, after checking it against ``model``; raises :class:`ContractError`."""
    try:
        model.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or '(root)'}: {err['msg']}" for err in e.errors())
        raise ContractError(f"{model.__name__}: {problems}") from None
    return data
