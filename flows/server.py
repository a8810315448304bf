"""A local Prefect server in the background (``curate server up | down | status``).

Schedules and deployments need a real Prefect server (the temporary one a plain ``curate run``
starts lives only as long as the run). ``up`` starts ``prefect server start`` detached, with its
database under ``HOME`` (``CURATE_PREFECT_HOME``, default ``~/.local/share/curate/prefect``), waits
until it answers, and prints the ``PREFECT_API_URL`` to export; ``down`` stops it. A team with its
own Prefect server (or Prefect Cloud) skips this and exports ``PREFECT_API_URL`` (and
``PREFECT_API_KEY``) instead.

Example:
    >>> # info = server_up(port=4200); info["api_url"]  -> 'http://127.0.0.1:4200/api'
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from curate.background import pid_alive

DEFAULT_HOME = Path.home() / ".local" / "share" / "curate" / "prefect"


def home_dir(home: Path | None = None) -> Path:
    return Path(home or os.environ.get("CURATE_PREFECT_HOME") or DEFAULT_HOME)


def _state_file(home: Path) -> Path:
    return home / "server.json"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect API answers its health check at ``api_url``."""
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def server_status(home: Path | None = None) -> dict[str, Any]:
    """``{"running": bool, "pid", "api_url", "ui_url", "home", "log"}`` of the server ``up`` started."""
    h = home_dir(home)
    state = _state_file(h)
    if not state.exists():
        return {"running": False, "home": str(h)}
    info = json.loads(state.read_text())
    info["running"] = pid_alive(info["pid"]) and healthy(info["api_url"])
    return info


def server_up(
    home: Path | None = None, host: str = "127.0.0.1", port: int = 4200, wait: float = 90.0
) -> dict[str, Any]:
    """Start the server in the background (or report the one already running); returns its status."""
    h = home_dir(home)
    current = server_status(h)
    if current["running"]:
        return {**current, "started": False}
    h.mkdir(parents=True, exist_ok=True)
    api_url = f"http://{host}:{port}/api"
    if healthy(api_url):
        raise RuntimeError(f"something already answers on {api_url}; pick another --port or stop it")
    log = h / "server.log"
    env = {**os.environ, "PREFECT_HOME": str(h), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)  # the server itself must not point at another API
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # survives the terminal that started it; `down` stops the whole group
        )
    info = {"pid": proc.pid, "api_url": api_url, "ui_url": f"http://{host}:{port}", "home": str(h), "log": str(log)}
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}; see {log}")
        if healthy(api_url):
            _state_file(h).write_text(json.dumps(info))
            return {**info, "running": True, "started": True}
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise RuntimeError(f"prefect server did not answer within {wait:.0f} s; see {log}")


def server_down(home: Path | None = None, wait: float = 20.0) -> bool:
    """Stop the server ``up`` started; returns whether one was running."""
    h = home_dir(home)
    state = _state_file(h)
    if not state.exists():
        return False
    pid = json.loads(state.read_text())["pid"]
    was = pid_alive(pid)
    if was:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    state.unlink()
    return was
