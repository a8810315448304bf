"""Prefect flows over the curation steps: ``curate`` (a full run) and ``refresh`` (only what is new).

Orchestration only: every task calls one step of :mod:`curate.pipeline` (or :mod:`curate.refresh`).
Per input file, hashing and ingest are mapped tasks; per shard, near-dedup signatures are mapped
tasks (phase 1); one task decides every stage (phase 2: the global band group-by and connected
components); per part, survivors and audit rows are mapped tasks (phase 3); then the run folder
is assembled and published.

Caching: each expensive task is keyed on a content key its step computes (input file SHA-256 +
the recipe section + the code fingerprint) plus the task's source, and its results persist under
``OUT/.work/NAME/prefect-results``; a rerun after a failure resumes from the first unfinished step,
and a rerun with nothing new does no ingest, sketch, decide or finish work. Reading input and
publishing retry, since remote storage fails transiently.

Example:
    >>> # from flows.curation import run_flow
    >>> # result = run_flow(Path("recipes/quickstart.yaml"), runner="thread")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import TASK_SOURCE, Inputs
from prefect.context import get_run_context
from prefect.futures import as_completed

from curate import pipeline, refresh
from curate.pipeline import Decision, Prepared, RunResult
from curate.shards import FileJob, ShardRef, digest, shard_key, sketch_key
from flows.runners import task_runner
from schemas.recipe_loader import load_recipe_file

KEYED = TASK_SOURCE + Inputs(exclude=["prep", "job", "ref", "refs", "pinned", "decision", "sketches"])
"""Cache on the explicit ``key`` argument (and the other small ones) plus the task's code."""

RETRIES = {"retries": 2, "retry_delay_seconds": [1, 5]}


@task(name="hash-file", **RETRIES)
def hash_file_task(prep: Prepared, source_index: int, file_index: int) -> FileJob:
    return pipeline.hash_file(prep, source_index, file_index)


@task(name="ingest", cache_policy=KEYED, persist_result=True, **RETRIES)
def ingest_task(prep: Prepared, job: FileJob, key: str) -> ShardRef:
    return pipeline.ingest(prep, job)


@task(name="base-version", cache_policy=KEYED, persist_result=True)
def base_task(prep: Prepared, key: str, drop_uris: list[str]) -> ShardRef:
    base = refresh.base_version(prep)
    assert base is not None
    return refresh.base_shard(prep, base, drop_uris)


@task(name="sketch", cache_policy=KEYED, persist_result=True)
def sketch_task(prep: Prepared, ref: ShardRef, stage_index: int, key: str) -> str:
    return pipeline.sketch(prep, ref, stage_index)


@task(name="decide", cache_policy=KEYED, persist_result=True)
def decide_task(
    prep: Prepared, refs: list[ShardRef], sketches: dict[int, list[str]], pinned: list[ShardRef], key: str
) -> Decision:
    return pipeline.decide(prep, refs, sketches, pinned)


@task(name="finish-part", cache_policy=KEYED, persist_result=True)
def finish_task(prep: Prepared, decision: Decision, index: int, key: str) -> dict[str, Any]:
    return pipeline.finish(prep, decision, index)


@task(name="assemble")
def assemble_task(
    prep: Prepared, refs: list[ShardRef], decision: Decision, finished: list[dict[str, Any]], extra: dict[str, Any]
) -> RunResult:
    return pipeline.assemble(prep, refs, decision, finished, extra)


@task(name="publish", retries=1, retry_delay_seconds=2)
def publish_task(
    prep: Prepared, result: RunResult, base_parts: list[str], carried: list[dict[str, Any]]
) -> dict[str, Any] | None:
    return pipeline.publish(prep, result, base_parts, carried)


def _storage(t: Any, prep: Prepared) -> Any:
    """The task with its results (and cache records) kept beside the run's work files."""
    return t.with_options(result_storage=(prep.work / "prefect-results").resolve())


def _fresh(t: Any, ok: Any, **kwargs: Any) -> Any:
    """Run ``t``; when a cached result points at files since deleted (``ok`` false), recompute it."""
    prep = kwargs["prep"]
    value = _storage(t, prep)(**kwargs)
    if not ok(value):
        value = _storage(t, prep).with_options(refresh_cache=True)(**kwargs)
    return value


def _ingest_all(prep: Prepared, jobs: list[FileJob]) -> list[ShardRef]:
    """Mapped ingest with a progress artifact; shards come back in input order."""
    recipe = prep.plan.recipe
    logger = get_run_logger()
    progress = create_progress_artifact(0.0, description=f"{prep.name}: input files ingested")
    ingest = _storage(ingest_task, prep)
    futures = {}
    for job in jobs:
        sp = prep.plan.sources[job.source_index]
        key = shard_key(sp, job.sha256, recipe.output.kind, recipe.limits)
        futures[ingest.submit(prep=prep, job=job, key=key)] = (job, key)
    refs: dict[str, ShardRef] = {}
    for done, fut in enumerate(as_completed(list(futures)), start=1):
        job, key = futures[fut]
        ref = fut.result()
        if not ref.complete():  # the cache outlived the shard's files
            ref = ingest.with_options(refresh_cache=True)(prep=prep, job=job, key=key)
        refs[job.uri] = ref
        update_progress_artifact(progress, 100.0 * done / max(len(jobs), 1))
        logger.info("ingested %s: %s rows -> %s records", job.uri, ref.tally["input_rows"], ref.records)
    update_progress_artifact(progress, 100.0)
    return [refs[j.uri] for j in jobs]


def _stages(
    prep: Prepared, refs: list[ShardRef], pinned: list[ShardRef]
) -> tuple[Decision, list[dict[str, Any]], dict[int, list[str]]]:
    kind = prep.plan.recipe.output.kind
    shards = [*pinned, *refs]
    sketch_futures = {
        i: [
            _storage(sketch_task, prep).submit(prep=prep, ref=r, stage_index=i, key=sketch_key(r, st, kind, fields))
            for r in shards
        ]
        for i, st, fields in prep.near_stages()
    }
    sketches = {i: [f.result() for f in fs] for i, fs in sketch_futures.items()}
    key = pipeline.decision_key(prep, refs, pinned)
    decision = _fresh(
        decide_task,
        lambda d: Path(d.dir, "state.parquet").exists(),
        prep=prep,
        refs=refs,
        sketches=sketches,
        pinned=pinned,
        key=key,
    )
    finish = _storage(finish_task, prep)
    futures = [
        finish.submit(prep=prep, decision=decision, index=i, key=f"{decision.key}-{i}")
        for i in range(len(decision.new_parts()))
    ]
    finished = []
    for i, fut in enumerate(futures):
        out = fut.result()
        if any(out[k] and not Path(out[k]).exists() for k in ("data", "dropped", "duplicates")):
            out = finish.with_options(refresh_cache=True)(
                prep=prep, decision=decision, index=i, key=f"{decision.key}-{i}"
            )
        finished.append(out)
    return decision, finished, sketches


def _orchestrator() -> dict[str, Any]:
    ctx = get_run_context()
    run = getattr(ctx, "flow_run", None)
    return {"name": "prefect", "flow_run_id": str(run.id) if run else None, "flow_run_name": run.name if run else None}


def _curate(recipe: str, out_dir: str | None, report: bool, incremental: bool) -> dict[str, Any]:
    logger = get_run_logger()
    doc = load_recipe_file(recipe)
    prep = pipeline.prepare(doc, Path(out_dir) if out_dir else None, report)
    hashing = _storage(hash_file_task, prep)
    jobs = [
        f.result() for f in [hashing.submit(prep=prep, source_index=s, file_index=i) for s, i in prep.file_indexes()]
    ]
    extra: dict[str, Any] = {"orchestrator": _orchestrator()}
    pinned: list[ShardRef] = []
    carried: list[dict[str, Any]] = []
    if incremental:
        rp = refresh.plan_refresh(prep, jobs)
        extra["refresh"] = rp.info()
        if rp.noop:
            refresh.record_refresh(prep, {"noop": True, **rp.info(), **extra["orchestrator"]})
            logger.info("nothing new since %s: no-op", rp.base.ref if rp.base else "-")
            create_markdown_artifact(
                f"# {prep.name}: refresh was a no-op\n\nEvery input file is already in "
                f"`{rp.base.ref if rp.base else '-'}` ({len(jobs)} files checked by content hash).",
                key=_artifact_key(prep.name, "refresh"),
                description="refresh outcome",
            )
            return {"noop": True, "recipe": prep.name, "refresh": rp.info()}
        jobs = rp.jobs
        if rp.base is not None and rp.selection is not None:
            drop = rp.selection.changed_uris
            pinned = [
                _fresh(
                    base_task,
                    lambda r: r.complete(),
                    prep=prep,
                    key=digest(rp.base.content_hash, sorted(drop)),
                    drop_uris=drop,
                )
            ]
            carried = refresh.carried_inputs(rp.base, drop)
    refs = _ingest_all(prep, jobs)
    decision, finished, sketches = _stages(prep, refs, pinned)
    result = assemble_task(prep=prep, refs=refs, decision=decision, finished=finished, extra=extra)
    published = publish_task(prep=prep, result=result, base_parts=[p for r in pinned for p in r.parts], carried=carried)
    from flows.annotation import push_new_version

    pushed = push_new_version(doc, published)
    if incremental:
        refresh.record_refresh(
            prep, {"noop": False, "published": published, "annotation_push": pushed, **extra["orchestrator"]}
        )
    pipeline.cleanup(prep, [*pinned, *refs], decision, sketches)
    _report_artifacts(prep, result)
    return {"run_dir": str(result.run_dir), **result.summary, **({"annotation_push": pushed} if pushed else {})}


def _artifact_key(name: str, what: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes."""
    clean = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"{clean}-{what}"


def _report_artifacts(prep: Prepared, result: RunResult) -> None:
    """The funnel per stage and per reason as a table; the run report (with its plots) as markdown."""
    from flows.artifacts import funnel_rows, report_markdown

    summary = result.summary
    create_table_artifact(funnel_rows(summary), key=_artifact_key(prep.name, "funnel"), description="funnel")
    if result.run_dir is not None:
        create_markdown_artifact(
            report_markdown(result.run_dir, summary), key=_artifact_key(prep.name, "report"), description="run report"
        )


@flow(name="curate", log_prints=True)
def curate_flow(recipe: str, out_dir: str | None = None, report: bool = True) -> dict[str, Any]:
    """Run a curation recipe: ingest every input, stages, run folder, publish."""
    return _curate(recipe, out_dir, report, incremental=False)


@flow(name="curate-refresh", log_prints=True)
def refresh_flow(recipe: str, out_dir: str | None = None, report: bool = True) -> dict[str, Any]:
    """Incremental refresh: only inputs the latest version has not seen, deduplicated against it."""
    return _curate(recipe, out_dir, report, incremental=True)


def run_flow(
    recipe: Path, out_dir: Path | None = None, report: bool = True, runner: str = "thread", incremental: bool = False
) -> dict[str, Any]:
    """Run :func:`curate_flow` (or :func:`refresh_flow`) on the task runner ``runner`` names."""
    fl = refresh_flow if incremental else curate_flow
    return fl.with_options(task_runner=task_runner(runner))(
        str(recipe), str(out_dir) if out_dir is not None else None, report
    )
