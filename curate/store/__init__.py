"""Versioned datasets: a Delta Lake table per dataset, manifests, deterministic splits, loading.

The names below load on first use, so light modules (``refs``, ``location``) import without deltalake.
"""

from __future__ import annotations

from typing import Any

from curate.store.refs import RefError, StoreError, parse_ref

__all__ = ["Published", "RefError", "Store", "StoreError", "content_hash", "parse_ref"]


def __getattr__(name: str) -> Any:
    if name in ("Published", "Store", "content_hash"):
        from curate.store import store

        return getattr(store, name)
    raise AttributeError(f"module 'curate.store' has no attribute {name!r}")
