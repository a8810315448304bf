"""The report of one lifecycle run, in markdown: what came in, what was removed and why, who labelled
what, training curves, candidate vs champion, and the gate's decision.

Input: the chain, the run's state (:class:`schemas.lifecycle.LifecycleRun`) and its folder. Output:
markdown text (the run folder's ``report.md``, the Prefect artifact, and ``lifecycle-report.md``
beside the candidate model). Plots (loss curves, the candidate-vs-champion chart) are PNG files
linked by path.

Example:
    >>> # print(render(chain, state, run_dir))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flows.lifecycle.chain import Chain
from schemas.lifecycle import LifecycleRun


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def render(chain: Chain, state: LifecycleRun, run_dir: Path) -> str:
    """The whole report (see the module docstring)."""
    orch = state.orchestrator
    lines = [
        f"# Lifecycle {chain.name}: run {state.run} ({state.status})",
        "",
        f"- recipe: `{chain.file}`",
        f"- started {state.created}; attempts {state.attempts}; orchestrator {orch.get('name', '-')}"
        + (f", flow run `{orch['flow_run_id']}`" if orch.get("flow_run_id") else ""),
        "",
    ]
    lines += _curate(state)
    if state.status == "noop":
        lines += ["", "Nothing new: no labelling, training, evaluation or promotion ran.", ""]
        return "\n".join(lines)
    lines += _label(state)
    lines += _train(state, run_dir)
    lines += _evaluate(state)
    lines += _gate(state)
    failed = [r for r in state.steps.values() if r.status == "failed"]
    if failed:
        lines += ["## Failed steps", ""]
        for r in failed:
            lines += [f"- **{r.name}**: {(r.error or '').splitlines()[0]}"]
    return "\n".join(lines) + "\n"


def _curate(state: LifecycleRun) -> list[str]:
    if not state.done("curate"):
        return ["## What came in", "", "The curation step has not finished.", ""]
    c = state.output("curate")
    refresh = c.get("refresh") or {}
    new = refresh.get("new_files") or []
    lines = ["## What came in", ""]
    if c.get("noop"):
        lines += [f"No new input files since `{refresh.get('base_version') or c.get('version') or '-'}`."]
        return lines
    if c.get("catch_up"):
        lines += [f"No new input files; `{c['version']}` had not been trained on by this lifecycle yet.", ""]
        return lines
    lines += [
        f"- published `{c.get('version')}` (base `{refresh.get('base_version') or '-'}`)",
        f"- new input files: {len(new)}" + (": " + ", ".join(f"`{Path(f).name}`" for f in new[:10]) if new else ""),
        f"- input rows {c.get('input_rows')}, records kept {c.get('output_records')}, "
        f"quarantined {c.get('quarantined')}",
        f"- curation report: `{Path(c['run_dir']) / 'report.md'}`" if c.get("run_dir") else "",
        "",
        "What was removed, and why:",
        "",
    ]
    rows = [
        [f["stage"], f["in"], f["out"], f["removed"], ", ".join(f"{k}: {v}" for k, v in f["by_reason"].items())]
        for f in c.get("funnel") or []
    ]
    lines += [*_table(["stage", "in", "out", "removed", "reasons"], rows), ""]
    return lines


def _label(state: LifecycleRun) -> list[str]:
    if not state.done("label"):
        return []
    lab = state.output("label")
    lines = ["## Who labelled what", "", f"- mode: **{lab['mode']}**; labelled version `{lab.get('version')}`"]
    fb = lab.get("feedback") or {}
    if fb:
        outcomes = fb.get("outcomes") or {}
        if outcomes:
            lines.append("- AI feedback outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
        if fb.get("model_calls") is not None:
            lines.append(
                f"- model requests {fb['model_calls']}: {fb.get('cache_misses', 0)} asked, "
                f"{fb.get('cache_hits', 0)} answered from the request cache (prompts labelled in earlier runs)"
            )
        judge = fb.get("judge")
        if isinstance(judge, dict):
            spec = judge.get("spec") or {}
            model = str(judge.get("model") or spec.get("model") or "?").split(" prompt:")[0]
            lines.append(f"- judge: {judge.get('kind') or spec.get('kind')} by `{model}`")
        cal = fb.get("calibration")
        if cal:
            lines.append(f"- judge agreement with humans: `{json.dumps(cal, sort_keys=True)[:300]}`")
        else:
            lines.append("- judge agreement with humans: not measured in this run (feedback.calibration)")
    human = lab.get("human")
    if human:
        lines.append(f"- human annotation: `{json.dumps(human.get('progress'), sort_keys=True)[:300]}`")
    if lab.get("run_dir"):
        lines.append(f"- labelling report: `{Path(lab['run_dir']) / 'report.md'}`")
    return [*lines, ""]


def _train(state: LifecycleRun, run_dir: Path) -> list[str]:
    done = [(k, v) for k, v in state.steps.items() if k.startswith("train:") and v.status == "done"]
    if not done:
        return []
    lines = ["## Training", ""]
    rows = []
    for _name, rec in done:
        o = rec.output
        rows.append([o.get("model"), o.get("method"), o.get("dataset"), o.get("train_loss"), o.get("seconds")])
    lines += [*_table(["model", "method", "trained on", "train loss", "seconds"], rows), ""]
    for name, rec in done:
        curve = _loss_curve(Path(rec.output["run_dir"]), run_dir / f"loss_{name.removeprefix('train:')}.png")
        if curve is not None:
            lines.append(f"![{name} loss]({curve})")
    return [*lines, ""]


def _loss_curve(model_dir: Path, target: Path) -> str | None:
    from train.eval.plots import plot_loss_curve
    from train.lineage import MANIFEST, read_manifest

    try:
        logs = read_manifest(model_dir / MANIFEST).get("logs") or []
    except (OSError, ValueError):
        return None
    p = plot_loss_curve(logs, target)
    return str(p) if p is not None else None


def _evaluate(state: LifecycleRun) -> list[str]:
    if not state.done("evaluate"):
        return []
    e = state.output("evaluate")
    cand, champ = e["candidate"], e.get("champion")
    lines = ["## Candidate vs champion", "", f"- candidate `{cand}`; champion `{champ or 'none yet'}`; sets {e['on']}"]
    for s in e.get("sets") or []:
        if s.get("leaked"):
            lines.append(f"- {s['ref']}: {s['leaked']} of {s['rows']} rows leak from training data: excluded")
    lines.append("")
    by: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in e["table"]:
        by.setdefault((r["metric"], r["set"]), {})[r["model"]] = r

    def cell(r: dict[str, Any] | None) -> str:
        if r is None:
            return "-"
        ci = f" [{r['ci_low']:.4g}, {r['ci_high']:.4g}]" if r.get("ci_low") is not None else ""
        return f"{r['value']:.4g}{ci} (n={r['n']})"

    rows = [
        [m, s or "-", cell(v.get(cand)), cell(v.get(champ) if champ else None), next(iter(v.values()))["better"]]
        for (m, s), v in by.items()
    ]
    lines += [*_table(["metric", "eval set", "candidate", "champion", "better"], rows), ""]
    if e.get("chart"):
        lines.append(f"![candidate vs champion]({e['chart']})")
    return [*lines, ""]


def _gate(state: LifecycleRun) -> list[str]:
    if not state.done("gate"):
        return []
    g = state.output("gate")
    d = g["decision"]
    verdict = f"**promoted** `{d['model']}` to `@{d['alias']}`" if g["promoted"] else f"**refused** `{d['model']}`"
    lines = ["## Gate", "", f"{verdict}: {d['reason']}", ""]
    rows = [
        [
            c["name"],
            "pass" if c["passed"] else "FAIL",
            c.get("candidate"),
            c.get("champion"),
            c.get("threshold"),
            c.get("detail"),
        ]
        for c in d.get("criteria") or []
    ]
    if rows:
        lines += _table(["criterion", "result", "candidate", "champion", "threshold", "detail"], rows)
    return [*lines, ""]
