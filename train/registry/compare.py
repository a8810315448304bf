"""Two models side by side from their saved evaluations: every metric both have on the same eval sets,
with intervals, which is better, and the paired judge win rate when one was evaluated against the other.

Example:
    >>> # c = compare_models("chat-sft@champion", "chat-sft@4")
    >>> # [(r.metric, r.a.value, r.b.value, r.better) for r in c.rows], c.win_rate
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from schemas.evaluation import EvalReport, MetricValue
from train.eval.results import load_reports
from train.registry.gate import against_dir, newest
from train.registry.resolve import resolve


@dataclass(frozen=True)
class Row:
    """One metric of A and B on the same eval sets."""

    metric: str
    sets: tuple[str, ...]
    a: MetricValue
    b: MetricValue

    @property
    def better(self) -> str:
        """``A``, ``B`` or ``tie`` in the metric's better direction."""
        if self.a.value == self.b.value:
            return "tie"
        return "A" if (self.a.value > self.b.value) == self.a.higher_is_better else "B"


@dataclass
class Comparison:
    """What :func:`compare_models` found."""

    a: str
    b: str
    a_dir: Path
    b_dir: Path
    rows: list[Row] = field(default_factory=list)
    win_rate: MetricValue | None = None  # A against B (flipped when only B was evaluated against A)
    win_rate_from: str | None = None
    only_a: list[str] = field(default_factory=list)  # metrics with no figure of B on the same sets
    only_b: list[str] = field(default_factory=list)


def _against(reports: list[EvalReport], other: Path, root: str | Path) -> list[EvalReport]:
    return [r for r in reports if against_dir(r, root) == other]


def _flip(v: MetricValue) -> MetricValue:
    """B's win rate against A read as A's against B (ties count half either way, so 1 - x)."""
    lo, hi = (1 - v.ci_high, 1 - v.ci_low) if v.ci_low is not None and v.ci_high is not None else (None, None)
    return v.model_copy(update={"value": 1 - v.value, "ci_low": lo, "ci_high": hi})


def compare_models(a: str, b: str, root: str | Path = "runs/train", win_metric: str = "judge_win_rate") -> Comparison:
    """Compare ``a`` and ``b`` (any references :func:`train.registry.resolve` accepts)."""
    a_dir, b_dir = resolve(a, root), resolve(b, root)
    ra, rb = load_reports(a_dir), load_reports(b_dir)
    out = Comparison(a, b, a_dir, b_dir)
    seen: set[tuple[str, frozenset[str]]] = set()
    for report in reversed(ra):
        if report.against:  # paired figures are read below, not side by side
            continue
        sets = frozenset(s.ref for s in report.sets)
        for v in report.metrics:
            if (v.metric, sets) in seen:
                continue
            seen.add((v.metric, sets))
            other = newest([r for r in rb if not r.against], v.metric, sets)
            if other is None:
                out.only_a.append(v.metric)
            else:
                out.rows.append(Row(v.metric, tuple(sorted(sets)), v, other[0]))
    a_metrics = {m for m, _ in seen}
    out.only_b = sorted({v.metric for r in rb if not r.against for v in r.metrics} - a_metrics)
    fig = newest(_against(ra, b_dir, root), win_metric)
    if fig is not None:
        out.win_rate, out.win_rate_from = fig[0], f"{a} evaluated against {b}"
    else:
        fig = newest(_against(rb, a_dir, root), win_metric)
        if fig is not None:
            out.win_rate, out.win_rate_from = _flip(fig[0]), f"{b} evaluated against {a} (flipped)"
    out.rows.sort(key=lambda r: (r.sets, r.metric))
    return out
