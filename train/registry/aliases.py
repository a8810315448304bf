"""Aliases (``champion``, ``challenger``, any name) pointing at versions, moved atomically and logged.

``ROOT/NAME/registry/aliases/ALIAS.json`` holds ``{"version": N, ...}`` and is only ever replaced whole
(temp file + ``os.replace``), so after any crash it names the old version or the new one. Every move
appends an :class:`schemas.evaluation.AliasEvent` (who, when, why, previous) to ``log.jsonl``; moves
hold the registry's ``flock``, so concurrent promotions are serialized. ``rollback`` replays the log
as a stack (promote/set push, rollback pops) and moves the alias back to the target before the current.

Example:
    >>> # move_alias("runs/train", "chat-sft", "champion", 3, action="promote", why="beats v2")
    >>> # rollback("runs/train", "chat-sft")   # champion back to 2
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.evaluation import AliasEvent
from train.registry.layout import (
    NAME_RE,
    REGISTRY,
    RegistryError,
    append_line,
    locked,
    now,
    registry_dir,
    who,
    write_atomic,
)
from train.registry.versions import get_version

RESERVED = {"latest"}  # NAME@latest always means the newest version


def alias_path(root: str | Path, name: str, alias: str) -> Path:
    if not NAME_RE.match(alias) or alias in RESERVED or alias.isdigit():
        raise RegistryError(f"invalid alias {alias!r}: a name of letters, digits, '.', '_', '-' (not 'latest' or N)")
    return Path(root) / name / REGISTRY / "aliases" / f"{alias}.json"


def read_alias(root: str | Path, name: str, alias: str) -> int | None:
    """The version ``alias`` points at, or None when it is not set."""
    path = alias_path(root, name, alias)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["version"]


def list_aliases(root: str | Path, name: str) -> dict[str, int]:
    """Every alias of ``name`` and its version."""
    folder = Path(root) / name / REGISTRY / "aliases"
    if not folder.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text(encoding="utf-8"))["version"] for p in sorted(folder.glob("*.json"))}


def alias_log(root: str | Path, name: str, alias: str | None = None) -> list[AliasEvent]:
    """The alias moves of ``name`` (only ``alias``'s when given), oldest first."""
    path = Path(root) / name / REGISTRY / "log.jsonl"
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            events.append(AliasEvent.model_validate_json(line))
    return [e for e in events if alias is None or e.alias == alias]


def move_alias(
    root: str | Path,
    name: str,
    alias: str,
    version: int | None,
    action: str = "set",
    why: str = "",
) -> AliasEvent:
    """Point ``NAME@alias`` at ``version`` (None: remove it) atomically, and log it; returns the event."""
    reg = registry_dir(root, name)
    path = alias_path(root, name, alias)
    if version is not None:
        get_version(root, name, version)  # raises when it does not exist
    with locked(reg):
        return move_locked(reg, path, name, alias, version, action, why)


def move_locked(reg: Path, path: Path, name: str, alias: str, version: int | None, action: str, why: str) -> AliasEvent:
    """:func:`move_alias` for a caller already holding the registry lock (``path``: the alias file)."""
    previous = json.loads(path.read_text(encoding="utf-8"))["version"] if path.is_file() else None
    event = AliasEvent(
        name=name, alias=alias, version=version, previous=previous, action=action, who=who(), when=now(), why=why
    )
    if version is None:
        path.unlink(missing_ok=True)
    else:
        body = {"version": version, "set": event.when, "by": event.who, "action": action}
        write_atomic(path, json.dumps(body, indent=2))
    append_line(reg / "log.jsonl", event.model_dump_json())
    return event


def rollback_target(events: list[AliasEvent], current: int | None = None) -> int | None:
    """The version an alias had before ``current``, replaying its log as a stack (None: nothing to go back to).

    A move whose log line was lost (killed between the rename and the append) still counts: when the
    alias file disagrees with the log, the file's ``current`` is pushed on top.
    """
    stack: list[int | None] = []
    for e in events:
        if e.action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(e.version)
    if current is not None and (not stack or stack[-1] != current):
        stack.append(current)
    return stack[-2] if len(stack) >= 2 else None


def rollback(root: str | Path, name: str, alias: str = "champion", why: str = "") -> AliasEvent:
    """Move ``alias`` back to the version it pointed at before the current one (from the log)."""
    reg = registry_dir(root, name)
    path = alias_path(root, name, alias)
    with locked(reg):
        current = read_alias(root, name, alias)
        target = rollback_target(alias_log(root, name, alias), current)
        if target is None:
            where = f"{name}@{alias} is {name}@{current}" if current is not None else f"{name}@{alias} is not set"
            raise RegistryError(f"nothing to roll back to: {where} and the log holds no earlier target")
        return move_locked(reg, path, name, alias, target, "rollback", why)
