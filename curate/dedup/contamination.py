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
from curate.dedup.minhash import Sketch, sketch
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


@dataclass
class StreamedLeaks(Leaks):
    """:class:`Leaks` of rows checked against a reference streamed in batches; ``ref_id`` is the
    matched reference row's payload id (None when unmatched)."""

    ref_id: np.ndarray


class LeakIndex:
    """Rows (the small side: e.g. eval/test) indexed once; a large reference streams past in batches.

    Memory is the indexed rows' texts, hashes and band keys (``bands`` x 8 bytes each) plus one
    reference batch at a time, however large the reference. Matching follows :func:`find_leaks`:
    a normalized exact match wins (the first reference row with that hash), else the verified near
    match of highest similarity (ties: the earliest reference row). Every cross pair sharing a band
    key is a candidate (``find_leaks`` caps very large buckets at a star), so it finds the same
    leaks or, in buckets of more than 32 equal band keys, a few more.

    Example:
        >>> from schemas.stages import DecontaminateStage, ReferenceSpec
        >>> stage = DecontaminateStage(type="decontaminate", against=[ReferenceSpec(name="e", path="x", column="q")])
        >>> q = "what is the capital city of france and why is it famous"
        >>> idx = LeakIndex(pl.Series([q + " today", "unrelated text " * 5]), stage)
        >>> idx.add(pl.Series(["nothing alike here at all"]), np.array(["r0"], dtype=object))
        >>> idx.add(pl.Series([q]), np.array(["r1"], dtype=object))
        >>> idx.result().ref_index.tolist(), idx.result().ref_id.tolist()
        ([1, -1], ['r1', None])
    """

    def __init__(self, keys: pl.Series, stage: DecontaminateStage):
        self.keys, self.stage = keys.cast(pl.String), stage
        n = self.n = len(keys)
        self.ref_index = np.full(n, -1, np.int64)
        self.similarity = np.full(n, -np.inf)
        self.ref_id = np.full(n, None, dtype=object)
        self.exact_index = np.full(n, -1, np.int64)
        self.exact_id = np.full(n, None, dtype=object)
        self.seen = 0
        if n == 0:
            return
        self.hashes = pl.DataFrame({"h": _hashes(self.keys, stage), "i": np.arange(n)})
        p = stage.minhash
        self.shape = lsh_shape(stage.threshold, p, None, None, stage.verify)
        sk = sketch(self.keys, p, keep_shingles=False)
        bk = band_keys(sk.signatures, *self.shape)
        self.signatures = sk.signatures if stage.verify != "exact" else None
        active = np.flatnonzero(~sk.empty)
        # per band: the indexed rows' keys sorted, to look reference keys up with searchsorted
        self.bands = []
        for b in range(bk.shape[1]):
            order = active[np.argsort(bk[active, b], kind="stable")]
            self.bands.append((bk[order, b], order))

    def add(self, ref: pl.Series, ref_ids: np.ndarray) -> None:
        """Check the next batch of reference texts (``ref_ids``: their ids, reported with a match)."""
        m, base = len(ref), self.seen
        self.seen += m
        if self.n == 0 or m == 0:
            return
        theirs = pl.DataFrame({"h": _hashes(ref, self.stage), "j": np.arange(m)})
        hit = self.hashes.join(theirs.unique("h", keep="first", maintain_order=True), on="h", how="inner")
        i, j = hit["i"].to_numpy(), hit["j"].to_numpy()
        new = self.exact_index[i] < 0  # the first reference row with the hash wins
        self.exact_index[i[new]] = base + j[new]
        self.exact_id[i[new]] = ref_ids[j[new]]
        p, stage = self.stage.minhash, self.stage
        sk = sketch(ref.cast(pl.String), p, keep_shingles=stage.verify == "exact")
        bk = band_keys(sk.signatures, *self.shape)
        live = ~sk.empty
        codes = []
        for b, (keys, order) in enumerate(self.bands):
            lo = np.searchsorted(keys, bk[:, b], "left")
            hi = np.searchsorted(keys, bk[:, b], "right")
            count = np.where(live, hi - lo, 0)
            if not count.any():
                continue
            js = np.repeat(np.arange(m), count)
            starts = np.repeat(lo, count)
            within = np.arange(js.size) - np.repeat(np.cumsum(count) - count, count)
            codes.append(order[starts + within].astype(np.int64) * m + js)
        if not codes:
            return
        code = np.unique(np.concatenate(codes))
        a, c = code // m, code % m
        held = self._sketch_of(a, sk)
        pairs = verify_pairs(held[0], held[1], c, stage.threshold, stage.verify, other=sk)
        if not pairs.a.size:
            return
        rows = held[2][pairs.a]  # back to indexed-row numbers
        order = np.lexsort((pairs.b, -pairs.similarity))
        rows, refs, sims = rows[order], pairs.b[order], pairs.similarity[order]
        first = np.unique(rows, return_index=True)[1]
        rows, refs, sims = rows[first], refs[first], sims[first]
        better = sims > self.similarity[rows]  # an earlier batch keeps ties
        rows, refs, sims = rows[better], refs[better], sims[better]
        self.ref_index[rows] = base + refs
        self.similarity[rows] = sims
        self.ref_id[rows] = ref_ids[refs]

    def _sketch_of(self, rows: np.ndarray, ref_sk: Sketch) -> tuple[Sketch, np.ndarray, np.ndarray]:
        """A sketch of the indexed rows in ``rows`` (shingles only for those: they are few)."""
        involved = np.unique(rows)
        local = np.searchsorted(involved, rows)
        p = self.stage.minhash
        if self.stage.verify == "exact":
            sub = sketch(self.keys.gather(involved), p, keep_shingles=True)
        else:
            assert self.signatures is not None
            none = np.empty(0, np.uint64)
            sub = Sketch(self.signatures[involved], none, np.zeros(1, np.int64), np.zeros(involved.size, bool))
        return sub, local, involved

    def result(self) -> StreamedLeaks:
        """The match of every indexed row over all the reference batches added so far."""
        exact = self.exact_index >= 0
        ref_index = np.where(exact, self.exact_index, self.ref_index)
        similarity = np.where(exact, 1.0, np.where(self.ref_index >= 0, self.similarity, np.nan))
        ref_id = np.where(exact, self.exact_id, self.ref_id)
        return StreamedLeaks(ref_index, similarity, exact, ref_id)
