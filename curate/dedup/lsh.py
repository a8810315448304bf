"""LSH banding over MinHash signatures: candidate pairs, verification, clusters, representatives.

The shape scales out: signatures are computed per shard (map), banding is one global group-by on
band keys (here a sort per band), clusters are connected components of the verified pairs
(scipy), and each shard is filtered by the resulting keep mask.

Example:
    >>> optimal_bands(0.8, 128)
    (9, 13)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Literal

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from curate.dedup.minhash import Sketch, estimated_jaccard, exact_jaccard, mix64

ALL_PAIRS_MAX_GROUP = 32
"""Buckets up to this size yield every pair; larger buckets yield a star to their first member."""


def _candidate_probability(s: np.ndarray, bands: int, rows: int) -> np.ndarray:
    return 1.0 - (1.0 - s**rows) ** bands


@lru_cache(maxsize=256)
def optimal_bands(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """``(bands, rows)`` minimizing the weighted false-positive and false-negative probability mass
    around ``threshold`` (the criterion datasketch uses), with ``bands * rows <= num_perm``."""
    below = np.linspace(0.0, threshold, 201)
    above = np.linspace(threshold, 1.0, 201)
    best, best_err = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid(_candidate_probability(below, bands, rows), below)
            fn = np.trapezoid(1.0 - _candidate_probability(above, bands, rows), above)
            err = false_positive_weight * fp + false_negative_weight * fn
            if err < best_err - 1e-12:
                best, best_err = (bands, rows), err
    return best


def _map(fn, items: list, workers: int) -> list:
    """``map`` over threads when ``workers > 1`` (numpy sorts and the kernels release the GIL)."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def band_keys(sig: np.ndarray, bands: int, rows: int, workers: int = 1) -> np.ndarray:
    """``docs x bands`` uint64 keys: each band's ``rows`` signature values hashed together."""
    d = sig.shape[0]
    keys = np.empty((d, bands), dtype=np.uint64)
    mult = mix64(np.arange(1, rows + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)

    def one(b: int) -> None:
        block = sig[:, b * rows : (b + 1) * rows].astype(np.uint64)
        acc = (block * mult).sum(axis=1, dtype=np.uint64)
        keys[:, b] = mix64(acc ^ np.uint64(b))

    _map(one, list(range(bands)), workers)
    return keys


def _pairs_in_groups(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out_a, out_b = [], []
    small = sizes <= ALL_PAIRS_MAX_GROUP
    for m in np.unique(sizes[small]):
        s = starts[small & (sizes == m)]
        i, j = np.triu_indices(int(m), 1)
        out_a.append(order[(s[:, None] + i).ravel()])
        out_b.append(order[(s[:, None] + j).ravel()])
    for s, m in zip(starts[~small].tolist(), sizes[~small].tolist(), strict=True):
        out_a.append(np.full(m - 1, order[s]))
        out_b.append(order[s + 1 : s + m])
    if not out_a:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_a), np.concatenate(out_b)


def candidate_pairs(
    keys: np.ndarray, active: np.ndarray, side: np.ndarray | None = None, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs ``(a < b)`` of active documents that share a key in any band.

    With ``side`` (0/1 per document), only pairs across the two sides are returned, as
    ``(a on side 0, b on side 1)``. Bands are independent, so ``workers`` threads share them.
    """
    d = keys.shape[0]
    docs = np.flatnonzero(active)

    def one(b: int) -> np.ndarray:
        order = docs[np.argsort(keys[docs, b], kind="stable")]
        ks = keys[order, b]
        change = np.ones(ks.size, bool)
        change[1:] = ks[1:] != ks[:-1]
        starts = np.flatnonzero(change)
        sizes = np.diff(np.append(starts, ks.size))
        multi = sizes > 1
        a, c = _pairs_in_groups(order, starts[multi], sizes[multi])
        if side is not None:
            cross = side[a] != side[c]
            a, c = a[cross], c[cross]
            a, c = np.where(side[a] == 0, a, c), np.where(side[a] == 0, c, a)
        else:
            a, c = np.minimum(a, c), np.maximum(a, c)
        return a.astype(np.int64) * d + c

    found = _map(one, list(range(keys.shape[1])), workers)
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    codes = np.unique(np.concatenate(found))
    return codes // d, codes % d


Verify = Literal["exact", "estimate", "none"]


@dataclass
class Pairs:
    """Candidate pairs, and those that passed verification with their similarity."""

    candidates: int
    a: np.ndarray
    b: np.ndarray
    similarity: np.ndarray


def verify_pairs(
    sk: Sketch,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    how: Verify,
    other: Sketch | None = None,
    workers: int = 1,
) -> Pairs:
    """Keep pairs whose Jaccard (exact shingle sets, or estimated from signatures) >= threshold.

    ``other``: the sketch ``b`` indexes into (cross-set); defaults to ``sk``.
    """
    other = sk if other is None else other
    if how == "none":
        sim = (sk.signatures[a] == other.signatures[b]).mean(axis=1) if a.size else np.empty(0)
        return Pairs(a.size, a, b, sim)
    if how == "exact":
        sk.unique_sets(), other.unique_sets()  # prepare once, before threads share them
        bounds = np.linspace(0, a.size, max(1, workers) + 1).astype(np.int64)
        spans = [(int(lo), int(hi)) for lo, hi in pairwise(bounds)]
        parts = _map(lambda span: exact_jaccard(sk, a[span[0] : span[1]], other, b[span[0] : span[1]]), spans, workers)
        sim = np.concatenate(parts) if parts else np.empty(0)
    elif other is sk:
        sim = estimated_jaccard(sk.signatures, a, b)
    else:
        sim = (sk.signatures[a] == other.signatures[b]).mean(axis=1) if a.size else np.empty(0)
    keep = sim >= threshold
    return Pairs(a.size, a[keep], b[keep], sim[keep])


def clusters(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of every document given undirected edges ``a[i] - b[i]``."""
    graph = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def representatives(labels: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """For each document, the member of its cluster with the lowest ``priority`` (ties: lowest index)."""
    n = labels.size
    order = np.lexsort((np.arange(n), priority, labels))
    first = np.ones(n, bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    rep_of_label = np.empty(labels.max() + 1 if n else 0, np.int64)
    rep_of_label[labels[order][first]] = order[first]
    return rep_of_label[labels]
