"""Versioned datasets: a Delta Lake table per dataset, manifests, deterministic splits, loading."""

from curate.store.refs import RefError, parse_ref
from curate.store.store import Published, Store, content_hash

__all__ = ["Published", "RefError", "Store", "content_hash", "parse_ref"]
