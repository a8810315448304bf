"""``curate run``: ingest, convert and validate every source, write the dataset and the account.

:func:`run_recipe` is a plain function (no orchestrator): plan the recipe, stream each input file
in batches through :func:`curate.process.process_batch`, write records and quarantine as they
come, then publish the run folder atomically with its ``summary.json``.

Example:
    >>> # run_recipe(load_recipe_file("recipes/quickstart.yaml")).summary["balanced"]  -> True
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from curate import __version__
from curate.accounting import Ledger
from curate.fields import key_expr
from curate.ingest import read_batches, sha256_of
from curate.outputs import RunWriter
from curate.plan import Plan, plan
from curate.process import SourceInfo, process_batch
from curate.progress import byte_progress
from curate.report import length_field, write_report
from schemas.kinds import arrow_schema
from schemas.recipe_loader import LoadedRecipe


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


class QuarantineLimitError(RuntimeError):
    """More of the input was quarantined than ``limits.max_quarantined_fraction`` allows.

    The run was still published (for audit); ``result`` holds it.
    """

    def __init__(self, message: str, result: RunResult):
        super().__init__(message)
        self.result = result


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


def execute(
    p: Plan,
    writer: RunWriter,
    ledger: Ledger,
    show_progress: bool | None = None,
    lengths: list[np.ndarray] | None = None,
) -> None:
    """Stream every file of every source through conversion into ``writer``, tallying in ``ledger``.

    With ``lengths``, the report's length field of every written record is collected on the way
    (cheaper than reading the output back).
    """
    recipe = p.recipe
    kind, lim = recipe.output.kind, recipe.limits
    total = sum(f.size for sp in p.sources for f in sp.files)
    rows = 0
    length_expr = key_expr(kind, [length_field(kind)]).str.len_chars()
    with byte_progress(total, f"curate {recipe.name}", show_progress) as bar:
        task = bar.tasks[0].id
        for sp in p.sources:
            for f in sp.files:
                info = SourceInfo(sp.spec.name, f.uri, sha256_of(f))
                ledger.add_file(info.name, info.uri, info.sha256, f.format, f.compression)
                batches = read_batches(
                    f,
                    batch_rows=lim.batch_rows,
                    max_line_bytes=lim.max_line_bytes,
                    text_unit=sp.spec.text_unit,
                    csv_delimiter=sp.spec.csv.delimiter,
                    csv_quote=sp.spec.csv.quote,
                    csv_header=sp.spec.csv.header,
                )
                for batch in batches:
                    out = process_batch(batch, sp.chain, sp.options, sp.spec.columns, kind, info, lim.max_chars)
                    writer.write_records(out.records)
                    if lengths is not None:
                        lengths.append(out.records.select(length_expr).to_series().to_numpy())
                    writer.write_quarantine(out.quarantine)
                    writer.write_rejected(out.rejected)
                    ledger.record(
                        info.name,
                        info.uri,
                        input_rows=out.input_rows,
                        kept=out.kept_rows,
                        output_records=out.records.height,
                        quarantined=out.quarantined_by_reason,
                        records_rejected=out.rejected_by_reason,
                    )
                    rows += out.input_rows
                    bar.update(task, advance=batch.bytes_read, rows=rows)


def run_recipe(
    doc: LoadedRecipe, out_dir: Path | None = None, show_progress: bool | None = None, report: bool = True
) -> RunResult:
    """Run a loaded recipe; returns the published run folder and its summary.

    ``report=False`` skips the markdown report and its plots (for callers that run many small recipes).

    Raises:
        RecipeError: the recipe or its inputs are invalid (nothing is written).
        QuarantineLimitError: too much input was quarantined (the run is still published for audit).
    """
    p = plan(doc)
    recipe = p.recipe
    kind = recipe.output.kind
    root = out_dir if out_dir is not None else Path(recipe.output.dir)
    staged = bool(recipe.stages)
    writer = RunWriter(
        root,
        recipe.name,
        arrow_schema(kind),
        recipe.output.rows_per_file,
        records_subdir="ingested" if staged else "data",
    )
    ledger = Ledger()
    started = time.time()
    stage_results: list[dict[str, Any]] = []
    collected: list[np.ndarray] = []
    try:
        execute(p, writer, ledger, show_progress, collected if report and not staged else None)
        if staged:
            from curate.stages import StageRunner  # numba/scipy load only when stages run

            runner = StageRunner(writer.switch_records("data"), kind, p.base_dir, recipe.limits.max_chars)
            runner.run(recipe.stages)
            if report:
                lengths_before = runner.lengths()
                lengths_after = lengths_before[runner.alive]
            runner.finish(writer, ledger)
            stage_results = [r.as_dict() for r in runner.results]
            if runner.leaks:
                writer.write_jsonl("contamination.jsonl", runner.leaks)
            shutil.rmtree(writer.staging / "ingested")
        elif report:
            lengths_before = lengths_after = np.concatenate(collected) if collected else np.empty(0, np.int64)
        summary = ledger.summary()
        summary["run_id"] = writer.run_id
        summary["code_version"] = code_version()
        if not summary["balanced"]:  # an accounting bug must never pass as a successful run
            raise AssertionError(f"accounting does not balance: {summary}")
        frac = summary["quarantined"] / summary["input_rows"] if summary["input_rows"] else 0.0
        too_much = frac > recipe.limits.max_quarantined_fraction
    except BaseException:
        writer.abort()
        raise
    seconds = time.time() - started
    summary.update(
        recipe=recipe.name,
        kind=recipe.output.kind.value,
        seconds=round(seconds, 3),
        rows_per_second=round(summary["input_rows"] / seconds, 1) if seconds > 0 else None,
        outputs={
            "dir": str(writer.final),
            "data": [f"data/{f.name}" for f in writer.files] or ["data/part-00000.parquet"],
            "quarantine": "quarantine.jsonl",
            "rejected_records": "rejected_records.jsonl",
            **({"report": "report.md"} if report else {}),
            **({"dropped": "dropped.parquet", "duplicates": "duplicates.parquet"} if staged else {}),
        },
    )
    if stage_results:
        summary["stages"] = stage_results
    writer.write_json("summary.json", summary)
    writer.write_text("recipe.yaml", doc.text)
    if report:
        write_report(writer.staging, summary, lengths_before, lengths_after, length_field(kind))
    final = writer.commit()
    if recipe.publish is not None and not too_much:
        # Publish only from a complete run folder, so every version's run_id names a run that exists.
        from curate.publish import publish_run

        summary["published"] = publish_run(sorted((final / "data").glob("*.parquet")), doc, summary)
        tmp = final / "summary.json.tmp"
        tmp.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        tmp.replace(final / "summary.json")
    result = RunResult(final, summary)
    if too_much:
        raise QuarantineLimitError(
            f"{summary['quarantined']} of {summary['input_rows']} input rows ({frac:.1%}) were quarantined, over "
            f"limits.max_quarantined_fraction={recipe.limits.max_quarantined_fraction}; "
            f"see {final / 'quarantine.jsonl'}" + ("; nothing was published" if recipe.publish else ""),
            result,
        )
    return result
