"""Cross-set dedup: which rows exactly or nearly duplicate anything in a reference set.

The same machinery as near dedup, run across two sets: both are sketched, banded together, and
only candidate pairs that cross from the dataset to the reference are verified.

Example:
    >>> import polars as pl
    >>> from schemas.stages import DecontaminateStage, ReferenceSpec
    >>> stage = DecontaminateStage(type="decontaminate", against=[ReferenceSpec(name="e", path="x", column="q")])
    >>> q = "what is the capital city of france and why is it famous"
    >>> leaks = find_leaks(pl.Series([q + " today", "unrelated text " * 5]), pl.Series([q]), stage)
    >>> leaks.ref_index.tolist()
    [0, -1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers .nchash)

from curate.dedup.lsh import band_keys, candidate_pairs, verify_pairs
from curate.dedup.minhash import sketch
from curate.dedup.near import lsh_shape
from curate.dedup.normalize import normalize_series
from schemas.stages import DecontaminateStage


@dataclass
class Leaks:
    """Per dataset row: index of the reference row it matches (-1: none) and the similarity."""

    ref_index: np.ndarray
    similarity: np.ndarray
    exact: np.ndarray

    @property
    def leaked(self) -> np.ndarray:
        return self.ref_index >= 0


def _hashes(texts: pl.Series, stage: DecontaminateStage) -> pl.Series:
    norm = normalize_series(texts, stage.minhash.normalization)
    return norm.to_frame("t").select(pl.col("t").nchash.xxh3_128()).to_series()


def find_leaks(keys: pl.Series, ref: pl.Series, stage: DecontaminateStage) -> Leaks:
    """Match every row of ``keys`` against ``ref``: exact (normalized) first, then near (Jaccard)."""
    n, m = len(keys), len(ref)
    ref_index = np.full(n, -1, np.int64)
    similarity = np.full(n, np.nan)
    exact = np.zeros(n, bool)
    if n == 0 or m == 0:
        return Leaks(ref_index, similarity, exact)
    ours = pl.DataFrame({"h": _hashes(keys, stage), "i": np.arange(n)})
    theirs = pl.DataFrame({"h": _hashes(ref, stage), "j": np.arange(m)}).unique("h", keep="first")
    hit = ours.join(theirs, on="h", how="inner")
    ref_index[hit["i"].to_numpy()] = hit["j"].to_numpy()
    similarity[hit["i"].to_numpy()] = 1.0
    exact[hit["i"].to_numpy()] = True

    p = stage.minhash
    both = pl.concat([keys.cast(pl.String), ref.cast(pl.String)])
    sk = sketch(both, p, keep_shingles=stage.verify == "exact")
    bands, rows = lsh_shape(stage.threshold, p, None, None, stage.verify)
    side = np.concatenate([np.zeros(n, np.int8), np.ones(m, np.int8)])
    active = ~sk.empty
    active[:n] &= ~exact  # exact hits need no near search
    a, b = candidate_pairs(band_keys(sk.signatures, bands, rows), active, side)
    pairs = verify_pairs(sk, a, b, stage.threshold, stage.verify)
    if pairs.a.size:
        order = np.argsort(-pairs.similarity, kind="stable")  # keep each row's best match
        rows_, refs, sims = pairs.a[order], pairs.b[order] - n, pairs.similarity[order]
        first = np.unique(rows_, return_index=True)[1]
        ref_index[rows_[first]] = refs[first]
        similarity[rows_[first]] = sims[first]
    return Leaks(ref_index, similarity, exact)
