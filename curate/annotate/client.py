"""Which Argilla server to talk to: ``ARGILLA_API_URL``/``ARGILLA_API_KEY``, else the local one.

Example:
    >>> import os
    >>> os.environ["ARGILLA_API_URL"], os.environ["ARGILLA_API_KEY"] = "http://argilla:6900", "k"
    >>> c = resolve()
    >>> (c.url, c.source, "k" in repr(c))
    ('http://argilla:6900', 'env', False)
    >>> del os.environ["ARGILLA_API_URL"], os.environ["ARGILLA_API_KEY"]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.annotate.server import ArgillaHome, ServerError


@dataclass(frozen=True)
class Connection:
    """A server URL and the API key to use (the key never appears in ``repr``)."""

    url: str
    api_key: str = field(repr=False)
    source: str  # "env" or "local"

    def client(self, timeout: int = 120) -> Any:
        """An ``argilla.Argilla`` client for this server."""
        import argilla as rg

        return rg.Argilla(api_url=self.url, api_key=self.api_key, timeout=timeout)

    def headers(self) -> dict[str, str]:
        return {"X-Argilla-Api-Key": self.api_key}


def resolve(home: str | Path | None = None) -> Connection:
    """The server to use: the environment's when both variables are set, else the running local one."""
    url, key = os.environ.get("ARGILLA_API_URL"), os.environ.get("ARGILLA_API_KEY")
    if url and key:
        return Connection(url.rstrip("/"), key, "env")
    if url or key:
        missing = "ARGILLA_API_KEY" if url else "ARGILLA_API_URL"
        raise ServerError(f"{missing} is not set: set both ARGILLA_API_URL and ARGILLA_API_KEY, or neither")
    local = ArgillaHome(home)
    running = local.url()
    creds = local.credentials()
    if running is None or creds is None:
        raise ServerError(
            f"no Argilla server: start the local one with `curate argilla up` (home {local.path}), "
            "or point at yours with ARGILLA_API_URL and ARGILLA_API_KEY"
        )
    return Connection(running, creds.api_key, "local")
