"""Run an evaluation: resolve the model, load and decontaminate the eval sets, compute the metrics,
and keep the result beside the model (report JSON, manifest, model card, plots).

Input: a model reference (``NAME@N`` / ``NAME@champion`` through the registry, a ``curate train``
run, ``NAME``, a model folder, a ``.gguf``, ``package:...``) and an :class:`EvalSpec`. Output: an
:class:`EvalReport`; for a trained run it is also saved in ``RUN_DIR/evaluations/``, appended to
the run's ``manifest.json`` ``evaluations``, summarized in its model card, and plotted
(``RUN_DIR/evaluations/*.png``: metrics with intervals, the training loss curve).

Every metric is checked against the record kinds of the eval sets before any model loads, so a
recipe asking for ``logprob_win_rate`` on an SFT set fails at once with the field and the fix.

Example:
    >>> # report = evaluate("quickstart-sft", EvalSpec(metrics=["heldout_loss"]))
    >>> # report.value("perplexity").interval()          # '14.2 [13.1, 15.6] (n=9)'
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate.models.trained import TrainedSource, load_trained, locate_trained
from schemas.evaluation import EvalReport, EvalSet, EvalSpec, MetricValue
from train.eval.base import EvalContext, EvalError
from train.eval.metrics import get_metric

DEFAULT_STORE = "data/store"


def resolve_model(ref: str, runs_root: str | Path = "runs/train") -> TrainedSource:
    """Where the model ``ref`` is (registry forms first, when the registry is installed)."""
    if "@" in ref and not Path(ref).exists():
        try:
            from train.registry import resolve
        except ImportError:  # the registry is optional for evaluation
            resolve = None
        if resolve is not None:
            try:
                return locate_trained(resolve(ref, runs_root), runs_root)
            except KeyError as e:
                raise EvalError(f"model: {e.args[0] if e.args else e}") from None
    return locate_trained(ref, runs_root)


@dataclass
class EvalData:
    """One eval set: its rows (TRL columns plus ``id``), kind and what was excluded."""

    info: EvalSet
    rows: pl.DataFrame


def load_eval_set(ref: str, split: str, store: str | Path) -> tuple[pl.DataFrame, str, dict[str, Any]]:
    """The ``split`` rows of version ``ref`` in TRL's columns plus ``id``, their kind and the manifest."""
    from curate.store.load import TRL_SOURCE_COLUMNS, trl_columns
    from curate.store.store import Store
    from schemas.kinds import Kind

    st = Store(store)
    try:
        name, version = st.resolve(ref)
    except (ValueError, FileNotFoundError) as e:
        raise EvalError(f"eval.on: {e}; list datasets with `curate datasets list --store {store}`") from None
    manifest = st.manifest(f"{name}@{version}")
    kind = Kind(manifest["kind"])
    df = st.read(f"{name}@{version}", split=split, columns=["id", *TRL_SOURCE_COLUMNS[kind]])
    out = trl_columns(df, kind).with_columns(df["id"])
    return out, kind.value, {**manifest, "resolved": f"{name}@{version}"}


def _sample(df: pl.DataFrame, limit: int | None, seed: int) -> pl.DataFrame:
    return df.sample(limit, seed=seed) if limit is not None and len(df) > limit else df


@dataclass
class Evaluation:
    """The pieces of one evaluation run, so several models can share eval sets and loaded models."""

    spec: EvalSpec
    runs_root: str | Path = "runs/train"
    device: str = "auto"
    loaded: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # models scored side by side: the eval rows are checked against every one's training data, so all
    # of them are scored on the same rows (a base model alone would keep rows its fine-tune trained on)
    companions: list[str] = field(default_factory=list)
    log: Callable[[str], None] = field(default=lambda m: print(f"[eval] {m}", file=sys.stderr, flush=True))

    def load(self, ref: str) -> tuple[Any, Any]:
        """The model and tokenizer of ``ref``, loaded once per evaluation."""
        if ref not in self.loaded:
            src = resolve_model(ref, self.runs_root)
            task = "seq_cls" if src.method == "reward" else "causal"
            self.loaded[ref] = load_trained(src, task=task, device=self.device)
        return self.loaded[ref]

    def training_data(self, src: TrainedSource) -> list[dict[str, Any]]:
        """The training data (manifest ``dataset``) of ``src`` and of every companion, each version once."""
        found: list[dict[str, Any]] = []
        for s in [src, *(resolve_model(c, self.runs_root) for c in self.companions)]:
            ds = (s.manifest or {}).get("dataset") or {}
            key = (ds.get("ref"), ds.get("split"))
            if ds.get("ref") and key not in {(d["ref"], d.get("split")) for d in found}:
                found.append(ds)
        return found

    def sets(self, src: TrainedSource) -> list[EvalData]:
        """The eval sets (the spec's, else the version the model trained on), decontaminated."""
        manifest = src.manifest or {}
        trained = manifest.get("dataset") or {}
        if not trained.get("ref"):  # a plain model: the first companion's trained version is the default set
            trained = next(iter(self.training_data(src)), {})
        on = self.spec.on or ([trained["ref"]] if trained.get("ref") else [])
        needs_rows = any(get_metric(m.name).kinds for m in self.spec.metrics)
        if not on and needs_rows:
            raise EvalError(
                "eval.on: the model is not a `curate train` run, so there is no trained dataset to default to; "
                "name the eval set (--on NAME@VERSION)"
            )
        store = self.spec.store or trained.get("store") or DEFAULT_STORE
        out = []
        for ref in on:
            rows, kind, dm = load_eval_set(ref, self.spec.split, store)
            info = EvalSet(
                ref=dm["resolved"],
                split=self.spec.split,
                kind=kind,
                rows=len(rows),
                scored=len(rows),
                content_hash=dm.get("content_hash"),
            )
            training = self.training_data(src) if self.spec.decontaminate and len(rows) else []
            if training:
                from train.eval.decontaminate import leaks

                hit = np.zeros(len(rows), dtype=bool)
                examples: list[dict[str, Any]] = []
                for ds in training:
                    h, ex = leaks(
                        rows,
                        kind,
                        ds["ref"],
                        ds.get("store") or store,
                        ds.get("split"),
                        self.spec.contamination_threshold,
                    )
                    examples += [e for e, i in zip(ex, np.flatnonzero(h), strict=False) if not hit[i]]
                    hit |= h
                rows = rows.filter(~pl.Series(hit))
                against = "; ".join(f"{ds['ref']} ({ds.get('split') or 'all'})" for ds in training)
                info = info.model_copy(
                    update={
                        "leaked": int(hit.sum()),
                        "leaked_examples": examples[:5],
                        "scored": len(rows),
                        "checked_against": against,
                    }
                )
                if hit.any():
                    self.log(
                        f"{info.ref}: {int(hit.sum())} of {info.rows} rows leak from training data {against}: excluded"
                    )
            out.append(EvalData(info, rows))
        return out

    def check(self, kinds: list[str]) -> None:
        """Every metric can score at least one of the eval sets (raises before anything loads)."""
        for m in self.spec.metrics:
            metric = get_metric(m.name)
            if metric.kinds and not any(k in metric.kinds for k in kinds):
                metric.check(kinds[0] if kinds else None)

    def run(self, model_ref: str) -> EvalReport:
        """Evaluate ``model_ref`` on the spec's sets with the spec's metrics."""
        t0 = time.perf_counter()
        src = resolve_model(model_ref, self.runs_root)
        sets = self.sets(src)
        self.check([s.info.kind for s in sets])
        model, tok = self.load(model_ref)
        values: list[MetricValue] = []
        for m in self.spec.metrics:
            metric = get_metric(m.name)
            targets = [s for s in sets if s.info.kind in metric.kinds] if metric.kinds else [None]
            for s in targets:
                rows = None if s is None else _sample(s.rows, m.limit, self.spec.seed)
                if rows is not None and len(rows) == 0:
                    self.log(f"{m.name}: no rows left in {s.info.ref} to score")
                    continue
                ctx = EvalContext(
                    model=model,
                    tokenizer=tok,
                    rows=rows,
                    kind="" if s is None else s.info.kind,
                    spec=m,
                    batch_size=self.spec.batch_size,
                    bootstrap=self.spec.bootstrap,
                    seed=self.spec.seed,
                    model_ref=model_ref,
                    load_other=lambda r: self.load(r) if r else self.load(model_ref),
                    extras={"runs_root": str(self.runs_root)},
                )
                t = time.perf_counter()
                for v in metric.compute(ctx):
                    if s is not None:
                        v.details["set"] = s.info.ref
                    values.append(v)
                    self.log(f"{model_ref}: {v.metric} {v.interval()} ({time.perf_counter() - t:.1f} s)")
        return EvalReport(
            model=model_ref,
            model_dir=str(src.run_dir) if src.run_dir else None,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            sets=[s.info for s in sets],
            metrics=values,
            spec=self.spec.model_dump(mode="json"),
            seconds=round(time.perf_counter() - t0, 3),
        )


def evaluate(
    model_ref: str,
    spec: EvalSpec,
    runs_root: str | Path = "runs/train",
    save: bool = True,
    device: str = "auto",
) -> EvalReport:
    """Evaluate one model (see the module docstring); saves beside it when it is a trained run."""
    report = Evaluation(spec, runs_root, device).run(model_ref)
    if save and report.model_dir:
        report = record(Path(report.model_dir), report)
    return report


def evaluate_side_by_side(
    models: list[str], spec: EvalSpec, runs_root: str | Path = "runs/train", save: bool = True
) -> list[EvalReport]:
    """Evaluate ``models`` on the same eval rows (each set is decontaminated against every model's
    training data), one model in memory at a time; reports of trained runs are saved beside them."""
    ev = Evaluation(spec, runs_root, companions=list(models) if len(models) > 1 else [])
    reports = []
    for model in models:
        report = ev.run(model)
        if save and report.model_dir:
            report = record(Path(report.model_dir), report)
        reports.append(report)
        ev.loaded.pop(model, None)
    return reports


def record(run_dir: Path, report: EvalReport) -> EvalReport:
    """Save ``report`` beside the run, plot it, and add it to the run's manifest and model card."""
    from train.eval.plots import plot_loss_curve, plot_metrics
    from train.eval.results import save_report
    from train.lineage import MANIFEST, read_manifest, write_manifest

    path = save_report(run_dir, report)
    manifest = read_manifest(run_dir / MANIFEST)
    plots = [plot_metrics([(report.model, report)], path.with_suffix(".png"))]
    curve = plot_loss_curve(manifest.get("logs") or [], run_dir / "evaluations" / "loss_curve.png")
    if curve is not None:
        plots.append(curve)
    report = report.model_copy(update={"plots": [str(p) for p in plots if p is not None]})
    save_report_over(path, report)
    manifest["evaluations"] = [*manifest.get("evaluations", []), json.loads(report.model_dump_json())]
    write_manifest(run_dir, manifest)
    return report


def save_report_over(path: Path, report: EvalReport) -> None:
    """Rewrite the saved report at ``path`` (with its plots listed) atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)


def table(reports: list[EvalReport]) -> list[dict[str, Any]]:
    """Rows ``{model, metric, set, value, ci_low, ci_high, n}`` of ``reports`` for printing side by side."""
    return [
        {
            "model": r.model,
            "metric": v.metric,
            "set": v.details.get("set", ""),
            "value": v.value,
            "ci_low": v.ci_low,
            "ci_high": v.ci_high,
            "n": v.n,
            "better": "higher" if v.higher_is_better else "lower",
        }
        for r in reports
        for v in r.metrics
        if np.isfinite(v.value)
    ]
