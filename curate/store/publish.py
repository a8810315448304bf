"""Publish a run's dataset as the next version in the store, with splits, a leak check and a manifest.

Example:
    >>> # report = publish_run(data_files, doc, summary, base_dir)   # called by curate run
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from curate.dedup.contamination import find_leaks
from curate.engine.report import link_audit_files
from curate.store import Store
from curate.store.card import repair_cards, write_card
from curate.store.splits import assign_splits, split_key_fields
from schemas.fields import key_expr
from schemas.kinds import Kind
from schemas.recipe import PublishSpec
from schemas.recipe_loader import LoadedRecipe
from schemas.stages import DecontaminateStage, ReferenceSpec

LEAK_EXAMPLES = 5


def store_root(spec: PublishSpec) -> Path:
    return Path(spec.store)


def split_leaks(df: pl.DataFrame, kind: Kind, spec: PublishSpec) -> dict[str, Any]:
    """Near-duplicates across splits: eval/test rows whose split key nearly matches a train row."""
    keys = df.select(key_expr(kind, split_key_fields(kind, spec.splits)), "split", "id")
    train = keys.filter(pl.col("split") == "train")
    report: dict[str, Any] = {"threshold": spec.splits.leak_threshold}
    stage = DecontaminateStage(
        type="decontaminate",
        threshold=spec.splits.leak_threshold,
        against=[ReferenceSpec(name="train", path="-", column="-")],
    )
    for side in ("eval", "test"):
        held = keys.filter(pl.col("split") == side)
        if held.height == 0 or train.height == 0:
            report[side] = {"rows": held.height, "near_duplicates_of_train": 0, "examples": []}
            continue
        leaks = find_leaks(held["__key"], train["__key"], stage)
        hit = leaks.leaked
        examples = [
            {
                "id": held["id"][i],
                "train_id": train["id"][int(leaks.ref_index[i])],
                "similarity": round(float(leaks.similarity[i]), 3),
            }
            for i in hit.nonzero()[0][:LEAK_EXAMPLES].tolist()
        ]
        report[side] = {"rows": held.height, "near_duplicates_of_train": int(hit.sum()), "examples": examples}
    return report


def build_manifest(
    doc: LoadedRecipe, summary: dict[str, Any], leaks: dict[str, Any], carried_inputs: list[dict[str, Any]] = ()
) -> dict[str, Any]:
    """What a version records about how it was made (no secrets: the recipe keeps ``${ENV}`` references).

    ``carried_inputs``: input files of the parent version whose rows this version keeps unchanged (an
    incremental refresh), listed with this run's inputs so the next refresh knows them.
    """
    recipe = doc.recipe
    inputs = [
        {"source": name, "uri": f["uri"], "sha256": f["sha256"], "format": f["format"], "rows": f["input_rows"]}
        for name, src in summary["sources"].items()
        for f in src["files"]
    ]
    seen = {i["uri"] for i in inputs}
    inputs += [{**i, "carried": True} for i in carried_inputs if i["uri"] not in seen]
    accounting = {k: summary[k] for k in ("input_rows", "kept", "quarantined", "duplicates", "dropped", "balanced")}
    accounting |= {k: summary[k] for k in ("quarantined_by_reason", "duplicates_by_reason", "dropped_by_reason")}
    return {
        "kind": recipe.output.kind.value,
        "recipe": {"name": recipe.name, "sha256": hashlib.sha256(doc.text.encode()).hexdigest(), "text": doc.text},
        "inputs": inputs,
        "stages": [s.model_dump(mode="json") for s in recipe.stages],
        "splits": recipe.publish.splits.model_dump(mode="json") if recipe.publish else None,
        "split_leaks": leaks,
        "accounting": accounting,
        "stage_results": [
            {k: st[k] for k in ("name", "type", "outcome", "records_in", "records_out", "by_reason")}
            for st in summary.get("stages", [])
        ],
        "run_id": summary.get("run_id"),
        "orchestrator_run_id": summary.get("orchestrator", {}).get("flow_run_id")
        or os.environ.get("PREFECT__FLOW_RUN_ID"),
        "refresh": summary.get("refresh"),
        "code_version": summary.get("code_version"),
        "annotation": None,
    }


def _copy_report(run_dir: Path, folder: Path) -> None:
    """The run report beside the version's card; its links to audit files point back to the run folder."""
    report = run_dir / "report.md"
    if not report.exists():
        return
    for png in ("funnel.png", "lengths.png"):
        if (run_dir / png).exists():
            shutil.copyfile(run_dir / png, folder / f"run-{png}")
    text = report.read_text(encoding="utf-8").replace("](funnel.png)", "](run-funnel.png)")
    text = text.replace("](lengths.png)", "](run-lengths.png)")
    text = link_audit_files(text, run_dir)
    tmp = folder / ".run-report.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(folder / "run-report.md")


def publish_run(
    data_files: list[Path],
    doc: LoadedRecipe,
    summary: dict[str, Any],
    carried_inputs: list[dict[str, Any]] = (),
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """Assign splits to the run's records and publish them; returns what was published.

    With ``run_dir``, its report (``report.md`` and plots) is copied next to the version's card.
    """
    spec = doc.recipe.publish
    assert spec is not None
    kind = doc.recipe.output.kind
    df = pl.read_parquet(data_files) if data_files else pl.DataFrame()
    df = df.with_columns(assign_splits(df, kind, spec.splits))
    leaks = split_leaks(df, kind, spec)
    store = Store(store_root(spec))
    name = spec.dataset or doc.recipe.name
    repair_cards(store, name)  # a crash after an earlier commit may have left its card unwritten
    manifest = build_manifest(doc, summary, leaks, list(carried_inputs))
    result = store.publish(name, df, manifest, skip_unchanged=spec.skip_unchanged)
    card = write_card(store, name, result.version, df, result.manifest) if result.created else None
    if card is not None and run_dir is not None:
        _copy_report(run_dir, card.parent)
    return {
        "store": str(store.root),
        "dataset": name,
        "version": result.version,
        "ref": f"{name}@{result.version}",
        "created": result.created,
        "content_hash": result.manifest["content_hash"],
        "rows_per_split": result.manifest["rows_per_split"],
        "split_leaks": {k: v["near_duplicates_of_train"] for k, v in leaks.items() if isinstance(v, dict)},
        **({"card": str(card)} if card is not None else {}),
    }
