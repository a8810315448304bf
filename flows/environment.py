"""Which Prefect API a command talks to, chosen before Prefect is imported.

In order: the user's ``PREFECT_API_URL`` (a team's server, Prefect Cloud); else the local server
that ``curate server up`` runs, when it answers its health check, so runs reuse it (no start-up
cost, and they appear in its UI); else Prefect's temporary server, started for this one process
(10-20 s on these machines). The local server is reused but never started implicitly: a
background service that outlives the command should be asked for (``curate server up``), and
tests and CI must not leave one behind.

Example:
    >>> import os; os.environ["PREFECT_API_URL"] = "http://127.0.0.1:9/api"
    >>> choose_api()["source"]
    'environment'
    >>> del os.environ["PREFECT_API_URL"]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
    # the temporary server needs more than Prefect's 20 s default on a busy 2-core machine
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def choose_api(home: Path | None = None) -> dict[str, Any]:
    """Set Prefect's environment for this process; returns ``{"source", "api_url"}``.

    ``source`` is ``environment`` (PREFECT_API_URL was set), ``local-server`` (the running
    ``curate server up`` server, now exported as PREFECT_API_URL) or ``temporary``.
    """
    for k, v in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(k, v)
    if os.environ.get("PREFECT_API_URL"):
        return {"source": "environment", "api_url": os.environ["PREFECT_API_URL"]}
    from flows.server import server_status

    info = server_status(home)
    if info.get("running"):
        os.environ["PREFECT_API_URL"] = info["api_url"]
        return {"source": "local-server", "api_url": info["api_url"]}
    return {"source": "temporary", "api_url": None}
