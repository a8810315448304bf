"""The local Argilla server: its own virtual environment, credentials, start, stop and status.

``argilla-server`` 2.8.0 cannot share our virtual environment (its typer/pydantic/fastapi pins
conflict with Prefect's), so it gets its own, created on first use from the exact pins in
``argilla-server/requirements.lock`` (next to this file). It runs as a detached subprocess of
``argilla-server/launcher.py`` (see that file: a search engine over Argilla's SQLite database, jobs in-process
unless ``ARGILLA_REDIS_URL`` is set, no temp-dir leak).

Home layout (``CURATE_ARGILLA_HOME``, default ``~/.local/share/curate/argilla``)::

    venv/               the server's virtual environment (or CURATE_ARGILLA_VENV)
    server/argilla.db   SQLite database (Argilla's home path)
    credentials.json    owner username, password, API key (mode 0600)
    auth_secret         session-signing secret, stable across restarts (mode 0600)
    server.json         pid, host, port, url of the running server
    logs/server.log     the server's output
    tmp/                per-process temp dirs (the UI copy), removed at exit and swept on up/down

Example:
    >>> home = ArgillaHome("/tmp/does-not-exist-curate-home")
    >>> home.status()["running"]
    False
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from curate.background import free_port, pid_alive

SERVER_FILES = Path(__file__).with_name("argilla-server")  # not a package: it runs in the server's own venv
LOCK_FILE = SERVER_FILES / "requirements.lock"
LAUNCHER = SERVER_FILES / "launcher.py"
DEFAULT_PORT = 6900
SERVER_VERSION = "2.8.0"
LOG_MAX_BYTES = 10_000_000


class ServerError(RuntimeError):
    """The local server could not be installed, started or reached; the message says what to do."""


def default_home() -> Path:
    """``$CURATE_ARGILLA_HOME`` or ``~/.local/share/curate/argilla``."""
    env = os.environ.get("CURATE_ARGILLA_HOME")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "curate" / "argilla"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


@dataclass(frozen=True)
class Credentials:
    """The owner account of a local server (never logged; ``repr`` hides the secrets)."""

    username: str
    password: str
    api_key: str
    workspace: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***, api_key=***, workspace={self.workspace!r})"


class ArgillaHome:
    """One local Argilla installation (see the module docstring for the layout)."""

    def __init__(self, path: str | Path | None = None, venv: str | Path | None = None):
        self.path = Path(path).expanduser() if path else default_home()
        venv = venv or os.environ.get("CURATE_ARGILLA_VENV")
        self.venv = Path(venv).expanduser() if venv else self.path / "venv"

    # paths
    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def credentials_file(self) -> Path:
        return self.path / "credentials.json"

    @property
    def state_file(self) -> Path:
        return self.path / "server.json"

    @property
    def log_file(self) -> Path:
        return self.path / "logs" / "server.log"

    @property
    def tmp(self) -> Path:
        return self.path / "tmp"

    # virtual environment
    def venv_ready(self) -> bool:
        """The server venv exists and was built from the current lock file."""
        stamp = self.venv / ".curate-lock-sha256"
        return self.python.exists() and stamp.exists() and stamp.read_text().strip() == _lock_digest()

    def install(self, quiet: bool = True) -> Path:
        """Create the server's virtual environment from the lock file (no-op when up to date)."""
        if self.venv_ready():
            return self.venv
        base = getattr(sys, "_base_executable", None) or sys.executable
        if not self.python.exists():
            run = subprocess.run([base, "-m", "venv", str(self.venv)], capture_output=True, text=True)
            if run.returncode != 0:
                raise ServerError(f"could not create {self.venv}: {run.stderr.strip()}")
        cmd = [str(self.python), "-m", "pip", "install", "--no-deps", "--disable-pip-version-check"]
        cmd += ["--quiet"] if quiet else []
        run = subprocess.run([*cmd, "-r", str(LOCK_FILE)], capture_output=True, text=True)
        if run.returncode != 0:
            tail = "\n".join(run.stderr.strip().splitlines()[-15:])
            raise ServerError(
                f"installing argilla-server {SERVER_VERSION} into {self.venv} failed (pip needs the package index):\n"
                f"{tail}"
            )
        (self.venv / ".curate-lock-sha256").write_text(_lock_digest())
        return self.venv

    # credentials
    def credentials(self, create: bool = False) -> Credentials | None:
        """The owner credentials (generated on first use with ``create``), or None."""
        if self.credentials_file.exists():
            return Credentials(**json.loads(self.credentials_file.read_text(encoding="utf-8")))
        if not create:
            return None
        creds = Credentials(
            username="argilla",
            password=secrets.token_urlsafe(18),
            api_key="curate." + secrets.token_urlsafe(32),
            workspace="argilla",
        )
        _write_private(self.credentials_file, json.dumps(creds.__dict__, indent=2))
        return creds

    def auth_secret(self) -> str:
        """The session-signing secret, generated once: sign-ins survive restarts."""
        path = self.path / "auth_secret"
        if not path.exists():
            _write_private(path, secrets.token_hex(32))
        return path.read_text().strip()

    # process
    def _state(self) -> dict[str, Any] | None:
        if not self.state_file.exists():
            return None
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return state if pid_alive(int(state.get("pid", -1))) else None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGILLA_", "VIRTUAL_ENV"))}
        if os.environ.get("ARGILLA_REDIS_URL"):
            env["ARGILLA_REDIS_URL"] = os.environ["ARGILLA_REDIS_URL"]
        env.update(
            ARGILLA_HOME_PATH=str(self.path / "server"),
            ARGILLA_AUTH_SECRET_KEY=self.auth_secret(),
            ARGILLA_SEARCH_ENGINE="curate_db",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_OFFLINE="1",
            CURATE_ARGILLA_TMP=str(self.tmp),
            CURATE_ARGILLA_CREDENTIALS=str(self.credentials_file),
            PYTHONUNBUFFERED="1",
        )
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def sweep_tmp(self) -> int:
        """Remove temp folders of server processes that are gone; returns how many."""
        if not self.tmp.exists():
            return 0
        removed = 0
        for child in self.tmp.iterdir():
            if not (child.name.isdigit() and pid_alive(int(child.name))):
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
        return removed

    def up(self, host: str = "127.0.0.1", port: int | None = None, timeout: float = 90.0) -> dict[str, Any]:
        """Start the server (installing it first if needed) and wait until it answers; returns :meth:`status`.

        Already running: returns its status unchanged. ``port=None`` takes 6900, or a free port when
        6900 is taken. Two ``up`` on one home at once start one server (a file lock serializes them).
        """
        if not self.path.exists():
            self.path.mkdir(parents=True, mode=0o700)  # credentials, secret and database live here
        with (self.path / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._up(host, port, timeout)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _up(self, host: str, port: int | None, timeout: float) -> dict[str, Any]:
        state = self._state()
        if state is not None:
            return self.status()
        self.sweep_tmp()
        self.install()
        creds = self.credentials(create=True)
        assert creds is not None
        if port is None:
            port = DEFAULT_PORT if _port_free(host, DEFAULT_PORT) else free_port(host)
        elif not _port_free(host, port):
            raise ServerError(f"port {port} on {host} is in use: pick another with --port, or --port 0 for a free one")
        if port == 0:
            port = free_port(host)
        env = self._env()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists() and self.log_file.stat().st_size > LOG_MAX_BYTES:  # keep one old log
            self.log_file.replace(self.log_file.with_suffix(".log.1"))
        stamp = self.path / "server" / ".curate-initialized"
        if not (stamp.exists() and stamp.read_text() == _lock_digest()):  # migrate once per server version
            init = subprocess.run(
                [str(self.python), str(LAUNCHER), "init"], env=env, cwd=self.path, capture_output=True, text=True
            )
            if init.returncode != 0:
                self.log_file.write_text(init.stdout + init.stderr)
                raise ServerError(f"database setup failed; see {self.log_file}:\n{_tail(init.stderr)}")
            stamp.write_text(_lock_digest())
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [str(self.python), str(LAUNCHER), "serve", "--host", host, "--port", str(port)],
                env=env,
                cwd=self.path,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            worker = None
            if env.get("ARGILLA_REDIS_URL"):  # jobs go through Redis: start a worker beside the server
                worker = subprocess.Popen(
                    [str(self.python), str(LAUNCHER), "worker"],
                    env=env,
                    cwd=self.path,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        state = {"pid": proc.pid, "host": host, "port": port, "url": url, "started_at": time.time()}
        if worker is not None:
            state["worker_pid"] = worker.pid
        _write_private(self.state_file, json.dumps(state))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.state_file.unlink(missing_ok=True)
                if worker is not None:
                    worker.terminate()
                raise ServerError(
                    f"the server exited (code {proc.returncode}); see {self.log_file}:\n"
                    f"{_tail(self.log_file.read_text(errors='replace'))}"
                )
            if _health(url, creds.api_key) is not None:
                return self.status()
            time.sleep(0.1)
        self.down()
        raise ServerError(f"the server did not answer within {timeout:.0f} s; see {self.log_file}")

    def down(self, timeout: float = 15.0) -> bool:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); True if one was running."""
        state = self._state()
        self.state_file.unlink(missing_ok=True)
        if state is None:
            self.sweep_tmp()
            return False
        pids = [int(state["pid"]), *([int(state["worker_pid"])] if state.get("worker_pid") else [])]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.1)
        for pid in pids:
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        time.sleep(0.1)
        self.sweep_tmp()
        return True

    def status(self) -> dict[str, Any]:
        """``running``, ``url``, ``pid``, ``version``, ``healthy``, ``home`` (no secrets)."""
        state = self._state()
        out: dict[str, Any] = {"home": str(self.path), "running": state is not None, "venv_ready": self.venv_ready()}
        if state is None:
            return out
        creds = self.credentials()
        info = _health(state["url"], creds.api_key) if creds else None
        out.update(
            url=state["url"],
            pid=state["pid"],
            host=state["host"],
            port=state["port"],
            healthy=info is not None,
            jobs="redis worker" if state.get("worker_pid") else "in-process",
            version=(info or {}).get("version"),
            search_engine=((info or {}).get("search_engine") or {}).get("engine"),
            username=creds.username if creds else None,
        )
        return out

    def url(self) -> str | None:
        """URL of the running server, or None."""
        state = self._state()
        return state["url"] if state else None


def _lock_digest() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _health(url: str, api_key: str) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{url}/api/v1/status", headers={"X-Argilla-Api-Key": api_key}, timeout=2.0)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
