"""The steps of one lifecycle run: curate, label, train (each recipe), evaluate, gate, report.

Each step is a plain function of the :class:`Lifecycle` (no orchestrator here): the same functions
run in-process (``curate lifecycle run --local``) and as Prefect tasks (:mod:`flows.lifecycle.flow`),
through :func:`flows.lifecycle.sequence.run_lifecycle`. A step that finished in an earlier attempt
of the same run returns its recorded output without work (:func:`step`); each finished step is
saved to the run's ``state.json`` before the next starts, so a rerun resumes at the first
unfinished step. Nothing here moves the champion except :func:`gate` through the registry's
:func:`train.registry.promote`, which moves it atomically or not at all.

Example:
    >>> # outputs = run_lifecycle(Lifecycle(chain, folder, state, sub=lambda prep: LocalExecutor()), LocalExecutor())
"""

from __future__ import annotations

import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.engine.sequence import ArtifactSink, Executor
from curate.engine.steps import Prepared
from flows.lifecycle.chain import Chain
from flows.lifecycle.state import RunFolder, now
from schemas.lifecycle import LifecycleRun, StepRecord


@dataclass
class Lifecycle:
    """One lifecycle run in progress: the chain, its state, and how nested data sequences execute."""

    chain: Chain
    folder: RunFolder
    state: LifecycleRun
    sub: Callable[[Prepared], Executor]
    log: Callable[[str], None] = field(default=lambda m: print(f"[lifecycle] {m}", file=sys.stderr, flush=True))

    @property
    def name(self) -> str:
        return self.chain.name

    @property
    def work(self) -> Path:
        """Where an orchestrator keeps its cache records for this lifecycle."""
        return self.chain.out / ".work"

    @property
    def run_dir(self) -> Path:
        return self.folder.run_dir(self.state.run)

    def versions(self) -> dict[str, str]:
        """data / label -> the NAME@VERSION this run published (as far as it got)."""
        out = {}
        for key, step_name in (("data", "curate"), ("label", "label")):
            if self.state.done(step_name) and self.state.output(step_name).get("version"):
                out[key] = self.state.output(step_name)["version"]
        return out

    def lineage(self, step_name: str) -> dict[str, Any]:
        """What a model trained by ``step_name`` records about this run (LifecycleLineage)."""
        return {
            "lifecycle": self.name,
            "run": self.state.run,
            "state": str(self.run_dir / "state.json"),
            "flow_run_id": self.state.orchestrator.get("flow_run_id"),
            "step": step_name,
            "datasets": self.versions(),
        }


def step(lc: Lifecycle, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``fn`` as step ``name`` of the run, or return its output from an earlier attempt.

    The output (or the error with its traceback tail) is saved in ``state.json`` at once.
    """
    if lc.state.done(name):
        lc.log(f"{name}: finished in an earlier attempt of run {lc.state.run}; not repeated")
        return lc.state.output(name)
    started, t0 = now(), time.perf_counter()
    lc.log(f"{name}: started")

    def record(status: str, output: dict[str, Any], error: str | None = None) -> StepRecord:
        rec = StepRecord(
            name=name,
            status=status,  # type: ignore[arg-type]
            started=started,
            finished=now(),
            seconds=round(time.perf_counter() - t0, 3),
            output=output,
            error=error,
        )
        lc.folder.record(lc.state, rec)
        return rec

    try:
        output = fn()
    except BaseException as e:
        tail = "".join(traceback.format_exception(e)[-3:])
        record("failed", {}, f"{type(e).__name__}: {e}\n{tail}"[:4000])
        raise
    rec = record("done", output)
    lc.log(f"{name}: done in {rec.seconds:.1f} s")
    return output


# ---------------------------------------------------------------------------------------------- curate


def curate(lc: Lifecycle) -> dict[str, Any]:
    """Refresh the data recipe (only new input files, deduplicated against what is published).

    Output: ``noop`` (nothing new, and the latest version was already trained on), ``version``
    (NAME@N to train on), ``store``, the run folder and the funnel figures.
    """
    return step(lc, "curate", lambda: _curate(lc))


def _curate(lc: Lifecycle) -> dict[str, Any]:
    from curate.engine.hooks import default_hooks
    from curate.engine.sequence import run_sequence
    from curate.engine.steps import prepare

    prep = prepare(lc.chain.data, lc.chain.data_out)
    outcome = run_sequence(prep, lc.sub(prep), refresh=True, hooks=default_hooks())
    store = _store_path(prep)
    out: dict[str, Any] = {"store": store, "refresh": outcome.refresh, "recipe": lc.chain.data.file}
    if outcome.result is not None:
        s = outcome.result.summary
        out |= {
            "noop": False,
            "version": (outcome.published or {}).get("ref"),
            "run_dir": str(Path(outcome.result.run_dir).resolve()),
            "input_rows": s.get("input_rows"),
            "output_records": s.get("output_records"),
            "quarantined": s.get("quarantined"),
            "funnel": _funnel(s),
        }
        return out
    # nothing new on disk; still train once on a version this lifecycle has not trained on yet
    latest = _latest_version(store, lc.chain.data_dataset())
    consumed = lc.folder.consumed()
    if latest is not None and lc.chain.train and latest != consumed:
        lc.log(f"curate: no new input files, but {latest} has not been trained on by this lifecycle yet")
        return out | {"noop": False, "version": latest, "catch_up": True}
    return out | {"noop": True, "version": latest}


def _store_path(prep: Prepared) -> str | None:
    """The publish store of a planned recipe: a URL as it is, a folder made absolute and tidy."""
    pub = prep.plan.recipe.publish
    if pub is None:
        return None
    return pub.store if "://" in str(pub.store) else str(Path(pub.store).resolve())


def _latest_version(store: str | None, dataset: str) -> str | None:
    if store is None:
        return None
    from curate.store import RefError, Store

    try:
        name, version = Store(store).resolve(f"{dataset}@latest")
    except (RefError, FileNotFoundError):
        return None
    return f"{name}@{version}"


def _funnel(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage: records in and out, and why the removed ones went (from the run summary)."""
    return [
        {
            "stage": st.get("name"),
            "in": st.get("records_in"),
            "out": st.get("records_out"),
            "removed": st.get("removed"),
            "by_reason": st.get("by_reason") or {},
        }
        for st in summary.get("stages") or []
    ]


# ----------------------------------------------------------------------------------------------- label


def label(lc: Lifecycle) -> dict[str, Any]:
    """Label the new version: AI feedback, human annotation (wait, then pull), or both.

    Output: ``version`` (the labelled NAME@N), ``store``, who labelled (``mode``) and the figures.
    """
    return step(lc, "label", lambda: _label(lc))


def _label(lc: Lifecycle) -> dict[str, Any]:
    spec = lc.chain.recipe.label
    assert spec is not None
    data = lc.state.output("curate")
    out: dict[str, Any] = {"mode": spec.mode}
    if lc.chain.label is not None:
        out |= _ai_label(lc, data)
    if spec.mode in ("human", "both"):
        doc = lc.chain.label if spec.mode == "both" else lc.chain.data
        assert doc is not None
        out |= _human_label(lc, doc)
    return out


def _ai_label(lc: Lifecycle, data: dict[str, Any]) -> dict[str, Any]:
    from curate.engine.hooks import default_hooks
    from curate.engine.sequence import run_sequence
    from curate.engine.steps import prepare
    from schemas.recipe_loader import LoadedRecipe

    doc = lc.chain.label
    assert doc is not None
    recipe = doc.recipe.model_copy(deep=True)
    wanted = lc.chain.data_dataset()
    for src in recipe.sources:
        if src.dataset and src.dataset.split("@")[0] == wanted:
            src.dataset = data["version"]  # exactly the version this run curated
            src.store = data["store"]
    if lc.chain.recipe.label is not None and lc.chain.recipe.label.mode == "both" and recipe.publish is not None:
        # the judge may route every prompt to annotators: no AI pair this time is not a failure
        recipe.publish.allow_empty = True
    prep = prepare(LoadedRecipe(recipe, doc.file, doc.text, doc.root))
    outcome = run_sequence(prep, lc.sub(prep), refresh=False, hooks=default_hooks())
    assert outcome.result is not None
    s = outcome.result.summary
    fb = s.get("feedback") or {}
    return {
        "version": (outcome.published or {}).get("ref"),
        "store": _store_path(prep),
        "run_dir": str(Path(outcome.result.run_dir).resolve()),
        "input_rows": s.get("input_rows"),
        "output_records": s.get("output_records"),
        "feedback": fb,
        "recipe": doc.file,
    }


def _human_label(lc: Lifecycle, doc: Any) -> dict[str, Any]:
    """Wait (the recipe's annotation.wait: min_completed, timeout_s, poll_s) and pull the labels."""
    from curate.annotate.client import resolve
    from curate.annotate.progress import wait_for_dataset
    from curate.annotate.steps import pull_stage

    spec = doc.recipe.annotation
    w = spec.wait
    progress = wait_for_dataset(
        resolve(), spec.dataset or doc.recipe.name, w.min_completed, w.timeout_s, w.poll_s, spec.workspace
    )
    pulled, published = pull_stage(doc)
    pref = (published or {}).get("preference") or {}
    return {
        "version": pref.get("ref") or pref.get("dataset"),
        "store": doc.recipe.publish.store if doc.recipe.publish else spec.output.store,
        "human": {"progress": progress, "annotation": pulled.snapshot},
    }


# ----------------------------------------------------------------------------------------------- train


def train(lc: Lifecycle, index: int) -> dict[str, Any]:
    """Train step ``index``: its recipe on the version just published, from the previous step's model
    when ``start: previous``. Output: the run folder and its registry version ``NAME@N``."""
    name = f"train:{lc.chain.train[index].recipe.name}"
    return step(lc, name, lambda: _train(lc, index, name))


def _train(lc: Lifecycle, index: int, step_name: str) -> dict[str, Any]:
    from train.registry import version_of
    from train.run import train_recipe

    chain = lc.chain
    doc = chain.train[index]
    which = chain.train_dataset(index)
    src = lc.state.output("label" if which == "label" else "curate")
    overrides: dict[str, Any] = {
        "dataset.ref": src["version"],
        "dataset.store": src["store"],
        "output.dir": str(chain.runs_root),
        "eval": None,  # the lifecycle evaluates candidate and champion together, after all training
    }
    if chain.recipe.train[index].start == "previous":
        prev = lc.state.output(f"train:{chain.train[index - 1].recipe.name}")
        overrides |= {"model.base": prev["run_dir"], "model.gguf_file": None}
    section = getattr(doc.recipe, doc.recipe.method, None)
    reward = getattr(section, "reward_model", None)
    earlier = {chain.train[j].recipe.name for j in range(index)}
    if isinstance(reward, str) and reward.split("@")[0] in earlier:  # a reward model this run trained
        overrides[f"{doc.recipe.method}.reward_model"] = lc.state.output(f"train:{reward.split('@')[0]}")["run_dir"]
    lineage = lc.lineage(step_name) | {"overrides": overrides}
    r = effective_recipe(doc.recipe, doc.file, overrides)
    outcome = train_recipe(r, lifecycle=lineage)
    assert outcome.run_dir is not None
    v = version_of(outcome.run_dir, chain.runs_root)
    metrics = outcome.manifest.get("metrics", {})
    return {
        "run_dir": str(outcome.run_dir),
        "model": v.ref if v is not None else None,
        "method": r.recipe.method,
        "dataset": src["version"],
        "train_loss": metrics.get("train_loss"),
        "seconds": metrics.get("train_seconds"),
        "recipe": doc.file,
    }


def effective_recipe(recipe: Any, file: str, overrides: dict[str, Any]) -> Any:
    """The train recipe as the loop runs it: ``overrides`` (dotted keys) written into its text, so the
    run folder's recipe copy, its digest and the workers `accelerate launch` starts all see what ran.

    >>> from schemas.train_recipe_loader import load_train_recipe_doc
    >>> doc = load_train_recipe_doc("name: t\\nmodel: {base: m}\\ndataset: {ref: d@latest}\\nmethod: sft\\n", "t.yaml")
    >>> r = effective_recipe(doc.recipe, "t.yaml", {"dataset.ref": "d@3", "output.dir": "/runs"})
    >>> (r.recipe.dataset.ref, r.recipe.output.dir)
    ('d@3', '/runs')
    """
    from io import StringIO

    from ruamel.yaml import YAML

    from schemas.train_recipe_loader import load_train_recipe_doc

    body = recipe.model_dump(mode="json", exclude_unset=True)
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = body
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    buf = StringIO()
    y = YAML(typ="safe")
    y.default_flow_style = False
    y.dump(body, buf)
    return load_train_recipe_doc(f"# {file}, with the lifecycle's overrides\n" + buf.getvalue(), file)


# -------------------------------------------------------------------------------------- evaluate, gate


def candidate(lc: Lifecycle) -> str:
    """The registry version the gate decides on: the last train step's model."""
    last = lc.chain.train[-1].recipe.name
    model = lc.state.output(f"train:{last}")["model"]
    assert model, f"the {last} run was not registered"
    return str(model)


def champion(lc: Lifecycle) -> str | None:
    """``NAME@N`` of the current champion (the gate's alias), or None before the first promotion."""
    from train.registry import read_alias

    assert lc.chain.gate is not None and lc.chain.candidate_name is not None
    n = read_alias(lc.chain.runs_root, lc.chain.candidate_name, lc.chain.gate.alias)
    return f"{lc.chain.candidate_name}@{n}" if n is not None else None


def evaluate(lc: Lifecycle) -> dict[str, Any]:
    """The candidate and the champion side by side, on the same (decontaminated) eval rows."""
    return step(lc, "evaluate", lambda: _evaluate(lc))


def _evaluate(lc: Lifecycle) -> dict[str, Any]:
    from schemas.evaluation import EvalSpec
    from train.eval.runner import evaluate_side_by_side, table

    ev = lc.chain.recipe.eval
    assert ev is not None
    versions = lc.versions()
    on = [versions.get(o, o) for o in ev.on]
    store = str(lc.chain.path(ev.store)) if ev.store else lc.state.output("curate")["store"]
    spec = EvalSpec.model_validate(ev.model_dump() | {"on": on, "store": store})
    cand, champ = candidate(lc), champion(lc)
    models = [cand, *([champ] if champ and champ != cand else [])]
    lc.log(f"evaluate: {', '.join(models)} on {', '.join(on)}")
    reports = evaluate_side_by_side(models, spec, lc.chain.runs_root)
    chart = None
    if len(reports) > 1:
        from train.eval.plots import plot_metrics

        p = plot_metrics([(r.model, r) for r in reports], lc.run_dir / "candidate_vs_champion.png")
        chart = str(p) if p is not None else None
    return {
        "candidate": cand,
        "champion": champ,
        "on": on,
        "table": table(reports),
        "sets": [s.model_dump(mode="json") for r in reports[:1] for s in r.sets],
        "chart": chart,
        "plots": {r.model: r.plots for r in reports},
    }


def gate(lc: Lifecycle) -> dict[str, Any]:
    """The promotion gate decides; a pass moves the alias atomically, a refusal records why."""
    return step(lc, "gate", lambda: _gate(lc))


def _gate(lc: Lifecycle) -> dict[str, Any]:
    from train.registry import promote

    decision, event = promote(
        candidate(lc),
        gate=lc.chain.gate,
        why=f"lifecycle {lc.name} run {lc.state.run}",
        root=lc.chain.runs_root,
    )
    failed = [c.name for c in decision.criteria if not c.passed]
    lc.log(
        f"gate: {decision.model} "
        + ("promoted to @" + decision.alias if decision.promoted else f"refused ({', '.join(failed)})")
    )
    return {
        "decision": decision.model_dump(mode="json"),
        "promoted": decision.promoted,
        "failed": failed,
        "event": event.model_dump(mode="json") if event is not None else None,
    }


# ---------------------------------------------------------------------------------------------- report


def report(lc: Lifecycle, sink: ArtifactSink) -> dict[str, Any]:
    """Write the run's report (markdown, plots linked), show it as an artifact, and put a copy next
    to the candidate model version."""
    from curate.engine.hooks import artifact_key
    from flows.lifecycle.report import render

    text = render(lc.chain, lc.state, lc.run_dir)
    path = lc.run_dir / "report.md"
    path.write_text(text, encoding="utf-8")
    beside = None
    if lc.chain.train and any(n.startswith("train:") for n in lc.state.steps):
        last = f"train:{lc.chain.train[-1].recipe.name}"
        if lc.state.done(last):
            beside = Path(lc.state.output(last)["run_dir"]) / "lifecycle-report.md"
            shutil.copyfile(path, beside)
    sink.markdown(artifact_key(lc.name, "lifecycle-report"), text, f"lifecycle {lc.name} run {lc.state.run}")
    return {"report": str(path), "beside_model": str(beside) if beside else None}
