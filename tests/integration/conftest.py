"""Fixtures for the integration tests: the real local Argilla server (issue 6).

The server runs once per test session *per xdist worker* (each worker gets its own temporary home
and a free port, so two workers never clash); tests using it are marked
``xdist_group("argilla")`` so that, with ``--dist loadgroup`` (the Makefile's), they share one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_VENV = Path(os.environ.get("CURATE_ARGILLA_VENV") or ROOT / ".argilla-server-venv")


@dataclass(frozen=True)
class LocalArgilla:
    """A running local server: its home (credentials inside), URL and the env to reach it."""

    home: Path
    venv: Path
    url: str

    def env(self) -> dict[str, str]:
        """Environment for a `curate` subprocess that should use this server."""
        env = {k: v for k, v in os.environ.items() if k not in ("ARGILLA_API_URL", "ARGILLA_API_KEY")}
        env.update(CURATE_ARGILLA_HOME=str(self.home), CURATE_ARGILLA_VENV=str(self.venv))
        return env


@pytest.fixture(scope="session")
def argilla_venv() -> Path:
    """The argilla-server venv built by `make argilla-server` (skips the test when missing)."""
    from curate.annotate.server import ArgillaHome

    if not ArgillaHome(ROOT / ".no-home", venv=SERVER_VENV).venv_ready():
        pytest.skip(f"argilla-server venv missing at {SERVER_VENV}: run `make argilla-server` (make test does)")
    return SERVER_VENV


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArgilla]:
    """Start the real argilla-server (temporary home, free port) for the session; stop it after."""
    from curate.annotate.server import ArgillaHome

    home = ArgillaHome(tmp_path_factory.mktemp("argilla-home"), venv=SERVER_VENV)
    if not home.venv_ready():
        pytest.skip(f"argilla-server venv missing at {SERVER_VENV}: run `make argilla-server` (make test does)")
    saved = {k: os.environ.pop(k) for k in ("ARGILLA_API_URL", "ARGILLA_API_KEY") if k in os.environ}
    os.environ["CURATE_ARGILLA_HOME"] = str(home.path)
    os.environ["CURATE_ARGILLA_VENV"] = str(SERVER_VENV)
    try:
        status = home.up(port=0, timeout=180)
        yield LocalArgilla(home=home.path, venv=SERVER_VENV, url=status["url"])
    finally:
        home.down()
        os.environ.pop("CURATE_ARGILLA_HOME", None)
        os.environ.pop("CURATE_ARGILLA_VENV", None)
        os.environ.update(saved)
