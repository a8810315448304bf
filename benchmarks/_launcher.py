"""A tiny process that starts the measured benchmark children, so their peak RSS is their own.

Linux carries a parent's RSS high-water mark into the ``ru_maxrss`` of a child it forks (exec keeps
the old mm's peak), so children of a benchmark process that once held a corpus would all report at
least that. The launcher is started first, stays ~10 MB, and spawns every measured run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_LAUNCHER = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    req = json.loads(line)
    with open(req["stdout"], "wb") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(req["cmd"], stdout=f, env=req["env"], cwd=req["cwd"])
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"code": code, "maxrss": usage.ru_maxrss, "wall": wall, "cpu": cpu}), flush=True)
"""


class Launcher:
    """Starts the measured children from a small process started before any data is loaded."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, cmd: list[str], env: dict[str, str], stdout: str) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"cmd": cmd, "env": env, "cwd": str(REPO), "stdout": stdout}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()
