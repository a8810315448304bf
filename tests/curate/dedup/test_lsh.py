"""LSH banding: parameters against datasketch's, candidate pairs (within a set and across two
sets), verification, connected components and representatives."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from datasketch.lsh import _optimal_param

from curate.dedup.decisions import priority_for
from curate.dedup.lsh import (
    ALL_PAIRS_MAX_GROUP,
    band_keys,
    candidate_pairs,
    clusters,
    optimal_bands,
    representatives,
    verify_pairs,
)
from curate.dedup.minhash import sketch
from schemas.stages import MinHashParams


@pytest.mark.parametrize(
    ("threshold", "num_perm"),
    [(0.5, 128), (0.7, 128), (0.8, 128), (0.9, 128), (0.95, 128), (0.8, 64), (0.85, 256), (0.6, 32)],
)
def test_optimal_bands_matches_datasketch(threshold, num_perm):
    assert optimal_bands(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_optimal_bands_weights_match_datasketch():
    assert optimal_bands(0.8, 128, 0.2, 0.8) == _optimal_param(0.8, 128, 0.2, 0.8)
    assert optimal_bands(0.8, 128, 0.2, 0.8) != optimal_bands(0.8, 128)


def random_signatures(n: int, k: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**32 - 1, size=(n, k), dtype=np.uint32)


def pairs_of(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(a.tolist(), b.tolist(), strict=True))


def test_band_keys_depend_on_band_values_and_position():
    sig = random_signatures(4, 16)
    sig[1] = sig[0]
    sig[2, :4] = sig[0, :4]  # only band 0 (rows 0..3) equal
    sig[3, :4] = sig[0, 4:8]  # band 0 of doc 3 holds doc 0's band-1 values
    keys = band_keys(sig, 4, 4)
    assert keys.shape == (4, 4) and keys.dtype == np.uint64
    assert (keys[0] == keys[1]).all()
    assert (keys[0] == keys[2]).tolist() == [True, False, False, False]
    assert not (keys[3, 0] == keys[0, :]).any()


def test_candidate_pairs_find_planted_copies():
    sig = random_signatures(2000)
    planted = {(3, 1500), (10, 11), (700, 1999)}
    for a, b in planted:
        sig[b] = sig[a]
    # a near copy: one band of nine still equal
    sig[42, 13:] = random_signatures(1, 128 - 13, seed=9)
    sig[42, :13] = sig[99, :13]
    keys = band_keys(sig, 9, 13)
    a, b = candidate_pairs(keys, np.ones(2000, bool))
    assert pairs_of(a, b) == planted | {(42, 99)}
    assert (a < b).all()


def test_candidate_pairs_skip_inactive():
    sig = random_signatures(10)
    sig[5] = sig[4] = sig[3]
    keys = band_keys(sig, 8, 16)
    active = np.ones(10, bool)
    active[4] = False
    a, b = candidate_pairs(keys, active)
    assert pairs_of(a, b) == {(3, 5)}


def test_cross_set_side_returns_only_cross_pairs():
    sig = random_signatures(12)
    sig[1] = sig[0]  # both side 0: not returned
    sig[8] = sig[9] = sig[2]  # 2 on side 0, 8 and 9 on side 1
    sig[5] = sig[10]  # 5 (side 1) < 10 (side 0): returned as (10, 5)
    side = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0])
    keys = band_keys(sig, 8, 16)
    a, b = candidate_pairs(keys, np.ones(12, bool), side=side)
    assert pairs_of(a, b) == {(2, 8), (2, 9), (10, 5)}
    assert (side[a] == 0).all() and (side[b] == 1).all()


def test_large_bucket_is_a_star_and_stays_one_cluster():
    n = ALL_PAIRS_MAX_GROUP + 8
    sig = random_signatures(n + 5)
    sig[:n] = sig[0]
    keys = band_keys(sig, 4, 32)
    a, b = candidate_pairs(keys, np.ones(n + 5, bool))
    assert len(a) == n - 1  # not n * (n - 1) / 2
    labels = clusters(n + 5, a, b)
    assert len(set(labels[:n].tolist())) == 1
    assert len(set(labels.tolist())) == 6


def test_verify_pairs_exact_and_estimate():
    base = " ".join(f"w{i}" for i in range(100))
    near = base.replace("w50", "zz")  # 5 of 96 shingles change: Jaccard 91/101
    other = " ".join(f"v{i}" for i in range(100))
    sk = sketch(pl.Series([base, near, other]), MinHashParams(), keep_shingles=True)
    a, b = np.array([0, 0]), np.array([1, 2])
    exact = verify_pairs(sk, a, b, 0.8, "exact")
    assert exact.candidates == 2
    assert pairs_of(exact.a, exact.b) == {(0, 1)}
    assert exact.similarity[0] == pytest.approx(91 / 101)
    est = verify_pairs(sk, a, b, 0.8, "estimate")
    assert pairs_of(est.a, est.b) == {(0, 1)}
    assert abs(est.similarity[0] - 91 / 101) < 0.1
    none = verify_pairs(sk, a, b, 0.8, "none")
    assert pairs_of(none.a, none.b) == {(0, 1), (0, 2)}
    assert verify_pairs(sk, a, b, 0.95, "exact").a.size == 0


def test_clusters_are_connected_components():
    labels = clusters(7, np.array([0, 1, 4]), np.array([1, 2, 5]))
    groups = {}
    for i, lab in enumerate(labels.tolist()):
        groups.setdefault(lab, []).append(i)
    assert sorted(groups.values()) == [[0, 1, 2], [3], [4, 5], [6]]


def test_representatives_keep_first():
    labels = clusters(6, np.array([0, 1, 3]), np.array([2, 2, 5]))
    rep = representatives(labels, priority_for("first", np.ones(6)))
    assert rep.tolist() == [0, 0, 0, 3, 4, 3]


def test_representatives_keep_longest_ties_to_first():
    labels = clusters(6, np.array([0, 1, 3]), np.array([2, 2, 5]))
    lengths = np.array([10, 30, 30, 5, 1, 9])
    rep = representatives(labels, priority_for("longest", lengths))
    assert rep.tolist() == [1, 1, 1, 5, 4, 5]


def test_representatives_keep_best_score_missing_loses():
    labels = clusters(5, np.array([0, 1, 3]), np.array([1, 2, 4]))
    scores = np.array([0.2, np.nan, 0.9, np.nan, np.nan])
    rep = representatives(labels, priority_for("score", np.ones(5), scores))
    assert rep.tolist() == [2, 2, 2, 3, 3]  # all-missing group: first row
    with pytest.raises(ValueError, match="scores"):
        priority_for("score", np.ones(5))


def test_representatives_empty():
    assert representatives(np.empty(0, np.int64), np.empty(0)).size == 0
