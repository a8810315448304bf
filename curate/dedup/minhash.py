"""Shingles and MinHash signatures, vectorized: polars for tokens, numpy for hashing.

Signatures use one-permutation hashing (OPH, Li et al. 2012) with rotation densification
(Shrivastava & Li 2014): every shingle is hashed once; the hash picks one of ``num_perm`` bins and
the bin keeps its minimum; empty bins borrow from the next non-empty bin. This estimates Jaccard
similarity like classic k-permutation MinHash (the fraction of equal bins) but costs one hash per
shingle instead of ``num_perm``, which is why it runs an order of magnitude faster than
datasketch's per-permutation path.

Shingles: word n-grams or character n-grams over normalized text. Tokens are hashed with a stable
64-bit hash (xxhash64 via polars-hash), n-grams combine token hashes positionally, and a
SplitMix64 finalizer mixes in the seed.

Example:
    >>> import polars as pl
    >>> p = MinHashParams(num_perm=64, shingle_size=2)
    >>> sk = sketch(pl.Series(["the cat sat on the mat", "the cat sat on the mat", "dogs bark"]), p)
    >>> sk.signatures.shape, bool((sk.signatures[0] == sk.signatures[1]).all())
    ((3, 64), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from curate.dedup.kernels import oph_sketch, pair_jaccard, sort_unique_segments
from schemas.stages import MinHashParams, Normalization

EMPTY = np.uint32(0xFFFFFFFF)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


@dataclass
class Sketch:
    """Signatures of a batch of documents, plus their shingles (for exact verification).

    ``shingles[offsets[i]:offsets[i + 1]]`` are document ``i``'s shingle hashes (with repeats).
    ``empty[i]`` marks documents with no tokens (they are never candidates).
    """

    signatures: np.ndarray
    shingles: np.ndarray
    offsets: np.ndarray
    empty: np.ndarray
    _unique: tuple[np.ndarray, np.ndarray] | None = None

    def unique_sets(self) -> tuple[np.ndarray, np.ndarray]:
        """Per document, its distinct shingles sorted at the start of its segment, and their counts."""
        if self._unique is None:
            values = self.shingles.copy()
            sizes = np.zeros(self.offsets.size - 1, np.int64)
            sort_unique_segments(values, self.offsets, sizes)
            self._unique = (values, sizes)
        return self._unique

    @property
    def nbytes(self) -> int:
        return int(self.signatures.nbytes + self.shingles.nbytes + self.offsets.nbytes + self.empty.nbytes)


def _prepare_text(texts: pl.Series, norm: Normalization) -> pl.Series:
    """Normalize what the kernel cannot: non-ASCII values get NFKC, Unicode lower-casing and
    Unicode punctuation removal in polars; ASCII values are left for the kernel's byte rules."""
    texts = texts.cast(pl.String).fill_null("")
    non_ascii = texts.str.len_bytes() != texts.str.len_chars()
    if not non_ascii.any():
        return texts
    idx = non_ascii.arg_true()
    sub = texts.gather(idx)
    if norm.unicode:
        sub = sub.str.normalize("NFKC")
    expr = pl.col("t")
    if norm.case:
        expr = expr.str.to_lowercase()
    if norm.punctuation:
        expr = expr.str.replace_all(r"[\p{P}\p{S}]+", " ")
    # Unicode spaces (NBSP, U+2028/9, U+3000...) separate words as in exact dedup; the kernel only
    # knows ASCII whitespace
    expr = expr.str.replace_all(r"\s+", " ")
    sub = sub.to_frame("t").select(expr).to_series()
    return texts.scatter(idx, sub)


def _buffers(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes and int64 offsets of a String Series (Arrow large-string layout)."""
    arr = texts.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    return data, offsets


CHUNK_DOCS = 8192
"""Documents per kernel call: bounds the shingle buffer (8 bytes per text byte) whatever the input size."""


def _sketch_chunk(
    texts: pl.Series,
    lo: int,
    hi: int,
    p: MinHashParams,
    seed: np.uint64,
    sig: np.ndarray,
    counts: np.ndarray,
    buffers: dict[int, np.ndarray],
    keep_shingles: bool,
) -> np.ndarray | None:
    import threading

    # normalization runs per chunk, so worker threads share it too (polars releases the GIL)
    data, offsets = _buffers(_prepare_text(texts.slice(lo, hi - lo), p.normalization))
    # at most one shingle per byte (every token has a byte) plus one per short document; each
    # thread reuses its buffer across chunks, so its pages are touched once
    need = int(offsets[-1] - offsets[0]) + (hi - lo)
    me = threading.get_ident()
    out = buffers.get(me)
    if out is None or out.size < need:
        out = buffers[me] = np.empty(max(need, 2 * (0 if out is None else out.size)), dtype=np.uint64)
    norm = p.normalization
    used = oph_sketch(
        data,
        offsets,
        p.shingle_size,
        p.shingle == "char",
        norm.case,
        norm.punctuation,
        p.num_perm,
        p.repeats,
        seed,
        sig[lo:hi],
        out,
        counts[lo:hi],
    )
    return out[:used].copy() if keep_shingles else None


def sketch(texts: pl.Series, p: MinHashParams, keep_shingles: bool = True, workers: int = 1) -> Sketch:
    """Signatures (``len(texts) x num_perm`` uint32) and, with ``keep_shingles``, every document's
    shingles (needed only for exact verification; 8 bytes per shingle).

    ``workers`` threads share the chunks; the compiled kernel releases the GIL, so they run in parallel.
    """
    d, k = len(texts), p.num_perm
    seed = mix64(np.array([p.seed], dtype=np.uint64) + _GOLD)[0]
    sig = np.full((d, k), EMPTY, dtype=np.uint32)
    counts = np.zeros(d, np.int64)
    bounds = [(lo, min(lo + CHUNK_DOCS, d)) for lo in range(0, d, CHUNK_DOCS)]
    buffers: dict[int, np.ndarray] = {}
    args = (p, seed, sig, counts, buffers, keep_shingles)
    if workers > 1 and len(bounds) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda b: _sketch_chunk(texts, b[0], b[1], *args), bounds))
    else:
        parts = [_sketch_chunk(texts, lo, hi, *args) for lo, hi in bounds]
    offsets = np.zeros(d + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    kept = [x for x in parts if x is not None]
    shingles = np.concatenate(kept) if kept else np.empty(0, np.uint64)
    return Sketch(sig, shingles, offsets, counts == 0)


def estimated_jaccard(sig: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fraction of equal signature bins for each pair ``(a[i], b[i])``."""
    return (sig[a] == sig[b]).mean(axis=1)


def exact_jaccard(sk_a: Sketch, a: np.ndarray, sk_b: Sketch, b: np.ndarray) -> np.ndarray:
    """Exact Jaccard of the shingle sets for each pair ``(a[i] in sk_a, b[i] in sk_b)``."""
    va, za = sk_a.unique_sets()
    vb, zb = sk_b.unique_sets()
    return pair_jaccard(va, sk_a.offsets, za, vb, sk_b.offsets, zb, a.astype(np.int64), b.astype(np.int64))
