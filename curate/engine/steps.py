"""The steps of a curation run, as plain functions both drivers call.

A run is: :func:`prepare` (plan the recipe) -> :func:`hash_file` per input -> :func:`ingest` per
file (a shard each) -> :func:`sketch` per shard and near-dedup stage -> :func:`decide` (all
stages, once, over every shard: filters, exact dedup, the global band group-by and connected
components of near-dedup, decontamination) -> :func:`finish` per part (survivors and audit rows)
-> :func:`assemble` (the run folder, its accounting, report and atomic commit) -> :func:`publish`.

Between steps only small references travel (paths and content keys); the data stays in files
under ``OUT/.work/NAME``, named by content, so each step is resumable and cacheable.
:func:`curate.engine.local.run_recipe` runs the steps in order in-process (``curate run --local``);
``flows.curation`` runs them as Prefect tasks (mapped over files and parts, on threads or Dask).

Example:
    >>> # prep = prepare(load_recipe_file("recipes/quickstart.yaml"))
    >>> # refs = [ingest(prep, hash_file(prep, s, f)) for s, f in prep.file_indexes()]
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.engine.accounting import Ledger
from curate.engine.fates import AUDIT_COLUMNS, REMOVED_SCHEMA, finish_part, read_fates, settle, write_fates
from curate.engine.plan import Plan, plan
from curate.engine.report import length_field, record_lengths, write_report
from curate.engine.run_folder import RunWriter, local_mirror, new_run_id, remote_run_dir, upload_run
from curate.engine.shards import (
    GC_MIN_AGE,
    FileJob,
    ShardRef,
    code_fingerprint,
    digest,
    garbage_collect,
    ingest_file,
    sketch_shard,
)
from curate.ingest import InputError, InputFile, sha256_of
from curate.store.location import is_url
from schemas.kinds import arrow_schema
from schemas.manifests import RunSummary, checked
from schemas.provenance import code_version
from schemas.recipe_loader import LoadedRecipe
from schemas.stages import DecontaminateStage, NearDedupStage

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """A committed run folder (None for a no-op refresh) and its summary."""

    run_dir: Path | None
    summary: dict[str, Any]


class QuarantineLimitError(RuntimeError):
    """More of the input was quarantined than ``limits.max_quarantined_fraction`` allows.

    The run was still written (for audit) and nothing was published; ``result`` holds it.
    """

    def __init__(self, message: str, result: RunResult):
        super().__init__(message)
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries (Dask workers)
        return (type(self), (str(self), self.result))


class EmptyVersionError(RuntimeError):
    """The run kept no row, so the version it would publish is empty (``publish.allow_empty`` is off).

    The run folder was still written (for audit) and nothing was published; ``result`` holds it.
    """

    def __init__(self, message: str, result: RunResult):
        super().__init__(message)
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries (Dask workers)
        return (type(self), (str(self), self.result))


@dataclass
class Prepared:
    """A planned run: the recipe, its inputs, where its run folder and work files go."""

    doc: LoadedRecipe
    plan: Plan
    root: Path
    work: Path
    report: bool = True
    run_id: str = field(default_factory=new_run_id)
    started: float = field(default_factory=time.time)
    remote: str | None = None
    """``output.dir`` when it is a URL: the run is built under ``root`` (a local mirror) and copied there."""

    @property
    def name(self) -> str:
        return self.plan.recipe.name

    def file_indexes(self) -> list[tuple[int, int]]:
        """``(source_index, file_index)`` of every input file, in recipe order."""
        return [(sp.index, i) for sp in self.plan.sources for i in range(len(sp.files))]

    def near_stages(self) -> list[tuple[int, NearDedupStage, list[str]]]:
        """``(stage index, stage, key fields)`` of every near-dedup stage."""
        near = [(i, st) for i, st in enumerate(self.plan.recipe.stages) if isinstance(st, NearDedupStage)]
        if not near:  # curate.engine.stage_runner pulls in numba and scipy (over a second): only import it when needed
            return []
        from curate.engine.stage_runner import DEFAULT_KEYS

        kind = self.plan.recipe.record_kind
        return [(i, st, st.key or DEFAULT_KEYS[kind]) for i, st in near]

    def near_stage(self, stage_index: int) -> tuple[NearDedupStage, list[str]]:
        """The near-dedup stage at ``stage_index`` and its key fields."""
        return next((st, f) for i, st, f in self.near_stages() if i == stage_index)


def prepare(doc: LoadedRecipe, out_dir: str | Path | None = None, report: bool = True) -> Prepared:
    """Plan ``doc`` (raises RecipeError with every problem) and fix the run's folders.

    A URL ``out_dir``/``output.dir`` (``s3://bucket/runs``) keeps its run folders there: the run is
    built in a local mirror (:func:`curate.engine.run_folder.local_mirror`) and each finished run
    folder is uploaded (see :func:`curate.engine.run_folder.upload_run`). Work files go to
    ``output.work_dir/NAME`` when set (a folder all Dask workers share), else ``ROOT/.work/NAME``.
    """
    p = plan(doc)
    target = out_dir if out_dir is not None else p.recipe.output.dir
    remote = str(target).rstrip("/") if is_url(target) else None
    root = local_mirror(remote) if remote is not None else Path(target)
    work = Path(p.recipe.output.work_dir) if p.recipe.output.work_dir else root / ".work"
    return Prepared(doc, p, root, work / p.recipe.name, report, remote=remote)


_STREAMED = ("jsonl", "json", "text", "csv")
"""Formats read front to back as a byte stream: reading stops at the size recorded when hashed."""


def _local_stat(f: InputFile) -> os.stat_result | None:
    p = Path(f.path)
    return p.stat() if f.fs is None and p.is_file() else None


def hash_file(prep: Prepared, source_index: int, file_index: int) -> FileJob:
    """Content hash and identity of one input file (the key everything downstream is cached on).

    The size and modification time are taken first and the hash covers exactly that many bytes,
    so a file that grows meanwhile is hashed (and later read, see :func:`ingest`) as it was.
    """
    sp = prep.plan.sources[source_index]
    f = sp.files[file_index]
    st = _local_stat(f)
    if st is not None and f.format in _STREAMED:
        f = replace(f, limit=st.st_size)
    size = st.st_size if st is not None else f.size
    mtime = st.st_mtime_ns if st is not None else 0
    return FileJob(source_index, file_index, sp.spec.name, f.uri, sha256_of(f), f.format, f.compression, size, mtime)


def ingest(prep: Prepared, job: FileJob, on_batch: Any = None) -> ShardRef:
    """Ingest one input file into its shard (reused when its content key is already done).

    A local streamed file is read up to the size it had when hashed, so lineage (``sha256``) and
    the rows ingested describe the same bytes (``bytes`` in the returned tally: the first ``bytes``
    bytes of the file were read). If the file changed during the run it is hashed again over those
    bytes: unchanged (it only grew) gives a warning and ``changed_while_read`` (sizes when hashed
    and after reading) in the tally, which the run summary and the version's manifest carry; changed raises
    :class:`~curate.ingest.InputError` (exit 2), since its rows could not be traced to one content.
    """
    sp = prep.plan.sources[job.source_index]
    r = prep.plan.recipe
    f = sp.files[job.file_index]
    if job.mtime_ns and f.format in _STREAMED:
        f = replace(f, limit=job.size)
    ref = ingest_file(sp, f, job.sha256, r.record_kind, r.limits, prep.work, r.output.rows_per_file, on_batch)
    st = _local_stat(f) if job.mtime_ns else None
    # what was read of the file, for the run's accounting and the version's lineage (not the shard's
    # cache: a later run may read the same bytes from a file that did not change)
    lineage: dict[str, Any] = {"bytes": job.size}
    if st is not None and (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns):
        if st.st_size < job.size or sha256_of(f) != job.sha256:
            shutil.rmtree(ref.dir, ignore_errors=True)  # its rows are not of the content it is keyed by
            raise InputError(
                f"{f.uri} changed while this run read it (size {job.size:,} -> {st.st_size:,} bytes, content "
                f"of the first {job.size:,} bytes differs from sha256 {job.sha256[:12]}); rerun once it is stable"
            )
        log.warning(
            "%s grew from %s to %s bytes during the run; the first %s bytes (sha256 %s) were ingested",
            f.uri,
            f"{job.size:,}",
            f"{st.st_size:,}",
            f"{job.size:,}",
            job.sha256[:12],
        )
        lineage["changed_while_read"] = {"size_when_hashed": job.size, "size_after_read": st.st_size}
    return replace(ref, tally={**ref.tally, **lineage})


def sketch(prep: Prepared, ref: ShardRef, stage_index: int) -> str:
    """Signatures of one shard for near-dedup stage ``stage_index``."""
    stage, fields = prep.near_stage(stage_index)
    return sketch_shard(ref, stage, prep.plan.recipe.record_kind, fields, prep.work)


@dataclass(frozen=True)
class Decision:
    """The fate of every record of a run, decided once over all shards (state in ``dir``)."""

    key: str
    dir: str
    parts: list[str]
    pinned_parts: int
    sizes: list[int]
    names: list[str]
    outcomes: list[str]
    results: list[dict[str, Any]]
    leaks: int

    def new_parts(self) -> list[str]:
        return self.parts[self.pinned_parts :]

    def part_state(self, index: int) -> pl.DataFrame:
        """Fates of the records of part ``index`` (an index into :attr:`parts`), as :func:`read_fates` gives them."""
        return read_fates(Path(self.dir), sum(self.sizes[:index]), self.sizes[index])


def _reference_fingerprints(prep: Prepared) -> list[Any]:
    out: list[Any] = []
    for st in prep.plan.recipe.stages:
        if isinstance(st, DecontaminateStage):
            for ref in st.against:
                path = prep.plan.base_dir / ref.path
                out.append([ref.name, sha256_of(path) if path.exists() else ref.path])
    return out


def decision_key(prep: Prepared, refs: list[ShardRef], pinned: list[ShardRef] | None = None) -> str:
    """Content key of a decision: the shards, the stages, their reference files and the code."""
    recipe = prep.plan.recipe
    stages_json = [s.model_dump(mode="json") for s in recipe.stages]
    keys = [r.key for r in [*(pinned or []), *refs]]
    return digest(
        keys,
        len(pinned or []),
        stages_json,
        recipe.record_kind.value,
        _reference_fingerprints(prep),
        code_fingerprint(),
    )


def decide(
    prep: Prepared, refs: list[ShardRef], sketches: dict[int, list[str]], pinned: list[ShardRef] | None = None
) -> Decision:
    """Run every stage over the shards (``pinned``: published rows new rows are deduplicated against).

    Phase 2 of near-dedup happens here (band group-by, verification, connected components), from the
    per-shard signatures in ``sketches`` (stage index -> files, pinned shards first).
    """
    recipe = prep.plan.recipe
    pinned = pinned or []
    shards = [*pinned, *refs]
    parts = [p for r in shards for p in r.parts]
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    key = decision_key(prep, refs, pinned)
    folder = prep.work / "decisions" / key
    meta = folder / "decision.json"
    if meta.exists():
        return Decision(**orjson.loads(meta.read_bytes()))
    pinned_parts = sum(len(r.parts) for r in pinned)
    names: list[str] = []
    leaks: list[dict[str, Any]] = []
    if recipe.stages:
        from curate.engine.stage_runner import StageRunner, stage_label  # numba and scipy: only when stages run

        names = [stage_label(s) for s in recipe.stages]
        runner = StageRunner(
            [Path(p) for p in parts],
            recipe.record_kind,
            prep.plan.base_dir,
            recipe.limits.max_chars,
            sketches,
            pinned_parts,
        )
        runner.run(recipe.stages)
        fates = (runner.alive, runner.stage_of, runner.similarity, runner.removed_frame())
        results = [r.as_dict() for r in runner.results]
        outcomes = [r.outcome for r in runner.results]
        leaks = runner.leaks
    else:
        n = sum(sizes)
        fates = (np.ones(n, bool), np.full(n, -1, np.int32), np.full(n, np.nan), pl.DataFrame(schema=REMOVED_SCHEMA))
        results, outcomes = [], []
    tmp = folder.with_name(f".{key}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_fates(tmp, *fates)
    (tmp / "leaks.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in leaks))
    decision = Decision(key, str(folder), parts, pinned_parts, sizes, names, outcomes, results, len(leaks))
    (tmp / "decision.json").write_bytes(orjson.dumps(decision.__dict__))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return decision


def finish_key(decision: Decision, index: int) -> str:
    """Content key of new part ``index``'s finished output (the decision's key plus the index)."""
    return f"{decision.key}-{index}"


def finished_part(prep: Prepared, key: str) -> dict[str, Any] | None:
    """The finished output stored under ``key`` when it is complete on disk, else None."""
    decision_key_, _, index = key.rpartition("-")
    done = prep.work / "finished" / decision_key_ / f"part-{int(index):05d}.json"
    if not done.exists():
        return None
    payload = orjson.loads(done.read_bytes())
    files = [payload[k] for k in ("data", "dropped", "duplicates") if payload.get(k)]
    return payload if all(Path(f).exists() for f in files) else None


def finish(prep: Prepared, decision: Decision, index: int) -> dict[str, Any]:
    """Phase 3, per part: survivors and audit rows of new part ``index`` (0-based among new parts).

    A part none of whose records was removed (always so in a run without stages) is its own
    survivor file: it is handed on as it is, for :func:`assemble` to link, not read and rewritten.
    """
    at = decision.pinned_parts + index
    part = Path(decision.parts[at])
    if not decision.names:  # no stages: nothing to decide, nothing to cache
        return _whole_part(part, decision.sizes[at])
    key = finish_key(decision, index)
    cached = finished_part(prep, key)
    if cached is not None:
        return cached
    out = prep.work / "finished" / decision.key
    label = f"part-{index:05d}"
    state = decision.part_state(at)
    if bool(state["alive"].all()):
        payload = _whole_part(part, state.height)
    else:
        payload = finish_part(part, state, decision.names, decision.outcomes, out, label).__dict__
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{label}.json").write_bytes(orjson.dumps(payload))
    return payload


def feedback_key(prep: Prepared, decision: Decision, index: int, finished: dict[str, Any]) -> str:
    """Content key of new part ``index``'s AI feedback: its finished records (whose key carries the
    code's fingerprint through the decision's), the feedback section and the output kind."""
    recipe = prep.plan.recipe
    assert recipe.feedback is not None
    spec = recipe.feedback.model_dump(mode="json", exclude={"calibration"})
    return digest("feedback", finish_key(decision, index), spec, recipe.output.kind.value)


def feedback_cache(prep: Prepared) -> Path:
    """The request cache of AI feedback: ``feedback.cache`` (recipe-relative), else shared under ``OUT/.work``."""
    spec = prep.plan.recipe.feedback
    if spec is not None and spec.cache:
        return prep.plan.base_dir / spec.cache
    return prep.work.parent / "feedback-cache.sqlite"


def calibrate_judge(prep: Prepared) -> dict[str, Any]:
    """Measure the recipe's judge on ``feedback.calibration.data`` before any AI label is made.

    Returns the calibration report (:func:`curate.feedback.calibration.calibrate`); raises
    ``CalibrationGateError`` (exit 2, nothing generated or published) when agreement is below
    ``calibration.min_agreement``. Not cached as a step: its requests are (a rerun costs lookups).
    """
    from curate.feedback.cache import RequestCache
    from curate.feedback.calibration import calibrate_spec, check_min_agreement

    recipe = prep.plan.recipe
    assert recipe.feedback is not None
    store = recipe.publish.store if recipe.publish else None
    report = calibrate_spec(recipe.feedback, prep.plan.base_dir, store, RequestCache(feedback_cache(prep)))
    check_min_agreement(report, report["min_agreement"])
    return report


def labelled_part(prep: Prepared, key: str) -> dict[str, Any] | None:
    """The feedback output stored under ``key`` when it is complete on disk, else None."""
    from curate.feedback.part import finished_feedback

    return finished_feedback(prep.work / "feedback" / key)


def feedback(prep: Prepared, decision: Decision, index: int, finished: dict[str, Any]) -> dict[str, Any]:
    """AI feedback over new part ``index``'s surviving prompts: candidates, judgements, pairs.

    Model answers come from the request cache when a request was seen before (a rerun, a refresh
    or a killed run pays only for what it has not asked yet); see :mod:`curate.feedback.part`.
    """
    key = feedback_key(prep, decision, index, finished)
    done = labelled_part(prep, key)
    if done is not None:
        return done
    from curate.feedback.cache import RequestCache
    from curate.feedback.part import label_part

    recipe = prep.plan.recipe
    assert recipe.feedback is not None
    records = Path(finished["data"]) if finished["data"] else None
    cache = RequestCache(feedback_cache(prep))
    return label_part(
        records,
        recipe.feedback,
        recipe.record_kind,
        recipe.output.kind,
        prep.work / "feedback" / key,
        cache,
        prep.run_id,
    )


def _whole_part(part: Path, rows: int) -> dict[str, Any]:
    """What :func:`finish` returns for a part that keeps every record (the fields of ``PartOutput``)."""
    return {"kept": rows, "data": str(part) if rows else None, "dropped": None, "duplicates": None}


def _link(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system), else copy: the run folder must own its files."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _concat_parquet(paths: list[Path], dst: Path, schema: pa.Schema) -> None:
    """Append the rows of ``paths`` to one Parquet file, a row group at a time (memory stays flat)."""
    with pq.ParquetWriter(dst, schema, compression="zstd", use_dictionary=False) as writer:
        for path in paths:
            f = pq.ParquetFile(path)
            for g in range(f.num_row_groups):
                writer.write_table(f.read_row_group(g).cast(schema))


def _concat_files(paths: list[Path], dst: Path) -> None:
    with dst.open("ab") as out:
        for p in paths:
            if p.exists():
                with p.open("rb") as f:
                    shutil.copyfileobj(f, out)


LINEAGE = ("bytes", "multiline_rows", "changed_while_read")
"""Keys of a shard's tally that describe what was read of its file (see ``FileAccount``)."""


def ledger_of(refs: list[ShardRef]) -> Ledger:
    """A ledger holding each shard's ingest tally (stages then move rows out of ``kept``)."""
    led = Ledger()
    for r in refs:
        t = r.tally
        lineage = {k: t[k] for k in LINEAGE if t.get(k) is not None}
        led.add_file(r.source, r.uri, r.sha256, r.format, r.compression, lineage)
        led.record(
            r.source,
            r.uri,
            input_rows=t["input_rows"],
            kept=t["kept"],
            output_records=t["output_records"],
            quarantined=t["quarantined_by_reason"],
            records_rejected=t["records_rejected_by_reason"],
        )
    return led


def assemble(
    prep: Prepared,
    refs: list[ShardRef],
    decision: Decision,
    finished: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
    labelled: list[dict[str, Any]] | None = None,
    calibration: dict[str, Any] | None = None,
) -> RunResult:
    """Write the run folder from the finished parts: data, audit files, summary, report; commit it.

    ``labelled``: the AI feedback of each finished part (a recipe with ``feedback:``): its pairs are
    the run's data, and its judgements, quarantined prompts and routed prompts join the run folder;
    ``calibration``: the judge's calibration report (``calibration.json``/``.md``/``.png``).
    Raises QuarantineLimitError (after committing the folder) when too much input was quarantined.
    """

    recipe = prep.plan.recipe
    kind = recipe.record_kind  # the staged records' kind (the prompts of a feedback recipe)
    staged = bool(recipe.stages)
    writer = RunWriter(
        prep.root, recipe.name, arrow_schema(recipe.output.kind), recipe.output.rows_per_file, prep.run_id
    )
    try:
        if labelled is not None:
            data = [Path(f["data"]) for f in labelled if f["tally"]["records_out"]]
        else:
            data = [Path(f["data"]) for f in finished if f["data"]]
        for i, path in enumerate(data):
            dst = writer.staging / "data" / f"part-{i:05d}.parquet"
            _link(path, dst)  # a survivor file (or a whole shard part) is written once and linked
            writer.files.append(dst)
        writer.close_audit()
        _concat_files([r.quarantine for r in refs], writer.staging / "quarantine.jsonl")
        _concat_files([r.rejected for r in refs], writer.staging / "rejected_records.jsonl")
        multiline = any(r.tally.get("multiline_rows") for r in refs)
        if multiline:
            _concat_files([r.multiline for r in refs], writer.staging / "multiline_rows.jsonl")
        ledger = ledger_of(refs)
        new_parts = [Path(p) for p in decision.new_parts()]
        alive: np.ndarray | None = None
        if staged:
            audit_schema = pa.schema(list(arrow_schema(kind)) + list(AUDIT_COLUMNS))
            for outcome in ("dropped", "duplicates"):
                paths = [Path(f[outcome]) for f in finished if f[outcome]]
                _concat_parquet(paths, writer.staging / f"{outcome}.parquet", audit_schema)
            leaks = Path(decision.dir) / "leaks.jsonl"
            if leaks.stat().st_size:
                _link(leaks, writer.staging / "contamination.jsonl")
            first = decision.pinned_parts
            states = (decision.part_state(first + k) for k in range(len(new_parts)))
            settle(new_parts, states, decision.outcomes, ledger)
            lo = sum(decision.sizes[:first])
            fates = pl.scan_parquet(Path(decision.dir) / "state.parquet").select("alive").slice(lo)
            alive = fates.collect().to_series().to_numpy()
        # Without stages the shard tallies are already final: every record is kept, each file's
        # output records are its ingested records, and no input row changes outcome.
        summary = ledger.summary()
        summary["run_id"] = writer.run_id
        summary["code_version"] = code_version().model_dump()
        if not summary["balanced"]:  # an accounting bug must never pass as a successful run
            raise AssertionError(f"accounting does not balance: {summary}")
        frac = summary["quarantined"] / summary["input_rows"] if summary["input_rows"] else 0.0
        too_much = frac > recipe.limits.max_quarantined_fraction
        seconds = time.time() - prep.started
        summary.update(
            recipe=recipe.name,
            kind=recipe.output.kind.value,
            seconds=round(seconds, 3),
            rows_per_second=round(summary["input_rows"] / seconds, 1) if seconds > 0 else None,
            outputs={
                "dir": remote_run_dir(prep.remote, recipe.name, writer.run_id) or str(writer.final),
                "data": [f"data/{f.name}" for f in writer.files] or ["data/part-00000.parquet"],
                "quarantine": "quarantine.jsonl",
                "rejected_records": "rejected_records.jsonl",
                **({"report": "report.md"} if prep.report else {}),
                **({"dropped": "dropped.parquet", "duplicates": "duplicates.parquet"} if staged else {}),
                **({"multiline_rows": "multiline_rows.jsonl"} if multiline else {}),
            },
            **(extra or {}),
        )
        if decision.results:
            summary["stages"] = decision.results
        if labelled is not None:
            summary["feedback"] = _feedback_outputs(prep, writer.staging, finished, labelled)
            summary["outputs"].update(FEEDBACK_OUTPUTS)
            if calibration is not None:
                from curate.feedback.calibration import summary_of, write_calibration

                write_calibration(calibration, writer.staging)
                summary["feedback"]["calibration"] = summary_of(calibration)
                summary["outputs"]["calibration"] = "calibration.md"
        writer.write_json("summary.json", checked(RunSummary, summary))
        writer.write_text("recipe.yaml", prep.doc.text)
        if prep.report:
            before = record_lengths(new_parts, kind)
            after = before if alive is None else before[alive]
            write_report(writer.staging, summary, before, after, length_field(kind))
    except BaseException:
        writer.abort()
        raise
    final = writer.commit()
    if prep.remote is not None:
        upload_run(final, prep.remote, recipe.name, writer.run_id)
    result = RunResult(final, summary)
    if too_much:
        raise QuarantineLimitError(
            f"{summary['quarantined']} of {summary['input_rows']} input rows ({frac:.1%}) were quarantined, over "
            f"limits.max_quarantined_fraction={recipe.limits.max_quarantined_fraction}; "
            f"see {final / 'quarantine.jsonl'}" + ("; nothing was published" if recipe.publish else ""),
            result,
        )
    return result


FEEDBACK_OUTPUTS = {
    "judgements": "judgements.parquet",
    "feedback_quarantine": "feedback_quarantine.jsonl",
    "uncertain": "uncertain.parquet",
}
"""The run folder's AI feedback files (see :mod:`curate.feedback.part`)."""


def _feedback_outputs(
    prep: Prepared, staging: Path, finished: list[dict[str, Any]], labelled: list[dict[str, Any]]
) -> dict[str, Any]:
    """Write the feedback audit files into ``staging``; return the run's feedback account.

    The account proves that every surviving prompt ended in one outcome (``prompts_in`` equals the
    survivors of the stages, and the sum of the outcomes).
    """
    from curate.feedback.part import AUDIT_SCHEMA, ROUTED_SCHEMA, FeedbackTally

    spec = prep.plan.recipe.feedback
    assert spec is not None
    tally = FeedbackTally()
    reused = 0
    for f in labelled:
        part = dict(f["tally"])
        if f.get("run_id") != prep.run_id:  # an earlier run's output, reused whole: this run paid nothing
            reused += 1
            part.update(model_calls=0, cache_hits=0, cache_misses=0)
        tally.add(part)
    survivors = sum(int(f["kept"]) for f in finished)
    if tally.prompts_in != survivors or not tally.balanced:
        raise AssertionError(f"feedback accounting does not balance: {survivors} prompts in, {tally.as_dict()}")
    _concat_parquet([Path(f["judgements"]) for f in labelled], staging / "judgements.parquet", _arrow(AUDIT_SCHEMA))
    _concat_files([Path(f["quarantine"]) for f in labelled], staging / "feedback_quarantine.jsonl")
    routed = [Path(f["uncertain"]) for f in labelled if f.get("uncertain")]
    _concat_parquet(routed, staging / "uncertain.parquet", _arrow(ROUTED_SCHEMA))
    looked = tally.cache_hits + tally.cache_misses
    return {
        **tally.as_dict(),
        "cache_hit_rate": round(tally.cache_hits / looked, 4) if looked else None,
        "parts": len(labelled),
        "parts_reused": reused,
        "judge": {
            "kind": spec.judge.kind,
            "model": next((f["judge_model"] for f in labelled if f.get("judge_model")), None),
            "spec": spec.judge.model_dump(mode="json", exclude_none=True, exclude=_UNUSED[spec.judge.kind]),
        },
        "generators": [g.model_dump(mode="json", exclude_none=True) for g in spec.generators],
        "pairs": spec.pairs.model_dump(mode="json"),
        "route": spec.route.model_dump(mode="json"),
    }


_UNUSED: dict[str, set[str]] = {
    "pairwise": {"aspects", "principles"},
    "rating": {"principles", "swap"},
    "reward_model": {"aspects", "principles", "swap", "logprobs", "template", "max_new_tokens"},
    "critique_revise": {"aspects", "swap", "logprobs"},
}
"""Judge settings that do not apply to a kind (left out of the summary and manifest)."""


def _arrow(schema: dict[str, Any]) -> pa.Schema:
    return pl.DataFrame(schema=schema).to_arrow().schema


def refuse_empty_version(prep: Prepared, result: RunResult, base_parts: list[str] | None = None) -> None:
    """Raise :class:`EmptyVersionError` when the version :func:`publish` would write has no row.

    A version's rows are the base rows a refresh carries (``base_parts``) plus the run's data files.
    An empty ``latest`` would replace real data for every reader, so it takes ``publish.allow_empty``.
    """
    spec = prep.plan.recipe.publish
    if spec is None or spec.allow_empty or result.run_dir is None:
        return
    files = [*(Path(p) for p in base_parts or []), *(result.run_dir / "data").glob("*.parquet")]
    if any(pq.ParquetFile(f).metadata.num_rows for f in files):
        return
    s = result.summary
    raise EmptyVersionError(
        f"the run kept no rows ({s.get('input_rows', 0)} input rows: {s.get('quarantined', 0)} quarantined, "
        f"{s.get('duplicates', 0)} duplicates, {s.get('dropped', 0)} dropped), so nothing was published to "
        f"{spec.store}; see {result.run_dir}. Check the sources' paths and the stages, or set "
        "publish.allow_empty: true to publish an empty version",
        result,
    )


def publish(
    prep: Prepared,
    result: RunResult,
    base_parts: list[str] | None = None,
    carried_inputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Publish a committed run folder as the next dataset version (when the recipe says so).

    ``base_parts``/``carried_inputs``: rows and input files of the version a refresh builds on.
    The summary in the run folder is rewritten with what was published.
    """
    if prep.plan.recipe.publish is None:
        return None
    from curate.store.publish import publish_run

    final, summary = result.run_dir, result.summary
    files = [*(Path(p) for p in base_parts or []), *sorted((final / "data").glob("*.parquet"))]
    published = publish_run(files, prep.doc, summary, carried_inputs or [], final)
    summary["published"] = published
    tmp = final / "summary.json.tmp"
    tmp.write_bytes(orjson.dumps(checked(RunSummary, summary), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    tmp.replace(final / "summary.json")
    if prep.remote is not None:
        upload_run(final, prep.remote, prep.name, final.name, only=("summary.json",))
    return published


def cleanup(
    prep: Prepared,
    shards: list[ShardRef],
    decision: Decision,
    sketches: dict[int, list[str]],
    labelled: list[dict[str, Any]] | None = None,
) -> int:
    """Remove work files this run did not use (see :func:`curate.engine.shards.garbage_collect`).

    Prefect's cache records (``prefect-results``, named by the same content keys) go with them: a
    record whose key this run did not use is as stale as the files it pointed at.
    """
    keep = {decision.dir, str(prep.work / "finished" / decision.key), *(f for fs in sketches.values() for f in fs)}
    keep |= {str(Path(f["data"]).parent) for f in labelled or []}
    removed = garbage_collect(prep.work, {r.key for r in shards}, keep)
    used = {r.key for r in shards} | {decision.key} | {Path(f).stem for fs in sketches.values() for f in fs}
    used |= {finish_key(decision, i) for i in range(len(decision.parts))}
    used |= {Path(f["data"]).parent.name for f in labelled or []}
    records = prep.work / "prefect-results"
    if records.is_dir():
        cutoff = time.time() - GC_MIN_AGE
        for record in records.iterdir():
            if record.name not in used and record.stat().st_mtime < cutoff:
                record.unlink(missing_ok=True)
                removed += 1
    return removed
