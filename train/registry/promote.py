"""Promotion: run the gate, record the decision, move the alias only when it passes (or when forced).

Everything happens under the registry lock, so two promotions of the same name are serialized and the
champion a decision was held against is the one it replaces. Every call writes a
:class:`PromotionDecision` to ``ROOT/NAME/registry/decisions/`` (a pass, a refusal, a forced move, or a
move without a gate), and every move an :class:`AliasEvent` to the log.

Example:
    >>> # decision, event = promote("chat-sft@3", gate=load_gate_file("recipes/gates/default.yaml"), why="nightly")
    >>> # decision.promoted, event.previous if event else None
"""

from __future__ import annotations

from pathlib import Path

from schemas.evaluation import AliasEvent, GateSpec, PromotionDecision
from train.registry.aliases import alias_path, move_locked, read_alias
from train.registry.gate import decide
from train.registry.layout import REGISTRY, locked, now, registry_dir, write_atomic
from train.registry.resolve import version_for


def save_decision(root: str | Path, name: str, decision: PromotionDecision) -> Path:
    """Write ``decision`` to ``ROOT/NAME/registry/decisions/SEQ-STAMP-NAME_vN-ALIAS.json`` atomically."""
    folder = registry_dir(root, name) / "decisions"
    folder.mkdir(exist_ok=True)
    stamp = decision.created.replace(":", "").replace("-", "").replace("+", "_")
    seq = len(list(folder.glob("*.json"))) + 1  # orders decisions made within one second
    tail = f"{stamp}-{decision.model.replace('@', '_v')}-{decision.alias}.json"
    while (folder / f"{seq:06d}-{tail}").exists():
        seq += 1
    return write_atomic(folder / f"{seq:06d}-{tail}", decision.model_dump_json(indent=2))


def list_decisions(root: str | Path, name: str) -> list[PromotionDecision]:
    """Every decision recorded for ``name``, oldest first."""
    folder = Path(root) / name / REGISTRY / "decisions"
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"))  # NNNNNN-...: the order they were made in
    return [PromotionDecision.model_validate_json(p.read_text(encoding="utf-8")) for p in paths]


def promote(
    ref: str,
    alias: str | None = None,
    gate: GateSpec | None = None,
    why: str = "",
    force: bool = False,
    root: str | Path = "runs/train",
) -> tuple[PromotionDecision, AliasEvent | None]:
    """Point ``NAME@alias`` (default: the gate's alias, else ``champion``) at the version ``ref`` names.

    With a ``gate`` the alias moves only when :func:`decide` passes, or with ``force`` (the log's ``why``
    then says it was forced past the failing criteria). Returns the recorded decision and the alias
    event (None when nothing moved). Raises :class:`RegistryError` for an unknown reference or alias.
    """
    v = version_for(ref, root)
    alias = alias or (gate.alias if gate is not None else "champion")
    if gate is not None and gate.alias != alias:
        gate = gate.model_copy(update={"alias": alias})
    reg = registry_dir(root, v.name)
    path = alias_path(root, v.name, alias)
    with locked(reg):
        if gate is not None:
            decision = decide(v.ref, gate, root)
        else:
            current = read_alias(root, v.name, alias)
            decision = PromotionDecision(
                model=v.ref,
                champion=f"{v.name}@{current}" if current is not None else None,
                alias=alias,
                passed=True,
                promoted=False,
                created=now(),
                reason="no gate given: moved on request",
            )
        event = None
        if decision.passed or force:
            note = why
            if not decision.passed:
                failed = ", ".join(c.name for c in decision.criteria if not c.passed)
                note = f"FORCED past failing gate ({failed})" + (f": {why}" if why else "")
            event = move_locked(reg, path, v.name, alias, v.version, "promote", note)
            decision = decision.model_copy(
                update={"promoted": True, "reason": decision.reason + ("; forced" if not decision.passed else "")}
            )
        save_decision(root, v.name, decision)
    return decision, event
