"""Where a model name's registry lives, and the few file primitives every registry write goes through.

Layout (beside the runs of one name, ``ROOT/NAME/``, where ``ROOT`` is a train recipe's ``output.dir``)::

    ROOT/NAME/RUN_ID/...              the runs (see train/lineage.py)
    ROOT/NAME/registry/versions/N.json   one immutable version each (NAME@N -> RUN_ID)
    ROOT/NAME/registry/aliases/A.json    where alias A points now (replaced atomically)
    ROOT/NAME/registry/log.jsonl         every alias move (schemas.evaluation.AliasEvent)
    ROOT/NAME/registry/decisions/*.json  every gate decision, numbered in order (schemas.evaluation.PromotionDecision)
    ROOT/NAME/registry/.lock             flock'ed by whoever moves an alias or registers a run

Files are written whole to a temp name and then renamed (``os.replace`` / ``os.link``), so a reader
or a crash never sees half a file; the lock is ``fcntl.flock``, which the kernel drops when its holder
dies, so a killed promotion never leaves a stale lock behind.

Example:
    >>> import tempfile
    >>> reg = registry_dir(tempfile.mkdtemp(), "demo")
    >>> write_atomic(reg / "x.json", "{}").read_text()
    '{}'
"""

from __future__ import annotations

import fcntl
import getpass
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

REGISTRY = "registry"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
PAUSE_ENV = "CURATE_REGISTRY_PAUSE"  # tests: sleep at a named point of a write (to SIGKILL there)


class RegistryError(KeyError):
    """A reference, version or alias that does not exist, or a registry action that cannot be done.

    A ``KeyError`` (callers that catch lookups keep working) whose ``str`` is the plain message.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def registry_dir(root: str | Path, name: str) -> Path:
    """``ROOT/NAME/registry`` (created)."""
    if not NAME_RE.match(name):
        raise RegistryError(f"invalid model name {name!r}: letters, digits, '.', '_' and '-' only")
    path = Path(root) / name / REGISTRY
    path.mkdir(parents=True, exist_ok=True)
    return path


def now() -> str:
    """UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def who() -> str:
    """The user acting ($USER, else the login name, else 'unknown')."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def pause(point: str) -> None:
    """Test hook: when ``$CURATE_REGISTRY_PAUSE`` names ``point``, say so on stderr and sleep (to be killed)."""
    if os.environ.get(PAUSE_ENV) == point:
        os.write(2, f"registry paused at {point}\n".encode())
        time.sleep(120)


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder, fsync'ed, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    pause("after_temp")
    os.replace(tmp, path)
    pause("after_replace")
    return path


def append_line(path: Path, line: str) -> None:
    """Append one line (a single ``write`` on an O_APPEND file, fsync'ed)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def locked(reg: Path) -> Iterator[None]:
    """Hold the registry's exclusive lock (``fcntl.flock`` on ``.lock``) for the block."""
    fd = os.open(reg / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
