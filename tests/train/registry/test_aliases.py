"""Aliases: atomic, logged moves; rollback from the log; a SIGKILL mid-promotion never breaks an alias."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from train.registry import RegistryError, alias_log, list_aliases, move_alias, promote, read_alias, resolve, rollback
from train.registry.aliases import rollback_target


def test_move_logs_who_when_why_and_previous(root, make_run, monkeypatch):
    monkeypatch.setenv("USER", "alice")
    for i in range(3):
        make_run("chat", f"r{i}")
    move_alias(root, "chat", "champion", 1, "promote", why="first")
    move_alias(root, "chat", "champion", 2, "promote", why="better")
    move_alias(root, "chat", "challenger", 3, "set")
    assert list_aliases(root, "chat") == {"champion": 2, "challenger": 3}
    log = alias_log(root, "chat", "champion")
    moves = [(e.previous, e.version, e.who, e.why) for e in log]
    assert moves == [(None, 1, "alice", "first"), (1, 2, "alice", "better")]
    assert all(e.when.endswith("+00:00") for e in log)
    assert resolve("chat@champion", root).name == "r1" and resolve("chat@challenger", root).name == "r2"
    with pytest.raises(RegistryError, match=r"no version chat@9"):
        move_alias(root, "chat", "champion", 9)
    with pytest.raises(RegistryError, match="invalid alias"):
        move_alias(root, "chat", "latest", 1)


def test_rollback_restores_previous_champion_and_walks_back(root, make_run):
    for i in range(3):
        make_run("chat", f"r{i}")
    for v in (1, 2, 3):
        promote(f"chat@{v}", root=root)
    assert rollback(root, "chat").version == 2
    assert read_alias(root, "chat", "champion") == 2
    assert rollback(root, "chat", why="bad outputs").previous == 2
    assert read_alias(root, "chat", "champion") == 1  # two rollbacks walk back two promotions, not toggle
    with pytest.raises(RegistryError, match="nothing to roll back to: chat@champion is chat@1"):
        rollback(root, "chat")
    assert [e.action for e in alias_log(root, "chat")] == ["promote"] * 3 + ["rollback"] * 2


def test_rollback_target_replays_the_log_as_a_stack():
    from schemas.evaluation import AliasEvent

    def ev(action: str, v: int) -> AliasEvent:
        return AliasEvent(name="m", alias="champion", version=v, action=action, who="u", when="t")

    assert rollback_target([ev("promote", 1)]) is None
    assert rollback_target([ev("promote", 1), ev("promote", 2), ev("rollback", 1), ev("promote", 3)]) == 1
    # the move to 4 was killed before its log line: the alias file (4) still counts, rollback goes to 3
    assert rollback_target([ev("promote", 1), ev("promote", 3)], current=4) == 3
    assert rollback_target([ev("promote", 1), ev("promote", 3)], current=3) == 1


KILLER = """
import sys
from train.registry import promote
promote(sys.argv[1], root=sys.argv[2], why="killed midway")
"""


def _promote_and_kill(root: Path, ref: str, point: str) -> None:
    """Start a promotion in a subprocess that pauses at ``point``, wait for it to get there, SIGKILL it."""
    env = {**os.environ, "CURATE_REGISTRY_PAUSE": point, "PYTHONPATH": str(Path.cwd())}
    proc = subprocess.Popen([sys.executable, "-c", KILLER, ref, str(root)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # printed by the hook right before it sleeps
        assert line.strip() == f"registry paused at {point}", line
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


@pytest.mark.parametrize(("point", "expected"), [("after_temp", 1), ("after_replace", 2)])
def test_sigkill_during_promotion_leaves_old_or_new_version(root, make_run, point, expected):
    make_run("chat", "r1")
    make_run("chat", "r2")
    promote("chat@1", root=root)
    _promote_and_kill(root, "chat@2", point)
    alias_file = root / "chat" / "registry" / "aliases" / "champion.json"
    assert json.loads(alias_file.read_text())["version"] == expected  # whole, valid, old or new
    assert resolve("chat@champion", root).name == f"r{expected}"
    # the killed holder's flock died with it: the next promotion does not wait
    start = time.monotonic()
    promote("chat@2", root=root, why="after the crash")
    assert time.monotonic() - start < 10
    assert read_alias(root, "chat", "champion") == 2
    assert rollback(root, "chat").version == 1  # the log still leads back to the champion before
