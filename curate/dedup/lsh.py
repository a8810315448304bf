"""LSH banding over MinHash signatures: candidate pairs, verification, clusters, representatives.

The shape scales out: signatures are computed per shard (map), banding is one global group-by on
band keys (here a sort per band), clusters are connected components of the verified pairs
(scipy), and each shard is filtered by the resulting keep mask.

Every removed row is linked to a row it really resembles: :func:`spanning_links` walks a
maximum-similarity spanning tree of each cluster from its representative (so on a chain
A~B~C each row names its neighbour, not A), and :func:`kept_links` is the non-transitive rule
(a row goes only when it resembles a row that stays).

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
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

from curate.dedup.kernels import greedy_links
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


def edge_similarity(
    n: int, a: np.ndarray, b: np.ndarray, similarity: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Similarity of the edges ``x[i] - y[i]``, each of which must be one of the pairs ``a - b``."""
    codes = np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)
    order = np.argsort(codes, kind="stable")
    want = np.minimum(x, y).astype(np.int64) * n + np.maximum(x, y)
    pos = np.searchsorted(codes[order], want)
    if want.size and not np.array_equal(codes[order][np.minimum(pos, codes.size - 1)], want):
        raise ValueError("edge_similarity: a requested edge is not among the pairs")
    return similarity[order[pos]]


def spanning_links(
    n: int, a: np.ndarray, b: np.ndarray, similarity: np.ndarray, rep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Transitive removal, explained: for every row that is not its cluster's representative, the
    neighbour that links it towards ``rep`` and their similarity (others: -1 and NaN).

    The links are a maximum-similarity spanning tree of each cluster (scipy's minimum spanning tree on
    ``2 - similarity``), rooted at its representative: each link is a verified pair, the strongest
    set of pairs that still connects the cluster, and following links from any row ends at the
    representative.

    Example (the chain 0~1~2, 2~3, with 0 the representative):
        >>> a, b = np.array([0, 1, 2]), np.array([1, 2, 3])
        >>> parent, sim = spanning_links(4, a, b, np.array([0.7, 0.9, 0.8]), np.zeros(4, np.int64))
        >>> parent.tolist(), sim.round(1).tolist()[1:]
        ([-1, 0, 1, 2], [0.7, 0.9, 0.8])
    """
    parent = np.full(n, -1, np.int64)
    link_sim = np.full(n, np.nan)
    if a.size == 0:
        return parent, link_sim
    # the graph holds only the m rows in pairs (local indices), not all n
    nodes, local = np.unique(np.concatenate([a, b]), return_inverse=True)
    m = nodes.size
    la, lb = local[: a.size], local[a.size :]
    roots = np.flatnonzero(rep[nodes] == nodes)
    # a virtual node m joins every representative by an edge lighter than any pair, so one tree
    # search from it reaches every cluster through its representative
    src = np.concatenate([la, np.full(roots.size, m)])
    dst = np.concatenate([lb, roots])
    weight = np.concatenate([2.0 - similarity, np.full(roots.size, 0.5)])
    tree = minimum_spanning_tree(csr_matrix((weight, (src, dst)), shape=(m + 1, m + 1)))
    _, pred = breadth_first_order(tree, m, directed=False, return_predecessors=True)
    pred = pred[:m]
    linked = np.flatnonzero((pred >= 0) & (pred != m))
    child, via = nodes[linked], nodes[pred[linked]]
    parent[child] = via
    link_sim[child] = edge_similarity(n, a, b, similarity, child, via)
    return parent, link_sim


def kept_links(
    n: int,
    a: np.ndarray,
    b: np.ndarray,
    similarity: np.ndarray,
    priority: np.ndarray,
    always_kept: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Non-transitive removal: rows in priority order (lower first, ties by index); a row is removed
    only when a verified pair joins it to a row already kept, and is linked to the most similar such
    row. Returns ``(parent, similarity)`` (-1 and NaN for kept rows).

    Example (the chain 0~1~2~3, first wins): 0 stays, 1 goes (like 0), 2 stays (its only kept-side
    neighbour, 1, went), 3 goes (like 2):
        >>> a, b = np.array([0, 1, 2]), np.array([1, 2, 3])
        >>> kept_links(4, a, b, np.full(3, 0.7), np.arange(4.0))[0].tolist()
        [-1, 0, -1, 2]
    """
    parent = np.full(n, -1, np.int64)
    link_sim = np.full(n, np.nan)
    if a.size == 0:
        return parent, link_sim
    # a CSR graph over only the m rows in pairs (local indices), not all n
    nodes, local = np.unique(np.concatenate([a, b]), return_inverse=True)
    m = nodes.size
    src, dst = local, np.concatenate([local[a.size :], local[: a.size]])
    sims = np.concatenate([similarity, similarity]).astype(np.float64)
    by_src = np.argsort(src, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=m))]).astype(np.int64)
    order = np.lexsort((nodes, priority[nodes])).astype(np.int64)
    fixed = np.zeros(m, bool) if always_kept is None else np.asarray(always_kept, bool)[nodes]
    sub_parent, sub_sim = np.full(m, -1, np.int64), np.full(m, np.nan)
    greedy_links(order, indptr, dst[by_src].astype(np.int64), sims[by_src], fixed, sub_parent, sub_sim)
    gone = np.flatnonzero(sub_parent >= 0)
    parent[nodes[gone]] = nodes[sub_parent[gone]]
    link_sim[nodes[gone]] = sub_sim[gone]
    return parent, link_sim
