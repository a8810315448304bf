"""Near-duplicate dedup: MinHash (OPH) signatures -> LSH bands -> verified pairs -> clusters.

State kept per document is its signature (``num_perm`` x 4 bytes) and band keys (``bands`` x 8
bytes); shingles are recomputed only for documents in candidate pairs when verifying exactly. At
scale, :func:`near_from_bands` keeps only the band keys (computed per shard from its signatures)
and re-reads the texts of candidate documents.

Example:
    >>> import numpy as np, polars as pl
    >>> from schemas.stages import NearDedupStage
    >>> base = " ".join(f"word{i}" for i in range(60))
    >>> keys = pl.Series([base, base + " extra", "something else entirely " * 5])
    >>> near_duplicates(keys, NearDedupStage(type="near_dedup"), np.arange(3.0)).dup_of.tolist()
    [-1, 0, -1]
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import polars as pl

from curate.dedup.decisions import DedupDecision
from curate.dedup.lsh import (
    Pairs,
    band_keys,
    candidate_pairs,
    clusters,
    kept_links,
    optimal_bands,
    representatives,
    spanning_links,
    verify_pairs,
)
from curate.dedup.minhash import Sketch, sketch
from schemas.stages import MinHashParams, NearDedupStage, Verify

VERIFY_DOCS = 262_144
"""At most this many documents' texts and shingles are held at once while verifying candidate pairs."""


def lsh_shape(
    threshold: float, p: MinHashParams, bands: int | None, rows: int | None, verify: Verify = "exact"
) -> tuple[int, int]:
    """The configured ``(bands, rows)``, or the optimal ones for ``threshold``.

    Unverified candidates are final, so false positives and negatives weigh the same (datasketch's
    criterion, 9 x 13 at 0.8). Verified candidates only cost a check, so misses weigh 0.9: at 0.8
    that gives 14 x 9, which finds a pair at exactly 0.8 with probability 0.87 (vs 0.40) and about
    98% of pairs spread over [0.8, 1] (vs 83%).
    """
    if bands is not None and rows is not None:
        return bands, rows
    if verify == "none":
        return optimal_bands(threshold, p.num_perm)
    return optimal_bands(threshold, p.num_perm, 0.1, 0.9)


def verified_pairs(
    keys: pl.Series,
    sk: Sketch,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    how: Verify,
    p: MinHashParams,
    workers: int = 1,
) -> Pairs:
    """Verify candidate pairs; exact verification sketches only the documents involved."""
    if how != "exact" or a.size == 0:
        return verify_pairs(sk, a, b, threshold, how)
    return verify_by_texts(keys.gather, a, b, threshold, how, p, workers)


def verify_by_texts(
    texts_of: Callable[[np.ndarray], pl.Series],
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    how: Verify,
    p: MinHashParams,
    workers: int = 1,
) -> Pairs:
    """Verify candidate pairs from the texts of only the documents involved (``texts_of(rows)``).

    Signatures are deterministic per text, so re-sketching the involved documents gives the very
    signatures (and, for ``exact``, shingles) the candidates came from: nothing else is held.
    """
    if a.size == 0:
        return Pairs(0, a, b, np.empty(0))
    # in chunks of pairs, so the texts and shingles held at once are bounded (pairs are independent,
    # so the concatenated chunks equal one pass)
    step = max(1, VERIFY_DOCS // 2)
    found_a, found_b, found_s = [], [], []
    for lo in range(0, a.size, step):
        ca, cb = a[lo : lo + step], b[lo : lo + step]
        involved = np.unique(np.concatenate([ca, cb]))
        sub = sketch(texts_of(involved), p, keep_shingles=how == "exact", workers=workers)
        la, lb = np.searchsorted(involved, ca), np.searchsorted(involved, cb)
        part = verify_pairs(sub, la, lb, threshold, how, workers=workers)
        found_a.append(involved[part.a])
        found_b.append(involved[part.b])
        found_s.append(part.similarity)
        del sub
    return Pairs(int(a.size), np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s))


def near_duplicates(
    keys: pl.Series, stage: NearDedupStage, priority: np.ndarray, sk: Sketch | None = None
) -> DedupDecision:
    """Decide near-duplicates among ``keys`` (one text per row) under ``stage``'s parameters.

    ``sk``: signatures computed beforehand (per shard, in parallel) for exactly these keys; the
    global phase then only bands, verifies and clusters.
    """
    t0 = time.perf_counter()
    p = stage.minhash
    if sk is None:
        sk = sketch(keys, p, keep_shingles=False, workers=stage.workers)
    bands, rows = lsh_shape(stage.threshold, p, stage.bands, stage.rows, stage.verify)
    keys_b = band_keys(sk.signatures, bands, rows, stage.workers)
    seconds = time.perf_counter() - t0
    if stage.verify == "exact":
        return near_from_bands(keys_b, sk.empty, stage, priority, keys.gather, seconds)
    # verification from the signatures at hand (they cover every row)
    return near_from_bands(keys_b, sk.empty, stage, priority, keys.gather, seconds, sk)


def near_from_bands(
    keys_b: np.ndarray,
    empty: np.ndarray,
    stage: NearDedupStage,
    priority: np.ndarray,
    texts_of: Callable[[np.ndarray], pl.Series],
    signature_seconds: float = 0.0,
    sk: Sketch | None = None,
    always_kept: np.ndarray | None = None,
) -> DedupDecision:
    """Phase 2 of near-dedup from band keys alone: candidates, verification, clusters, representatives.

    Inputs: ``keys_b`` (rows x bands uint64, :func:`curate.dedup.lsh.band_keys`), ``empty`` (rows
    without shingles), ``priority`` (lower wins), and ``texts_of(rows)``, which returns the key
    texts of the given (sorted) rows: only the documents in candidate pairs are read again and
    re-sketched for verification. Memory: ``bands`` x 8 bytes per row instead of the signatures
    (``num_perm`` x 4) and the texts. ``always_kept``: rows never removed (published rows in a
    refresh; they also win by ``priority``). Output: the :class:`DedupDecision`, whose ``dup_of``
    names for each removed row the neighbour that linked it (a verified pair) and whose
    ``representative`` names the row that stays for it: under ``clusters: connected`` the best of
    its connected component (removal is transitive along chains), under ``non_transitive`` the kept
    row it resembles (then the two are the same).

    Example:
        >>> import numpy as np, polars as pl
        >>> from curate.dedup.minhash import sketch
        >>> base = " ".join(f"word{i}" for i in range(60))
        >>> keys = pl.Series([base, base + " extra", "something else entirely " * 5])
        >>> st = NearDedupStage(type="near_dedup")
        >>> sig = sketch(keys, st.minhash, keep_shingles=False).signatures
        >>> kb = band_keys(sig, *lsh_shape(0.8, st.minhash, None, None))
        >>> near_from_bands(kb, np.zeros(3, bool), st, np.arange(3.0), keys.gather).dup_of.tolist()
        [-1, 0, -1]
    """
    t1 = time.perf_counter()
    a, b = candidate_pairs(keys_b, ~empty, workers=stage.workers)
    band_seconds = time.perf_counter() - t1
    return near_from_candidates(
        keys_b.shape[0], a, b, stage, priority, texts_of, signature_seconds, band_seconds, sk, always_kept
    )


def near_from_candidates(
    n: int,
    a: np.ndarray,
    b: np.ndarray,
    stage: NearDedupStage,
    priority: np.ndarray,
    texts_of: Callable[[np.ndarray], pl.Series],
    signature_seconds: float = 0.0,
    band_seconds: float = 0.0,
    sk: Sketch | None = None,
    always_kept: np.ndarray | None = None,
) -> DedupDecision:
    """:func:`near_from_bands` from its candidate pairs ``(a, b)`` over ``n`` rows
    (:func:`curate.dedup.lsh.candidate_pairs`), so a caller can free the band keys before verifying.

    Example:
        >>> import numpy as np, polars as pl
        >>> base = " ".join(f"word{i}" for i in range(60))
        >>> keys = pl.Series([base, base + " extra", "something else entirely " * 5])
        >>> st = NearDedupStage(type="near_dedup")
        >>> near_from_candidates(3, np.array([0]), np.array([1]), st, np.arange(3.0), keys.gather).dup_of.tolist()
        [-1, 0, -1]
    """
    t2 = time.perf_counter()
    p = stage.minhash
    bands, rows = lsh_shape(stage.threshold, p, stage.bands, stage.rows, stage.verify)
    if sk is not None and stage.verify != "exact":
        pairs = verify_pairs(sk, a, b, stage.threshold, stage.verify)
    else:
        pairs = verify_by_texts(texts_of, a, b, stage.threshold, stage.verify, p, stage.workers)
    t3 = time.perf_counter()
    if stage.clusters == "connected":
        rep = representatives(clusters(n, pairs.a, pairs.b), priority)
        dup_of, sim = spanning_links(n, pairs.a, pairs.b, pairs.similarity, rep)
        representative = np.where(dup_of >= 0, rep, -1)
    else:
        dup_of, sim = kept_links(n, pairs.a, pairs.b, pairs.similarity, priority, always_kept)
        representative = dup_of
    stats = {
        "rows": n,
        "bands": bands,
        "rows_per_band": rows,
        "candidate_pairs": int(pairs.candidates),
        "verified_pairs": int(pairs.a.size),
        "clusters": stage.clusters,
        "clusters_with_duplicates": int(np.unique(representative[dup_of >= 0]).size),
        "duplicates": int((dup_of >= 0).sum()),
        "state_bytes_per_doc": int(p.num_perm * 4 + bands * 8),
        "phase2_bytes_per_doc": int(bands * 8),
        "seconds": {
            "signatures": round(signature_seconds, 4),
            "bands": round(band_seconds, 4),
            "verify": round(t3 - t2, 4),
            "clusters": round(time.perf_counter() - t3, 4),
        },
    }
    return DedupDecision(dup_of, sim, stats, pairs, representative)
