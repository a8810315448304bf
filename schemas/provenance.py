"""Which code made an artifact: the one ``code_version`` both curation and training record.

Dataset manifests, run summaries and model manifests all carry a :class:`CodeVersion`; this module
is the single place that computes it (package version, git commit when run from a checkout, Python).

Example:
    >>> cv = code_version()
    >>> sorted(cv.model_dump()) == ["git_commit", "package", "python"]
    True
"""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import BaseModel, ConfigDict

DISTRIBUTION = "curate-toolkit"


class CodeVersion(BaseModel):
    """The package version, the git commit (None outside a checkout) and the Python version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package: str | None
    git_commit: str | None
    python: str


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


@lru_cache(maxsize=1)
def code_version() -> CodeVersion:
    """The code version of this process (computed once: it cannot change while it runs)."""
    try:
        pkg: str | None = version(DISTRIBUTION)
    except PackageNotFoundError:  # a source tree that was never installed
        pkg = None
    return CodeVersion(package=pkg, git_commit=_git_commit(), python=platform.python_version())
