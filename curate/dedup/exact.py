"""Exact dedup on normalized key text, vectorized: hash, then the best-priority row per hash stays.

Example:
    >>> import numpy as np, polars as pl
    >>> from schemas.stages import Normalization
    >>> keys = pl.Series(["Hello, world!", "hello world", "other"])
    >>> exact_duplicates(keys, Normalization(), np.arange(3.0)).dup_of.tolist()
    [-1, 0, -1]
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers .nchash)

from curate.dedup.decisions import DedupDecision
from curate.dedup.normalize import normalize_series
from schemas.stages import Normalization


def key_hashes(keys: pl.Series, norm: Normalization) -> pl.Series:
    """128-bit xxh3 of each normalized key (UInt128: 16 bytes per row, whatever the text length)."""
    return normalize_series(keys, norm).to_frame("t").select(pl.col("t").nchash.xxh3_128()).to_series()


def exact_duplicates(keys: pl.Series, norm: Normalization, priority: np.ndarray) -> DedupDecision:
    """Rows whose normalized key equals a better-priority row's are duplicates of that row.

    The 128-bit xxh3 hash of the normalized text stands for it (collisions are negligible at
    dataset sizes: about 1e-20 for a billion rows).
    """
    started = time.perf_counter()
    return exact_from_hashes(key_hashes(keys, norm), priority, started)


def exact_from_hashes(hashes: pl.Series, priority: np.ndarray, started: float | None = None) -> DedupDecision:
    """:func:`exact_duplicates` from the rows' :func:`key_hashes` (computed part by part: no text is held).

    Example:
        >>> import numpy as np, polars as pl
        >>> h = key_hashes(pl.Series(["Hello, world!", "hello world", "other"]), Normalization())
        >>> exact_from_hashes(h, np.arange(3.0)).dup_of.tolist()
        [-1, 0, -1]
    """
    started = time.perf_counter() if started is None else started
    n = len(hashes)
    df = pl.DataFrame({"h": hashes, "p": priority, "i": np.arange(n, dtype=np.int64)})
    # one sort instead of a window per group: millions of one-row groups cost a window far more
    # memory than sorting three fixed-width columns; the first row of each hash run is its
    # best (priority, index) row, as with sort_by(p, i).first().over(h)
    ordered = df.sort(["h", "p", "i"])
    first = ordered["h"].is_first_distinct()
    best = ordered["i"].filter(first).gather(first.cum_sum() - 1)
    rep = np.empty(n, np.int64)
    rep[ordered["i"].to_numpy()] = best.to_numpy()
    del ordered, first, best
    dup_of = np.where(rep == np.arange(n), -1, rep)
    sim = np.where(dup_of >= 0, 1.0, np.nan)
    stats = {"rows": n, "duplicates": int((dup_of >= 0).sum()), "seconds": round(time.perf_counter() - started, 4)}
    return DedupDecision(dup_of, sim, stats)
