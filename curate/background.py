"""Small helpers for the background servers we start (Argilla, Prefect, model servers): liveness,
free ports, and a server process held for the length of a ``with`` block.

Example:
    >>> import os
    >>> pid_alive(os.getpid()), free_port() > 0
    (True, True)
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


class ServerStartError(RuntimeError):
    """A server process exited, or did not answer its ready URL in time (the message ends with its log)."""


@contextmanager
def serving(
    cmd: list[str], ready_url: str, log: Path, timeout: float = 120.0, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` (output to ``log``) until ``ready_url`` answers 200, yield the process, stop it after.

    Raises :class:`ServerStartError` with the log's tail when it exits or is not ready in ``timeout`` s.
    """
    import httpx

    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=dict(env) if env is not None else None)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise ServerStartError(f"{' '.join(cmd[:3])} did not start:\n{tail}")
            time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (an exited child is reaped; a zombie is not alive)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:  # not our child: nothing to reap
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True
