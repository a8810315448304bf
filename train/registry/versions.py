"""Versions and aliases of trained models, kept on disk beside the runs.

Every ``curate train`` run of recipe ``NAME`` becomes version ``NAME@N`` (1, 2, ...) when it
finishes; an alias (``champion``, ``challenger``, any name) points at one version. Layout, under
the runs root (``runs/train`` by default)::

    NAME/RUN_ID/...                    the run (manifest.json, adapter/, README.md, evaluations/)
    NAME/_registry/versions/N.json     version N -> run id (written once, never changed)
    NAME/_registry/aliases/ALIAS.json  alias -> version (replaced atomically)
    NAME/_registry/log.jsonl           every alias move: who, when, why, from which version
    NAME/_registry/decisions/*.json    every promotion gate decision, passed or not

Why it cannot break: a version number is claimed by creating its file exclusively (``O_EXCL``), so
two runs finishing together get two numbers; an alias is written to a temporary file, flushed, and
renamed over the old one (``os.replace`` is atomic), so a crash at any point leaves the alias on
its old or its new version, never empty or half written; writers take a lock file so moves and
their log lines are serialized.

Example:
    >>> import tempfile, json
    >>> root = Path(tempfile.mkdtemp())
    >>> run = root / "demo" / "20260101-000000"; run.mkdir(parents=True)
    >>> _ = (run / "manifest.json").write_text(json.dumps({"name": "demo", "run_id": run.name, "method": "sft",
    ...     "base_model": {}, "dataset": {}, "output": {}}))
    >>> reg = Registry(root, "demo"); reg.register(run)
    1
    >>> _ = reg.set_alias("champion", 1, action="promote", why="first model")
    >>> resolve("demo@champion", root) == run.resolve()
    True
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curate.models.trained import MANIFEST, find_run
from schemas.evaluation import AliasEvent, PromotionDecision

FOLDER = "_registry"
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
PAUSE_ENV = "CURATE_REGISTRY_PAUSE_BEFORE_REPLACE"  # tests: seconds to sleep with the new alias file unrenamed


class RegistryError(KeyError):
    """A reference or registry operation that cannot be satisfied (the message says what exists)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return os.environ.get("USER", "unknown")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
    if pause:
        time.sleep(pause)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself reaches the disk
    finally:
        os.close(dfd)


class Registry:
    """The versions and aliases of the models named ``name`` under ``root``."""

    def __init__(self, root: str | Path, name: str) -> None:
        self.root, self.name = Path(root), name
        self.dir = self.root / name / FOLDER

    # ---- versions ----
    def versions(self) -> dict[int, dict[str, Any]]:
        """Version number -> its record (run_id, registered, method, dataset), oldest first."""
        folder = self.dir / "versions"
        if not folder.is_dir():
            return {}
        out = {}
        for p in folder.glob("*.json"):
            if p.stem.isdigit():
                out[int(p.stem)] = json.loads(p.read_text(encoding="utf-8"))
        return dict(sorted(out.items()))

    def run_dir(self, version: int) -> Path:
        """The run folder of ``version``."""
        rec = self.versions().get(version)
        if rec is None:
            raise RegistryError(f"{self.name} has no version {version}; versions: {self._listing()}")
        return (self.root / self.name / rec["run_id"]).resolve()

    def version_of(self, run_dir: Path) -> int | None:
        """The version a run folder is registered as (None: not registered)."""
        run_id = Path(run_dir).resolve().name
        return next((v for v, rec in self.versions().items() if rec["run_id"] == run_id), None)

    def register(self, run_dir: str | Path) -> int:
        """Register the finished run ``run_dir`` (idempotent); returns its version number."""
        run_dir = Path(run_dir).resolve()
        manifest = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
        if manifest["name"] != self.name or run_dir.parent.resolve() != (self.root / self.name).resolve():
            raise RegistryError(f"{run_dir} is not a run of {self.name} under {self.root}")
        (self.dir / "versions").mkdir(parents=True, exist_ok=True)
        with self.locked():
            known = self.version_of(run_dir)
            if known is not None:
                return known
            record = {
                "run_id": run_dir.name,
                "registered": _now(),
                "method": manifest.get("method"),
                "dataset": (manifest.get("dataset") or {}).get("ref"),
                "created": manifest.get("created"),
            }
            n = max(self.versions(), default=0) + 1
            while True:  # O_EXCL: a writer that skipped the lock still cannot take the same number
                try:
                    fd = os.open(self.dir / "versions" / f"{n}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    n += 1
                    continue
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({"version": n, **record}, f, indent=2)
                    f.flush()
                    os.fsync(f.fileno())
                return n

    # ---- aliases ----
    def aliases(self) -> dict[str, int]:
        """Alias -> version."""
        folder = self.dir / "aliases"
        if not folder.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text(encoding="utf-8"))["version"] for p in sorted(folder.glob("*.json"))}

    def set_alias(self, alias: str, version: int, action: str = "set", why: str = "") -> AliasEvent:
        """Point ``alias`` at ``version`` atomically and log the move."""
        if not _ALIAS.match(alias) or alias == "latest" or alias.isdigit():
            raise RegistryError(
                f"alias {alias!r}: use a letter then letters, digits, - or _ (not 'latest', not a number)"
            )
        self.run_dir(version)  # the version exists
        (self.dir / "aliases").mkdir(parents=True, exist_ok=True)
        with self.locked():
            previous = self.aliases().get(alias)
            event = AliasEvent(
                name=self.name,
                alias=alias,
                version=version,
                previous=previous,
                action=action,  # type: ignore[arg-type]
                who=_user(),
                when=_now(),
                why=why,
            )
            _write_atomic(self.dir / "aliases" / f"{alias}.json", json.dumps({"version": version, "set": event.when}))
            with (self.dir / "log.jsonl").open("a", encoding="utf-8") as f:
                f.write(event.model_dump_json() + "\n")
                f.flush()
                os.fsync(f.fileno())
        return event

    def log(self, alias: str | None = None) -> list[AliasEvent]:
        """Alias moves, oldest first (optionally one alias's)."""
        path = self.dir / "log.jsonl"
        if not path.is_file():
            return []
        events = [
            AliasEvent.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line
        ]
        return [e for e in events if alias is None or e.alias == alias]

    def rollback(self, alias: str = "champion", why: str = "") -> AliasEvent:
        """Move ``alias`` back to the version it pointed at before its current one."""
        current = self.aliases().get(alias)
        if current is None:
            raise RegistryError(f"{self.name}@{alias} is not set; nothing to roll back")
        # the target before the current one: walk back past moves that landed on the current version
        history = [e for e in self.log(alias) if e.version is not None]
        for event in reversed(history):
            if event.version == current and event.previous is not None and event.previous != current:
                return self.set_alias(alias, event.previous, action="rollback", why=why or f"rollback from {current}")
        raise RegistryError(f"{self.name}@{alias} has no earlier version to roll back to (it is {current})")

    # ---- decisions ----
    def save_decision(self, decision: PromotionDecision) -> Path:
        """Write the gate's decision record (kept whether or not it promoted)."""
        folder = self.dir / "decisions"
        folder.mkdir(parents=True, exist_ok=True)
        # nanoseconds first: decisions taken within one second still list in the order they were taken
        path = folder / f"{time.time_ns()}-{decision.model.replace('@', '_v')}.json"
        _write_atomic(path, decision.model_dump_json(indent=2))
        return path

    def decisions(self) -> list[PromotionDecision]:
        """Every decision, oldest first."""
        folder = self.dir / "decisions"
        paths = sorted(folder.glob("*.json"), key=lambda p: int(p.name.split("-", 1)[0])) if folder.is_dir() else []
        return [PromotionDecision.model_validate_json(p.read_text(encoding="utf-8")) for p in paths]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize writers of this name (an exclusive lock on ``_registry/.lock``)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _listing(self) -> str:
        vs = self.versions()
        al = self.aliases()
        return (", ".join(map(str, vs)) or "none") + (
            f"; aliases: {', '.join(f'{a}->{v}' for a, v in al.items())}" if al else ""
        )


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME@X`` -> ``(NAME, X)``; anything else -> ``(ref, None)``."""
    if "@" in ref and not ref.startswith(("package:", "/", ".")):
        name, _, tag = ref.rpartition("@")
        if name and tag:
            return name, tag
    return ref, None


def resolve(ref: str | Path, root: str | Path = "runs/train") -> Path:
    """The run folder ``ref`` names: ``NAME@N``, ``NAME@ALIAS``, ``NAME@latest``, ``NAME``, ``NAME/RUN_ID``, a folder.

    Raises :class:`RegistryError` (a ``KeyError``) saying which versions and aliases exist.
    """
    name, tag = parse_ref(str(ref))
    if tag is None:
        found = find_run(str(ref), root)
        if found is None:
            raise RegistryError(f"no trained model {str(ref)!r} under {root} (curate models list shows them)")
        return found
    reg = Registry(root, name)
    versions = reg.versions()
    if not versions:
        raise RegistryError(f"no registered versions of {name!r} under {root}; train it with `curate train`")
    if tag == "latest":
        return reg.run_dir(max(versions))
    if tag.isdigit():
        return reg.run_dir(int(tag))
    alias = reg.aliases().get(tag)
    if alias is None:
        raise RegistryError(f"{name} has no alias {tag!r}; versions: {reg._listing()}")
    return reg.run_dir(alias)


def register_run(run_dir: str | Path) -> tuple[str, int]:
    """Register a finished ``curate train`` run folder under its own runs root; returns ``(NAME, N)``."""
    run_dir = Path(run_dir).resolve()
    name = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))["name"]
    return name, Registry(run_dir.parent.parent, name).register(run_dir)
