"""The run sequence, written once: both drivers execute exactly this.

A run is plan -> hash (per input file) -> [refresh: choose new files, pin the base version] ->
ingest (per file) -> sketch (per shard and near-dedup stage) -> decide (once) -> finish (per part)
-> assemble -> publish -> after-publish hooks. :func:`run_sequence` spells that order out; *how*
each step runs is the executor's business:

- :class:`curate.engine.local.LocalExecutor` calls the steps in this process with a progress bar
  (``curate run --local``);
- ``flows.executor.PrefectExecutor`` submits them as Prefect tasks, mapped over files, shards and
  parts on threads or Dask (``curate run``).

Each cached step (:class:`Step`) carries its **content key** (computed from its arguments) and a
check that its output under that key is complete. That key is the only cache: a step whose output
exists returns it without work, and Prefect's task cache is keyed on the same value (a cache
record is honoured only while the step's own files are complete), so the two can never disagree.

Work after publishing (the refresh log, the Argilla push, Prefect artifacts, and later feedback,
training and evaluation) joins the sequence as :class:`Hook` s, run in order by the same executor.

Example:
    >>> [s.name for s in SEQUENCE]
    ['hash-file', 'base-version', 'calibrate-judge', 'ingest', 'sketch', 'decide', 'finish-part', 'feedback', \
'assemble', 'publish']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from curate.engine import steps
from curate.engine.refresh import base_key, base_shard, base_version, carried_inputs, plan_refresh
from curate.engine.shards import FileJob, ShardRef, load_shard, shard_key, sketch_key
from curate.engine.steps import Decision, Prepared, RunResult


@dataclass(frozen=True)
class Step:
    """One unit of the sequence: ``fn(prep, *args)``, optionally cached on a content key.

    ``key(prep, *args)`` is the content key of the output (None: not cached); ``done(prep, key)``
    says whether the output stored under that key is complete on disk. ``progress``: the step
    accepts an ``on_batch(bytes, rows)`` callback (ingest), which an executor may pass. ``batch``:
    each call is short (milliseconds to a second), so an executor that pays per call (a Prefect
    task run costs milliseconds in the flow and tens of milliseconds of server CPU) may run all of
    a map's calls as one unit named ``batch``, with the concurrency it would give the calls, and
    cache it on a key made of the calls' keys.
    """

    name: str
    fn: Callable[..., Any]
    key: Callable[..., str] | None = None
    done: Callable[[Prepared, str], bool] | None = None
    retries: int = 0
    retry_delay_seconds: tuple[float, ...] = ()
    progress: bool = False
    batch: str | None = None


def _ingest_key(prep: Prepared, job: FileJob) -> str:
    r = prep.plan.recipe
    return shard_key(prep.plan.sources[job.source_index], job.sha256, r.record_kind, r.limits)


def _shard_done(prep: Prepared, key: str) -> bool:
    return load_shard(prep.work / "shards" / key) is not None


def _sketch_key(prep: Prepared, ref: ShardRef, stage_index: int) -> str:
    stage, fields = prep.near_stage(stage_index)
    return sketch_key(ref, stage, prep.plan.recipe.record_kind, fields)


def _sketch_done(prep: Prepared, key: str) -> bool:
    return (prep.work / "sketches" / f"{key}.npz").exists()


def _decide_key(prep: Prepared, refs: list[ShardRef], sketches: dict[int, list[str]], pinned: list[ShardRef]) -> str:
    return steps.decision_key(prep, refs, pinned)


def _decide_done(prep: Prepared, key: str) -> bool:
    folder = prep.work / "decisions" / key
    return all((folder / f).exists() for f in ("decision.json", "state.parquet", "removed.parquet"))


def _finish_key(prep: Prepared, decision: Decision, index: int) -> str:
    return steps.finish_key(decision, index)


def _finish_done(prep: Prepared, key: str) -> bool:
    return steps.finished_part(prep, key) is not None


def _feedback_key(prep: Prepared, decision: Decision, index: int, finished: dict[str, Any]) -> str:
    return steps.feedback_key(prep, decision, index, finished)


def _feedback_done(prep: Prepared, key: str) -> bool:
    return steps.labelled_part(prep, key) is not None


def _base(prep: Prepared, drop_uris: list[str]) -> ShardRef:
    base = base_version(prep)
    assert base is not None, "a refresh pins a base only when a version is published"
    return base_shard(prep, base, drop_uris)


def _base_key(prep: Prepared, drop_uris: list[str]) -> str:
    base = base_version(prep)
    assert base is not None
    return base_key(prep, base, drop_uris)


RETRY_READS = {"retries": 2, "retry_delay_seconds": (1.0, 5.0)}
"""Reading inputs retries: remote storage fails transiently."""

HASH = Step("hash-file", steps.hash_file, batch="hash-files", **RETRY_READS)
BASE = Step("base-version", _base, _base_key, _shard_done)
INGEST = Step("ingest", steps.ingest, _ingest_key, _shard_done, progress=True, **RETRY_READS)
SKETCH = Step("sketch", steps.sketch, _sketch_key, _sketch_done, batch="sketch-shards")
DECIDE = Step("decide", steps.decide, _decide_key, _decide_done)
FINISH = Step("finish-part", steps.finish, _finish_key, _finish_done, batch="finish-parts")
CALIBRATE = Step("calibrate-judge", steps.calibrate_judge)
FEEDBACK = Step("feedback", steps.feedback, _feedback_key, _feedback_done, retries=1, retry_delay_seconds=(5.0,))
ASSEMBLE = Step("assemble", steps.assemble)
PUBLISH = Step("publish", steps.publish, retries=1, retry_delay_seconds=(2.0,))
SEQUENCE = (HASH, BASE, CALIBRATE, INGEST, SKETCH, DECIDE, FINISH, FEEDBACK, ASSEMBLE, PUBLISH)


@dataclass
class Outcome:
    """What a run did, handed to every after-publish hook (and filled in by them)."""

    prep: Prepared
    orchestrator: dict[str, Any]
    refresh: dict[str, Any] | None = None
    result: RunResult | None = None
    published: dict[str, Any] | None = None
    hooks: dict[str, Any] = field(default_factory=dict)

    @property
    def noop(self) -> bool:
        """A refresh that found nothing new (nothing was run or published)."""
        return self.result is None

    def summary(self) -> dict[str, Any]:
        """The run summary, with what the hooks reported (e.g. ``annotation_push``)."""
        if self.result is None:
            return {"noop": True, "recipe": self.prep.name, "refresh": self.refresh}
        return {**self.result.summary, **{k: v for k, v in self.hooks.items() if v is not None}}


@dataclass(frozen=True)
class Hook:
    """Work after publishing: ``run(outcome, sink)`` when ``applies(outcome)``; its return value is
    recorded in ``outcome.hooks[name]`` (and in the summary when not None)."""

    name: str
    run: Callable[[Outcome, ArtifactSink], Any]
    applies: Callable[[Outcome], bool] = lambda outcome: True
    retries: int = 0


class ArtifactSink(Protocol):
    """Where hooks put what a person looks at: Prefect artifacts under a flow, nothing locally."""

    def table(self, key: str, rows: list[dict[str, Any]], description: str) -> None: ...

    def markdown(self, key: str, text: str, description: str) -> None: ...


class Executor(ArtifactSink, Protocol):
    """Runs the steps of :func:`run_sequence` (see the module docstring)."""

    def orchestrator(self) -> dict[str, Any]:
        """Who ran the sequence, for the summary and the manifest (name, flow-run id)."""
        ...

    def call(self, step: Step, prep: Prepared, *args: Any) -> Any:
        """Run one step and return its value."""
        ...

    def map(self, step: Step, prep: Prepared, calls: Sequence[tuple[Any, ...]], label: str = "") -> list[Any]:
        """Run ``step`` once per argument tuple (concurrently where it can); values in call order."""
        ...

    def hook(self, hook: Hook, outcome: Outcome) -> Any:
        """Run one after-publish hook."""
        ...


def run_sequence(prep: Prepared, ex: Executor, refresh: bool = False, hooks: Sequence[Hook] = ()) -> Outcome:
    """Run the whole sequence on ``ex``; returns the :class:`Outcome` (``noop`` for an empty refresh).

    Raises what the steps raise (RecipeError, InputError, QuarantineLimitError, EmptyVersionError,
    publish errors); after a failure nothing is published, and a rerun resumes from the first
    unfinished step.
    """
    jobs: list[FileJob] = ex.map(HASH, prep, prep.file_indexes(), "hash")
    outcome = Outcome(prep, ex.orchestrator())
    pinned: list[ShardRef] = []
    carried: list[dict[str, Any]] = []
    if refresh:
        rp = plan_refresh(prep, jobs)
        outcome.refresh = rp.info()
        if rp.noop:
            _run_hooks(ex, hooks, outcome)
            return outcome
        jobs = rp.jobs
        if rp.base is not None and rp.selection is not None:
            drop = rp.drop_uris
            pinned = [ex.call(BASE, prep, drop)]
            carried = carried_inputs(rp.base, drop)
    fb = prep.plan.recipe.feedback is not None
    # the judge is measured before anything is generated: a judge below the bar costs no generation
    calibration = ex.call(CALIBRATE, prep) if fb and prep.plan.recipe.feedback.calibration else None  # type: ignore[union-attr]
    refs: list[ShardRef] = ex.map(INGEST, prep, [(j,) for j in jobs], "ingest")
    # a feedback recipe's published rows are pairs, not prompts: they are carried, not staged against
    staged_pins = [] if fb else pinned
    shards = [*staged_pins, *refs]
    sketches = {i: ex.map(SKETCH, prep, [(r, i) for r in shards], "sketch") for i, _, _ in prep.near_stages()}
    decision: Decision = ex.call(DECIDE, prep, refs, sketches, staged_pins)
    finished = ex.map(FINISH, prep, [(decision, i) for i in range(len(decision.new_parts()))], "finish")
    labelled = ex.map(FEEDBACK, prep, [(decision, i, f) for i, f in enumerate(finished)], "feedback") if fb else None
    extra = {"orchestrator": outcome.orchestrator, **({"refresh": outcome.refresh} if refresh else {})}
    outcome.result = ex.call(ASSEMBLE, prep, refs, decision, finished, extra, labelled, calibration)
    base_parts = [p for r in pinned for p in r.parts]
    steps.refuse_empty_version(prep, outcome.result, base_parts)
    outcome.published = ex.call(PUBLISH, prep, outcome.result, base_parts, carried)
    _run_hooks(ex, hooks, outcome)
    steps.cleanup(prep, [*pinned, *refs], decision, sketches, labelled)
    return outcome


def _run_hooks(ex: Executor, hooks: Sequence[Hook], outcome: Outcome) -> None:
    for h in hooks:
        if h.applies(outcome):
            outcome.hooks[h.name] = ex.hook(h, outcome)
