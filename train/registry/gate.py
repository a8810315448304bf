"""The promotion gate: decide whether a candidate version may take an alias (``champion``) from its holder.

Input: the candidate ``NAME@N``, a :class:`schemas.evaluation.GateSpec`, and the evaluations saved
beside both models (``RUN_DIR/evaluations/``, written by ``curate eval`` or a train recipe's
``eval:``). Output: a :class:`PromotionDecision` listing every criterion with its figures:

- ``floor:METRIC``: the candidate's newest figure within ``min``/``max``;
- ``change:METRIC``: better than the champion's figure on the same eval set by ``min_change``
  (absolute) and ``min_relative_change`` (relative), in the metric's own better direction;
- ``win_rate``: the lower end of the 95% interval of the candidate's paired win rate against the
  champion (an evaluation of the candidate whose ``against`` is the champion) above ``ci_low_above``.

A figure that is missing fails its criterion, and the detail names the evaluation to run. With no
champion yet only the floors apply, and the decision says so. :func:`promote` writes the decision
whether or not it passes, and moves the alias only on a pass (or with ``force``, logged as such).

Example:
    >>> from schemas.evaluation import Bound
    >>> check_floor("heldout_loss", 2.5, Bound(max=3.0)).passed
    True
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from schemas.evaluation import Bound, ChangeRule, Criterion, EvalReport, GateSpec, MetricValue, PromotionDecision
from train.eval.results import load_reports
from train.registry.versions import Registry, RegistryError, parse_ref, resolve


def newest(reports: list[EvalReport], metric: str, on: str | None = None) -> tuple[EvalReport, MetricValue] | None:
    """The newest figure ``metric`` (optionally measured on eval set ``on``) among ``reports``."""
    for report in reversed(reports):
        for v in report.metrics:
            if v.metric == metric and (on is None or v.details.get("set") == on):
                return report, v
    return None


def check_floor(metric: str, value: float | None, bound: Bound) -> Criterion:
    """The candidate's figure against an absolute floor/ceiling."""
    limits = " and ".join(
        s
        for s in (
            f">= {bound.min}" if bound.min is not None else "",
            f"<= {bound.max}" if bound.max is not None else "",
        )
        if s
    )
    if value is None:
        return Criterion(
            name=f"floor:{metric}",
            metric=metric,
            passed=False,
            detail=f"no {metric} figure for the candidate: run `curate eval CANDIDATE --metrics {metric}`",
        )
    ok = (bound.min is None or value >= bound.min) and (bound.max is None or value <= bound.max)
    threshold = bound.min if bound.min is not None else bound.max
    return Criterion(
        name=f"floor:{metric}",
        metric=metric,
        passed=ok,
        candidate=value,
        threshold=threshold,
        detail=f"{value:.4g} must be {limits}",
    )


def check_change(metric: str, cand: MetricValue, champ: MetricValue, rule: ChangeRule) -> Criterion:
    """The candidate against the champion, improvement measured in the metric's better direction."""
    gain = cand.value - champ.value if cand.higher_is_better else champ.value - cand.value
    need = rule.min_change
    ok = gain >= need
    detail = f"improvement {gain:+.4g} (needs >= {need:g})"
    if rule.min_relative_change is not None:
        rel = gain / abs(champ.value) if champ.value else float("inf") if gain > 0 else 0.0
        ok = ok and rel >= rule.min_relative_change
        detail += f", relative {rel:+.2%} (needs >= {rule.min_relative_change:.2%})"
    return Criterion(
        name=f"change:{metric}",
        metric=metric,
        passed=ok,
        candidate=cand.value,
        champion=champ.value,
        threshold=need,
        detail=detail,
    )


def decide(candidate: str, gate: GateSpec, root: str | Path = "runs/train") -> PromotionDecision:
    """The gate's verdict on ``candidate`` (``NAME@N``) against the holder of ``gate.alias``."""
    name, tag = parse_ref(candidate)
    reg = Registry(root, name)
    if tag == "latest" and reg.versions():
        tag = str(max(reg.versions()))
    if tag is None or not tag.isdigit():
        raise RegistryError(f"promote: give the candidate as NAME@N (a version) or NAME@latest, not {candidate!r}")
    cand_dir = reg.run_dir(int(tag))
    holder = reg.aliases().get(gate.alias)
    champion = f"{name}@{holder}" if holder is not None and holder != int(tag) else None
    cand_reports = load_reports(cand_dir)
    champ_reports = load_reports(reg.run_dir(holder)) if champion else []
    criteria: list[Criterion] = []
    for metric, bound in gate.floors.items():
        found = newest(cand_reports, metric)
        criteria.append(check_floor(metric, found[1].value if found else None, bound))
    if champion:
        for metric, rule in gate.against_champion.items():
            found = newest(cand_reports, metric)
            if found is None:
                criteria.append(
                    Criterion(
                        name=f"change:{metric}",
                        metric=metric,
                        passed=False,
                        detail=f"no {metric} for the candidate: run `curate eval {candidate} --metrics {metric}`",
                    )
                )
                continue
            on = found[1].details.get("set")
            theirs = newest(champ_reports, metric, on)
            if theirs is None:
                criteria.append(
                    Criterion(
                        name=f"change:{metric}",
                        metric=metric,
                        passed=False,
                        candidate=found[1].value,
                        detail=f"no {metric} for the champion {champion} on {on}: run "
                        f"`curate eval {champion} --on {on} --metrics {metric}`",
                    )
                )
                continue
            criteria.append(check_change(metric, found[1], theirs[1], rule))
        if gate.win_rate is not None:
            criteria.append(_win_rate(cand_reports, gate, champion, root))
    passed = all(c.passed for c in criteria)
    failing = [c.name for c in criteria if not c.passed]
    reason = ("passed: " if passed else "refused: ") + (
        ", ".join(failing) if failing else "every criterion holds" if criteria else "no criteria"
    )
    if not champion:
        reason += f" (no {gate.alias} yet: floors only)"
    return PromotionDecision(
        model=f"{name}@{tag}",
        champion=champion,
        alias=gate.alias,
        passed=passed,
        promoted=False,
        criteria=criteria,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        reason=reason,
    )


def _win_rate(reports: list[EvalReport], gate: GateSpec, champion: str, root: str | Path) -> Criterion:
    rule = gate.win_rate
    assert rule is not None
    champ_dir = resolve(champion, root)
    for report in reversed(reports):
        v = report.value(rule.metric)
        if v is None or report.against is None:
            continue
        try:
            against_dir = resolve(report.against, root)
        except KeyError:
            continue
        if against_dir == champ_dir and v.ci_low is not None:
            return Criterion(
                name="win_rate",
                metric=rule.metric,
                passed=v.ci_low > rule.ci_low_above,
                candidate=v.value,
                threshold=rule.ci_low_above,
                detail=f"95% CI [{v.ci_low:.3g}, {v.ci_high:.3g}] (n={v.n}): its lower end must be "
                f"> {rule.ci_low_above}",
            )
    return Criterion(
        name="win_rate",
        metric=rule.metric,
        passed=False,
        threshold=rule.ci_low_above,
        detail=f"no {rule.metric} of the candidate against {champion}: evaluate it with "
        f"`{rule.metric}` and against: {champion}",
    )


def promote(
    candidate: str,
    gate: GateSpec | None = None,
    alias: str = "champion",
    why: str = "",
    force: bool = False,
    root: str | Path = "runs/train",
) -> PromotionDecision:
    """Run the gate (none: no criteria), record the decision, and move ``alias`` on a pass or ``force``."""
    spec = (gate or GateSpec()).model_copy(update={"alias": alias}) if gate is None or gate.alias != alias else gate
    decision = decide(candidate, spec, root)
    name, tag = parse_ref(decision.model)
    reg = Registry(root, name)
    if decision.passed or force:
        note = why or decision.reason
        if force and not decision.passed:
            note = f"FORCED past the gate ({decision.reason}); {why}".rstrip("; ")
        reg.set_alias(alias, int(tag or 0), action="promote", why=note)
        decision = decision.model_copy(update={"promoted": True, "reason": note})
    reg.save_decision(decision)
    return decision
