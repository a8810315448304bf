"""The promotion gate: may a candidate version replace the champion?

:func:`decide` checks, from the *saved* evaluations (``train/eval/results.py``) of candidate and
champion, in this order:

- ``floors``: the candidate's newest figure of each metric is within its :class:`Bound` (min/max);
- ``against_champion``: on the same eval sets (same ``EvalSet.ref``s), the candidate beats the
  champion by at least ``min_change`` (and ``min_relative_change``), in the metric's own better
  direction (``MetricValue.higher_is_better``: a lower loss is an improvement);
- ``win_rate``: the lower end of the 95% interval of the candidate's paired judge win rate, from its
  evaluation whose ``against`` is the champion, is above ``ci_low_above``.

A figure that is missing fails its criterion with a message naming the evaluation to run. With no
champion yet only the floors apply, and the decision says so. Nothing here moves an alias or writes a
file (see :mod:`train.registry.promote`).

Example:
    >>> # d = decide("chat-sft@3", GateSpec(floors={"heldout_loss": Bound(max=3.0)}), "runs/train")
    >>> # d.passed, [c.name for c in d.criteria if not c.passed]
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from pathlib import Path

from schemas.evaluation import Bound, ChangeRule, Criterion, EvalReport, GateSpec, MetricValue, PromotionDecision
from train.eval.results import load_reports
from train.registry.aliases import alias_log, read_alias
from train.registry.layout import RegistryError, now
from train.registry.resolve import resolve, split_ref, version_for
from train.registry.versions import ModelVersion, get_version

Figure = tuple[MetricValue, EvalReport]


def _sets(report: EvalReport) -> frozenset[str]:
    return frozenset(s.ref for s in report.sets)


def metric_family(metric: str) -> str:
    """The evaluator that reports ``metric`` (perplexity comes from heldout_loss, refusal rates from safety)."""
    from schemas.evaluation import MetricName

    names = typing.get_args(MetricName)
    if metric in names:
        return metric
    if metric == "perplexity":
        return "heldout_loss"
    if "refusal" in metric:
        return "safety"
    return next((n for n in names if metric.startswith(n)), metric.split(":")[0])


def _run_hint(ref: str, metric: str, sets: frozenset[str] | None = None) -> str:
    on = " ".join(f"--on {s}" for s in sorted(sets)) if sets else "--on DATASET@VERSION"
    return f"run `curate eval {ref} {on}` with metric {metric_family(metric)}"


def newest(reports: list[EvalReport], metric: str, sets: frozenset[str] | None = None) -> Figure | None:
    """The newest figure ``metric`` among ``reports`` (only from evaluations on exactly ``sets`` when given)."""
    for report in reversed(reports):
        if sets is not None and _sets(report) != sets:
            continue
        v = report.value(metric)
        if v is not None:
            return v, report
    return None


def paired(cand: list[EvalReport], champ: list[EvalReport], metric: str) -> tuple[Figure, Figure] | None:
    """The newest candidate and champion figures of ``metric`` on the same eval sets, or None."""
    for report in reversed(cand):
        v = report.value(metric)
        if v is None:
            continue
        other = newest(champ, metric, _sets(report))
        if other is not None:
            return (v, report), other
    return None


def floor_criterion(metric: str, bound: Bound, cand: list[EvalReport], ref: str) -> Criterion:
    """``floor:METRIC``: the candidate's newest figure within ``bound``."""
    name = f"floor:{metric}"
    fig = newest(cand, metric)
    threshold = bound.min if bound.min is not None else bound.max
    if fig is None:
        return Criterion(
            name=name,
            metric=metric,
            passed=False,
            threshold=threshold,
            detail=f"no {metric} saved for {ref}: {_run_hint(ref, metric)}",
        )
    v = fig[0].value
    low_ok = bound.min is None or v >= bound.min
    high_ok = bound.max is None or v <= bound.max
    parts = ([f">= {bound.min:g}"] if bound.min is not None else []) + (
        [f"<= {bound.max:g}"] if bound.max is not None else []
    )
    detail = f"{metric} {fig[0].interval()} must be {' and '.join(parts)}"
    if not low_ok:
        threshold = bound.min
    elif not high_ok:
        threshold = bound.max
    return Criterion(
        name=name, metric=metric, passed=low_ok and high_ok, candidate=v, threshold=threshold, detail=detail
    )


def change_criterion(
    metric: str, rule: ChangeRule, cand: list[EvalReport], champ: list[EvalReport], ref: str, champ_ref: str
) -> Criterion:
    """``change:METRIC``: better than the champion by ``rule`` on the same eval sets."""
    name = f"change:{metric}"
    mine = newest(cand, metric)
    if mine is None:
        detail = f"no {metric} saved for {ref}: {_run_hint(ref, metric)}"
        return Criterion(name=name, metric=metric, passed=False, threshold=rule.min_change, detail=detail)
    pair = paired(cand, champ, metric)
    if pair is None:
        sets = _sets(mine[1])
        detail = (
            f"no {metric} of the champion {champ_ref} on the candidate's eval sets {sorted(sets)}: "
            f"{_run_hint(champ_ref, metric, sets)}"
        )
        return Criterion(
            name=name, metric=metric, passed=False, candidate=mine[0].value, threshold=rule.min_change, detail=detail
        )
    (c, report), (h, _) = pair
    change = c.value - h.value if c.higher_is_better else h.value - c.value
    ok = change >= rule.min_change
    detail = (
        f"{metric} {c.interval()} vs champion {h.interval()} on {sorted(_sets(report))}: "
        f"improvement {change:+.4g} ({'higher' if c.higher_is_better else 'lower'} is better), "
        f"needs >= {rule.min_change:g}"
    )
    if rule.min_relative_change is not None:
        rel = change / abs(h.value) if h.value else (float("inf") if change > 0 else 0.0)
        ok = ok and rel >= rule.min_relative_change
        detail += f"; relative {rel:+.2%}, needs >= {rule.min_relative_change:.2%}"
    return Criterion(
        name=name,
        metric=metric,
        passed=ok,
        candidate=c.value,
        champion=h.value,
        threshold=rule.min_change,
        detail=detail,
    )


def _when(iso: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def against_dir(report: EvalReport, root: str | Path) -> Path | None:
    """The run folder ``report.against`` named *when the evaluation ran* (None: not a known run).

    ``NAME@ALIAS`` is read from the alias log as of ``report.created``, so an evaluation against
    ``chat@champion`` still counts against the champion of its day after the alias has moved on.
    """
    if not report.against:
        return None
    name, tag = split_ref(report.against)
    created = _when(report.created)
    if tag is not None and not tag.isdigit() and tag != "latest" and created is not None:
        version = None
        for e in alias_log(root, name, tag):
            moved = _when(e.when)
            if moved is not None and moved <= created:
                version = e.version
        if version is not None:
            try:
                return get_version(root, name, version).run_dir(root).resolve()
            except KeyError:
                return None
    try:
        return resolve(report.against, root)
    except KeyError:
        return None


def _is_against(report: EvalReport, champion_dir: Path, root: str | Path) -> bool:
    return against_dir(report, root) == champion_dir.resolve()


def win_rate_criterion(
    metric: str, above: float, cand: list[EvalReport], champion_dir: Path, root: str | Path, ref: str, champ_ref: str
) -> Criterion:
    """``win_rate_ci``: the lower end of the paired win rate's interval against the champion above ``above``."""
    against = [r for r in cand if _is_against(r, champion_dir, root)]
    fig = newest(against, metric)
    if fig is None:
        detail = (
            f"no {metric} of {ref} against the champion {champ_ref} saved: "
            f"run `curate eval {ref} --on DATASET@VERSION` "
            f"with metric {metric_family(metric)} (against: {champ_ref})"
        )
        return Criterion(name="win_rate_ci", metric=metric, passed=False, threshold=above, detail=detail)
    v = fig[0]
    if v.ci_low is None:
        return Criterion(
            name="win_rate_ci",
            metric=metric,
            passed=False,
            candidate=v.value,
            threshold=above,
            detail=f"{metric} {v.interval()} has no interval",
        )
    detail = f"{metric} vs {champ_ref} {v.interval()}: interval's lower end must be > {above:g}"
    return Criterion(
        name="win_rate_ci", metric=metric, passed=v.ci_low > above, candidate=v.ci_low, threshold=above, detail=detail
    )


def decide(candidate: str, gate: GateSpec, root: str | Path = "runs/train") -> PromotionDecision:
    """Hold ``candidate`` (``NAME@N`` or any reference to a registered run) against ``NAME@gate.alias``.

    Returns the :class:`PromotionDecision` (``promoted`` False: deciding moves nothing). Raises
    :class:`RegistryError` when the candidate is not a registered version.
    """
    cand_v = version_for(candidate, root)
    ref = cand_v.ref
    cand_reports = load_reports(cand_v.run_dir(root))
    criteria = [floor_criterion(m, b, cand_reports, ref) for m, b in gate.floors.items()]
    champ_n = read_alias(root, cand_v.name, gate.alias)
    champ_v: ModelVersion | None = get_version(root, cand_v.name, champ_n) if champ_n is not None else None
    if champ_v is None:
        reason = f"no {cand_v.name}@{gate.alias} yet: floors only"
    elif champ_v.version == cand_v.version:
        reason = f"{ref} already is {cand_v.name}@{gate.alias}: floors only"
    else:
        champ_reports = load_reports(champ_v.run_dir(root))
        criteria += [
            change_criterion(m, rule, cand_reports, champ_reports, ref, champ_v.ref)
            for m, rule in gate.against_champion.items()
        ]
        if gate.win_rate is not None:
            criteria.append(
                win_rate_criterion(
                    gate.win_rate.metric,
                    gate.win_rate.ci_low_above,
                    cand_reports,
                    champ_v.run_dir(root),
                    root,
                    ref,
                    champ_v.ref,
                )
            )
        reason = f"held against {champ_v.ref} ({cand_v.name}@{gate.alias})"
    failed = [c.name for c in criteria if not c.passed]
    passed = not failed
    reason += "; passed" if passed else f"; failed: {', '.join(failed)}"
    return PromotionDecision(
        model=ref,
        champion=champ_v.ref if champ_v is not None and champ_v.version != cand_v.version else None,
        alias=gate.alias,
        passed=passed,
        promoted=False,
        criteria=criteria,
        created=now(),
        reason=reason,
    )


__all__ = ["RegistryError", "decide"]
