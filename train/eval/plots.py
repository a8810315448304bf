"""Charts people would rather look at than read: metrics with their intervals, model against model,
and the training loss curve.

Input: evaluation reports (one per model) or the trainer's log history (the manifest's ``logs``:
``{step, loss, eval_loss, ...}`` entries). Output: PNG files (matplotlib, no display needed).

Example:
    >>> # plot_metrics([("base", r0), ("sft", r1)], Path("eval.png"))   # one panel per metric, bars +-95% CI
    >>> plot_loss_curve([], Path("x.png")) is None                        # nothing logged: no chart
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas.evaluation import EvalReport


def plot_metrics(reports: list[tuple[str, EvalReport]], path: Path, title: str = "") -> Path | None:
    """One panel per metric, one bar per model with its 95% interval; the better direction in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    for _, r in reports:
        for v in r.metrics:
            if v.metric not in names:
                names.append(v.metric)
    if not names:
        return None
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes.flat, names, strict=False):
        labels, values, lo, hi, better = [], [], [], [], "higher"
        for label, r in reports:
            v = r.value(metric)
            if v is None:
                continue
            labels.append(f"{label}\nn={v.n}")
            values.append(v.value)
            lo.append(v.value - v.ci_low if v.ci_low is not None else 0.0)
            hi.append(v.ci_high - v.value if v.ci_high is not None else 0.0)
            better = "higher" if v.higher_is_better else "lower"
        ax.bar(range(len(values)), values, yerr=[lo, hi], capsize=4, color=colours[: len(values)])
        ax.set_xticks(range(len(values)), labels, fontsize=8)
        ax.set_title(f"{metric} ({better} is better)", fontsize=9)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(title or "Evaluation (bars: value, whiskers: bootstrap 95% CI)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_loss_curve(logs: list[dict[str, Any]], path: Path) -> Path | None:
    """Training (and eval, when logged) loss against step; None when the logs hold no loss."""
    train = [(e["step"], e["loss"]) for e in logs if isinstance(e, dict) and "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in logs if isinstance(e, dict) and "eval_loss" in e and "step" in e]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train:
        ax.plot(*zip(*train, strict=True), marker="o", markersize=3, label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), marker="s", markersize=4, label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training loss")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
