"""``curate run --local``: the run's steps in order, in this process, with a progress bar.

:func:`run_recipe` is the plain sequential driver of :mod:`curate.pipeline` (no orchestrator): it
hashes and ingests every input file into its shard, sketches shards for near-dedup, decides every
stage once, writes each part's survivors and audit rows, then commits the run folder atomically
with its ``summary.json`` and publishes it. The Prefect flow (``flows.curation``) runs the same
steps as tasks; both produce the same dataset.

Example:
    >>> # run_recipe(load_recipe_file("recipes/quickstart.yaml")).summary["balanced"]  -> True
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from curate import __version__
from curate.pipeline import (
    QuarantineLimitError,
    RunResult,
    assemble,
    cleanup,
    decide,
    finish,
    hash_file,
    ingest,
    prepare,
    publish,
    sketch,
)
from curate.progress import byte_progress
from curate.refresh import base_shard, carried_inputs, plan_refresh, record_refresh
from curate.shards import ShardRef
from schemas.recipe_loader import LoadedRecipe

__all__ = ["QuarantineLimitError", "RunResult", "code_version", "run_recipe"]


def code_version() -> dict[str, str | None]:
    """Package version and, when run from a git checkout, the commit."""
    commit = None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
        commit = out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"package": __version__, "git_commit": commit, "python": platform.python_version()}


def run_recipe(
    doc: LoadedRecipe,
    out_dir: Path | None = None,
    show_progress: bool | None = None,
    report: bool = True,
    refresh: bool = False,
) -> RunResult:
    """Run a loaded recipe in-process; returns the committed run folder and its summary.

    ``report=False`` skips the markdown report and its plots (for callers that run many small recipes).
    ``refresh=True`` processes only inputs the latest published version has not seen and deduplicates
    them against it (:mod:`curate.refresh`); with nothing new it returns ``run_dir=None`` and a summary
    with ``noop: true``.

    Raises:
        RecipeError: the recipe or its inputs are invalid (nothing is written).
        QuarantineLimitError: too much input was quarantined (the run is still written for audit).
    """
    prep = prepare(doc, out_dir, report)
    jobs = [hash_file(prep, s, f) for s, f in prep.file_indexes()]
    extra: dict = {"orchestrator": {"name": "local"}}
    pinned: list[ShardRef] = []
    carried: list[dict] = []
    if refresh:
        rp = plan_refresh(prep, jobs)
        extra["refresh"] = rp.info()
        if rp.noop:
            record_refresh(prep, {"noop": True, **rp.info()})
            return RunResult(None, {"noop": True, "recipe": prep.name, "refresh": rp.info()})
        jobs = rp.jobs
        if rp.base is not None and rp.selection is not None:
            pinned = [base_shard(prep, rp.base, rp.selection.changed_uris)]
            carried = carried_inputs(rp.base, rp.selection.changed_uris)
    refs = []
    with byte_progress(sum(j.size for j in jobs), f"curate {prep.name}", show_progress) as bar:
        task = bar.tasks[0].id
        rows = 0

        def advance(nbytes: int, nrows: int) -> None:
            nonlocal rows
            rows += nrows
            bar.update(task, advance=nbytes, rows=rows)

        for job in jobs:
            refs.append(ingest(prep, job, advance))
    shards = [*pinned, *refs]
    sketches = {i: [sketch(prep, r, i) for r in shards] for i, _, _ in prep.near_stages()}
    decision = decide(prep, refs, sketches, pinned)
    finished = [finish(prep, decision, i) for i in range(len(decision.new_parts()))]
    result = assemble(prep, refs, decision, finished, extra)
    published = publish(prep, result, [p for r in pinned for p in r.parts], carried)
    if refresh:
        record_refresh(prep, {"noop": False, "run_id": result.summary["run_id"], "published": published})
    cleanup(prep, shards, decision, sketches)
    return result
