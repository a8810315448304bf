"""Near-dup dedup against ground truth: a generated corpus with planted near-duplicates of known exact
Jaccard similarity (benchmarks/corpus.py), scored by duplicate pairs at threshold 0.8, beside
datasketch's MinHashLSH on the same texts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate.dedup.near import near_duplicates
from schemas.stages import NearDedupStage

ROOT = Path(__file__).resolve().parents[3]
THRESHOLD = 0.8
DOCS = 5000


def _load_corpus_module():
    name = "bench_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "corpus.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


corpus_mod = _load_corpus_module()


class Truth:
    def __init__(self, corpus):
        self.corpus = corpus
        self.known = {(i, j): s for i, j, s in corpus.pairs}

    def jaccard(self, i: int, j: int) -> float:
        if (i, j) not in self.known:  # not planted: compute it, so precision is exact
            self.known[(i, j)] = corpus_mod.jaccard(self.corpus.texts[i], self.corpus.texts[j])
        return self.known[(i, j)]

    def score(self, pairs: set[tuple[int, int]]) -> tuple[float, float]:
        good = {p for p in pairs if self.jaccard(*p) >= THRESHOLD}
        truth = {p for p, s in self.known.items() if s >= THRESHOLD}
        return len(good) / max(len(pairs), 1), len(pairs & truth) / len(truth)


@pytest.fixture(scope="module")
def corpus():
    # 30% planted copies: ~1,500 families, ~700 pairs at or above 0.8
    return corpus_mod.generate(DOCS, dup_fraction=0.3, seed=11)


@pytest.fixture(scope="module")
def truth(corpus):
    return Truth(corpus)


@pytest.fixture(scope="module")
def datasketch_minhashes(corpus):
    from datasketch import MinHash

    def shingles(text: str) -> list[bytes]:
        return [" ".join(s).encode() for s in corpus_mod.shingles(text)]

    return MinHash.bulk([shingles(t) for t in corpus.texts], num_perm=128)


def datasketch_candidates(minhashes, params=None) -> set[tuple[int, int]]:
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=128, params=params)
    with lsh.insertion_session() as session:
        for i, m in enumerate(minhashes):
            session.insert(i, m)
    return {(min(i, j), max(i, j)) for i, m in enumerate(minhashes) for j in lsh.query(m) if j != i}


def ours(corpus, **params):
    stage = NearDedupStage(type="near_dedup", threshold=THRESHOLD, **params)
    dec = near_duplicates(pl.Series(corpus.texts), stage, np.arange(len(corpus.texts), dtype=np.float64))
    a, b = np.minimum(dec.pairs.a, dec.pairs.b), np.maximum(dec.pairs.a, dec.pairs.b)
    return dec, set(zip(a.tolist(), b.tolist(), strict=True))


def test_corpus_ground_truth(corpus):
    sims = np.array([s for _, _, s in corpus.pairs])
    assert len(corpus.texts) == DOCS
    assert 600 <= (sims >= THRESHOLD).sum() <= 900  # enough pairs at the threshold to measure 0.95
    assert ((sims >= 0.5) & (sims < THRESHOLD)).sum() >= 300  # and near misses that must be rejected
    assert (sims == 1.0).sum() >= 50  # copies that differ only in case, punctuation, spacing
    for i, j, s in corpus.pairs[:50]:
        assert corpus_mod.jaccard(corpus.texts[i], corpus.texts[j]) == s
    # the generator is deterministic
    again = corpus_mod.generate(300, dup_fraction=0.3, seed=11)
    assert again.texts == corpus_mod.generate(300, dup_fraction=0.3, seed=11).texts
    assert again.texts != corpus_mod.generate(300, dup_fraction=0.3, seed=12).texts


def test_exact_similarity_matches_python_sets(corpus, truth):
    dec, _ = ours(corpus, bands=14, rows=9)
    sims = dict(zip(zip(dec.pairs.a.tolist(), dec.pairs.b.tolist(), strict=True), dec.pairs.similarity, strict=True))
    for (a, b), s in sims.items():
        assert s == pytest.approx(truth.jaccard(min(a, b), max(a, b)), abs=1e-12)
    assert min(sims.values()) >= THRESHOLD


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"bands": 14, "rows": 9}, id="bands14x9"),
        pytest.param({"bands": 12, "rows": 10, "minhash": {"repeats": 1}}, id="bands12x10-repeats1"),
        pytest.param({}, id="defaults"),
    ],
)
def test_recall_and_precision_at_08(corpus, truth, params):
    dec, pairs = ours(corpus, **params)
    precision, recall = truth.score(pairs)
    assert precision >= 0.95, precision
    assert recall >= 0.95, (recall, dec.stats)
    # removed rows name a kept row as their group's representative ...
    removed = np.flatnonzero(dec.dup_of >= 0)
    assert (dec.representative[dec.representative[removed]] == -1).all()
    # ... and, as duplicate_of, a row they really resemble: the audit's similarity is their exact Jaccard
    wrong = [
        i for i in removed.tolist() if abs(dec.similarity[i] - truth.jaccard(*sorted((i, int(dec.dup_of[i]))))) > 1e-12
    ]
    assert not wrong, (len(wrong), removed.size)
    assert (dec.similarity[removed] >= THRESHOLD).all()


def test_no_background_pair_reaches_threshold(corpus, truth, datasketch_minhashes):
    """Every pair either system flags that was not planted is far below 0.8 (so the truth is complete)."""
    _, wide = ours(corpus, bands=25, rows=5, verify="none")
    flagged = wide | datasketch_candidates(datasketch_minhashes, params=(25, 5))
    unplanted = [p for p in flagged if p not in {(i, j) for i, j, _ in truth.corpus.pairs}]
    assert all(truth.jaccard(*p) < 0.5 for p in unplanted)


def test_as_good_as_datasketch(corpus, truth, datasketch_minhashes):
    # each with its default LSH shape, then both with the same shape
    for params, ds_params in [({}, None), ({"bands": 14, "rows": 9}, (14, 9)), ({"bands": 9, "rows": 13}, (9, 13))]:
        _, mine = ours(corpus, **params)
        theirs = datasketch_candidates(datasketch_minhashes, ds_params)
        p_ours, r_ours = truth.score(mine)
        p_ds, r_ds = truth.score(theirs)
        assert r_ours >= r_ds - 0.02, (params, r_ours, r_ds)
        assert p_ours >= 0.99, (params, p_ours)  # verified pairs
        assert p_ours >= p_ds, (params, p_ours, p_ds)  # datasketch returns unverified candidates
