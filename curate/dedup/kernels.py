"""Compiled kernels (numba) for the per-token hot loop of MinHash and for exact Jaccard.

Everything else in dedup is vectorized polars/numpy; these two loops walk every byte of text and
every shingle, where interpreted or temporary-array code is an order of magnitude slower.

``oph_sketch`` reads UTF-8 text as one byte buffer plus offsets (Arrow's layout), splits tokens,
hashes word or character n-grams and keeps one-permutation MinHash bins, in a single pass.
ASCII upper-case letters are folded when ``fold_case``; ASCII punctuation and symbols (including
``_``, Unicode class Pc) separate words when ``punct_sep``; bytes >= 0x80 belong to words
(callers normalize non-ASCII text first).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_LOW32 = np.uint64(0xFFFFFFFF)
_EMPTY = np.uint32(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _mix(x: np.uint64) -> np.uint64:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


@njit(cache=True, inline="always")
def _is_sep(c: np.uint8, punct_sep: bool) -> bool:
    if c == 32 or c == 9 or c == 10 or c == 13 or c == 11 or c == 12:
        return True
    if punct_sep and c < 128:
        is_digit = 48 <= c <= 57
        is_upper = 65 <= c <= 90
        is_lower = 97 <= c <= 122
        return not (is_digit or is_upper or is_lower)  # '_' is punctuation (\\p{Pc}), as in polars
    return False


@njit(cache=True, inline="always")
def _emit(
    acc: np.uint64, doc: int, seed: np.uint64, k: int, repeats: int, sig: np.ndarray, out: np.ndarray, n_out: int
) -> int:
    s = _mix(acc ^ seed)
    out[n_out] = s
    for r in range(repeats):
        x = s if r == 0 else _mix(s + np.uint64(r) * _GOLD)
        b = ((x >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)
        v = np.uint32(x & _LOW32)
        if v < sig[doc, b]:
            sig[doc, b] = v
    return n_out + 1


@njit(cache=True, nogil=True)
def oph_sketch(
    data: np.ndarray,
    offsets: np.ndarray,
    n: int,
    char_grams: bool,
    fold_case: bool,
    punct_sep: bool,
    k: int,
    repeats: int,
    seed: np.uint64,
    sig: np.ndarray,
    out: np.ndarray,
    counts: np.ndarray,
) -> int:
    """Fill ``sig`` (docs x k, preset to 0xFFFFFFFF; densified per document), ``out`` (shingle
    hashes) and ``counts`` (shingles per document); return the number of shingles written.
    A document without tokens keeps an all-empty row."""
    # rolling polynomial hash over token hashes: acc = sum_j tok[i + j] * B^(n - 1 - j)
    base = _mix(_GOLD) | np.uint64(1)
    base_n = np.uint64(1)
    for _ in range(n):
        base_n *= base
    ring = np.empty(n, np.uint64)
    toks = np.empty(2, np.uint64)
    filled = np.empty(k, np.bool_)
    n_out = 0
    d = offsets.size - 1
    for doc in range(d):
        i, end = offsets[doc], offsets[doc + 1]
        before = n_out
        seen = 0
        slot = 0
        acc = np.uint64(0)
        pending_space = False
        while i < end:
            c = data[i]
            ntok = 0
            if _is_sep(c, punct_sep):
                i += 1
                # in character mode a run of separators becomes one space token, but only between
                # characters: leading and trailing separators never make a token
                pending_space = char_grams and seen > 0
                continue
            if char_grams:
                if pending_space:
                    toks[0] = _mix(_FNV_OFFSET ^ np.uint64(32))
                    ntok = 1
                    pending_space = False
                h = _FNV_OFFSET
                width = 1 if c < 0xC0 else (2 if c < 0xE0 else (3 if c < 0xF0 else 4))
                for t in range(width):
                    if i + t < end:
                        ch = data[i + t]
                        if fold_case and 65 <= ch <= 90:
                            ch += 32
                        h = (h ^ np.uint64(ch)) * _FNV_PRIME
                i += width
            else:
                h = _FNV_OFFSET
                while i < end and not _is_sep(data[i], punct_sep):
                    ch = data[i]
                    if fold_case and 65 <= ch <= 90:
                        ch += 32
                    h = (h ^ np.uint64(ch)) * _FNV_PRIME
                    i += 1
            toks[ntok] = _mix(h)
            ntok += 1
            for q in range(ntok):
                tok = toks[q]
                acc = acc * base + tok
                if seen >= n:
                    acc -= ring[slot] * base_n  # drop the token that left the window
                ring[slot] = tok
                slot += 1
                if slot == n:
                    slot = 0
                seen += 1
                if seen >= n:
                    n_out = _emit(acc, doc, seed, k, repeats, sig, out, n_out)
        if 0 < seen < n:  # a short document is one shingle of all its tokens
            n_out = _emit(acc, doc, seed, k, repeats, sig, out, n_out)
        counts[doc] = n_out - before
        if n_out > before:
            _densify_row(sig, doc, k, filled)
    return n_out


@njit(cache=True, inline="always")
def _densify_row(sig: np.ndarray, doc: int, k: int, filled: np.ndarray) -> None:
    """Rotation densification (Shrivastava & Li 2014): an empty bin takes the value of the next
    originally non-empty bin to its right (circularly), shifted by the distance."""
    any_empty = False
    for b in range(k):
        filled[b] = sig[doc, b] != _EMPTY
        any_empty = any_empty or not filled[b]
    if not any_empty:
        return
    for b in range(k):
        if not filled[b]:
            for j in range(1, k):
                donor = b + j
                if donor >= k:
                    donor -= k
                if filled[donor]:
                    sig[doc, b] = sig[doc, donor] + np.uint32(j) * np.uint32(0x9E3779B1)
                    break


@njit(cache=True, nogil=True)
def sort_unique_segments(values: np.ndarray, offsets: np.ndarray, sizes: np.ndarray) -> None:
    """Sort each segment in place and move its distinct values to the front; ``sizes`` gets their count."""
    for doc in range(offsets.size - 1):
        lo, hi = offsets[doc], offsets[doc + 1]
        seg = values[lo:hi]
        seg.sort()
        m = 0
        for i in range(seg.size):
            if i == 0 or seg[i] != seg[i - 1]:
                seg[m] = seg[i]
                m += 1
        sizes[doc] = m


@njit(cache=True, nogil=True)
def pair_jaccard(
    va: np.ndarray,
    oa: np.ndarray,
    za: np.ndarray,
    vb: np.ndarray,
    ob: np.ndarray,
    zb: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
) -> np.ndarray:
    """Exact Jaccard for pairs over segments prepared by :func:`sort_unique_segments`."""
    out = np.empty(a.size, np.float64)
    for p in range(a.size):
        x, y = a[p], b[p]
        i, iend = oa[x], oa[x] + za[x]
        j, jend = ob[y], ob[y] + zb[y]
        inter = 0
        while i < iend and j < jend:
            if va[i] == vb[j]:
                inter += 1
                i += 1
                j += 1
            elif va[i] < vb[j]:
                i += 1
            else:
                j += 1
        union = za[x] + zb[y] - inter
        out[p] = 1.0 if union == 0 else inter / union
    return out


@njit(cache=True, nogil=True)
def greedy_links(
    order: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    similarity: np.ndarray,
    always_kept: np.ndarray,
    parent: np.ndarray,
    parent_sim: np.ndarray,
) -> None:
    """Non-transitive removal over a CSR graph of verified pairs.

    Rows are visited in ``order`` (best first); a row is removed when it has a verified edge to a row
    already kept, and then ``parent``/``parent_sim`` get that kept neighbour (the most similar one)
    and the edge's similarity; otherwise it is kept (``parent`` stays -1). ``always_kept`` rows are
    kept whatever their neighbours (published rows in a refresh).
    """
    kept = np.zeros(indptr.size - 1, np.bool_)
    for r in order:
        best = -1
        best_sim = -1.0
        if not always_kept[r]:
            for e in range(indptr[r], indptr[r + 1]):
                nb = indices[e]
                if kept[nb] and similarity[e] > best_sim:
                    best = nb
                    best_sim = similarity[e]
        if best >= 0:
            parent[r] = best
            parent_sim[r] = best_sim
        else:
            kept[r] = True
