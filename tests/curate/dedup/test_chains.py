"""Chains of near-duplicates: every removed row names a neighbour it really resembles, and the
non-transitive rule removes a row only when it resembles a row that stays.

The chain: six documents of 54 words, each shifted 10 words from the last, so with 5-word
shingles neighbours share 40 of 60 shingles (J = 2/3), rows two apart J = 0.43 and the ends none.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from curate.dedup.lsh import edge_similarity, kept_links, spanning_links
from curate.dedup.near import near_duplicates
from schemas.stages import NearDedupStage

WORDS = [f"w{i}" for i in range(200)]
CHAIN = [" ".join(WORDS[i * 10 : i * 10 + 54]) for i in range(6)]  # A..F


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = text.split()
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(x: str, y: str) -> float:
    a, b = shingles(x), shingles(y)
    return len(a & b) / len(a | b)


def decide(texts: list[str], clusters: str, priority: np.ndarray | None = None, **kw):
    stage = NearDedupStage(type="near_dedup", threshold=0.6, clusters=clusters, **kw)
    prio = np.arange(len(texts), dtype=np.float64) if priority is None else priority
    return near_duplicates(pl.Series(texts), stage, prio)


def test_the_chain_is_what_it_claims():
    assert [round(jaccard(CHAIN[i], CHAIN[i + 1]), 3) for i in range(5)] == [0.667] * 5
    assert round(jaccard(CHAIN[0], CHAIN[2]), 3) == 0.429
    assert jaccard(CHAIN[0], CHAIN[5]) == 0.0


def test_connected_removes_the_chain_and_names_each_rows_own_neighbour():
    dec = decide(CHAIN, "connected")
    # transitive: only A stays, though F shares no shingle with A
    assert dec.dup_of.tolist() == [-1, 0, 1, 2, 3, 4]
    assert dec.representative.tolist() == [-1, 0, 0, 0, 0, 0]
    for i in range(1, 6):
        true = jaccard(CHAIN[i], CHAIN[dec.dup_of[i]])
        assert true == pytest.approx(2 / 3)
        assert dec.similarity[i] == pytest.approx(true, abs=1e-12)
    assert np.isnan(dec.similarity[0])
    assert dec.stats["clusters"] == "connected" and dec.stats["clusters_with_duplicates"] == 1


def test_non_transitive_keeps_every_other_link_of_the_chain():
    dec = decide(CHAIN, "non_transitive")
    # first wins: A stays; B resembles A -> goes; C resembles only B (gone) and D (not yet kept) -> stays
    assert dec.dup_of.tolist() == [-1, 0, -1, 2, -1, 4]
    assert dec.representative.tolist() == dec.dup_of.tolist()
    removed = np.flatnonzero(dec.removed)
    assert dec.similarity[removed] == pytest.approx([2 / 3] * 3)
    # every removed row is within the threshold of a row that stays, and no two kept rows are
    kept = np.flatnonzero(~dec.removed)
    assert (~dec.removed[dec.dup_of[removed]]).all()
    assert all(jaccard(CHAIN[i], CHAIN[j]) < 0.6 for i in kept for j in kept if i < j)
    assert dec.stats["clusters_with_duplicates"] == 3


def test_non_transitive_follows_keep_priority():
    # keep the last row first: F stays, E goes, D stays, C goes, B stays, A goes
    dec = decide(CHAIN, "non_transitive", priority=-np.arange(6, dtype=np.float64))
    assert dec.dup_of.tolist() == [1, -1, 3, -1, 5, -1]


def test_spanning_links_prefer_the_strongest_pairs():
    # triangle 0-1 (0.85), 1-2 (0.95), 0-2 (0.82): 2 links to 1, its most similar neighbour
    a, b, s = np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([0.85, 0.95, 0.82])
    parent, sim = spanning_links(4, a, b, s, np.array([0, 0, 0, 3]))
    assert parent.tolist() == [-1, 0, 1, -1]
    assert sim[1:3].tolist() == [0.85, 0.95] and np.isnan(sim[[0, 3]]).all()
    # the representative need not be the smallest index; links still lead to it
    parent, _ = spanning_links(4, a, b, s, np.array([2, 2, 2, 3]))
    assert parent.tolist() == [1, 2, -1, -1]


def test_kept_links_never_remove_an_always_kept_row():
    a, b, s = np.array([0, 1]), np.array([1, 2]), np.array([0.9, 0.9])
    # rows 0 and 1 are published (always kept): 1 stays although it resembles 0, and 2 links to 1
    parent, sim = kept_links(3, a, b, s, np.array([-np.inf, -np.inf, 2.0]), np.array([True, True, False]))
    assert parent.tolist() == [-1, -1, 1] and sim[2] == 0.9
    # without that, 1 goes and 2 stays
    parent, _ = kept_links(3, a, b, s, np.arange(3.0))
    assert parent.tolist() == [-1, 0, -1]


def test_links_without_pairs_and_edge_lookup():
    none = np.empty(0, np.int64)
    for parent, sim in (
        spanning_links(3, none, none, np.empty(0), np.arange(3)),
        kept_links(3, none, none, np.empty(0), np.arange(3.0)),
    ):
        assert parent.tolist() == [-1, -1, -1] and np.isnan(sim).all()
    a, b, s = np.array([0, 2]), np.array([1, 3]), np.array([0.7, 0.9])
    assert edge_similarity(4, a, b, s, np.array([3, 1]), np.array([2, 0])).tolist() == [0.9, 0.7]
    with pytest.raises(ValueError, match="not among the pairs"):
        edge_similarity(4, a, b, s, np.array([0]), np.array([3]))


def test_clusters_option_is_validated():
    with pytest.raises(ValueError, match="clusters"):
        NearDedupStage(type="near_dedup", clusters="transitive")


@pytest.mark.parametrize("seed", range(5))
def test_links_on_random_graphs(seed):
    """Every link is a verified pair with its similarity; connected links lead to the representative;
    non-transitive kept rows are a maximal set with no pair between them."""
    from curate.dedup.lsh import clusters, representatives

    rng = np.random.default_rng(seed)
    n = 400
    a, b = rng.integers(0, n, 600), rng.integers(0, n, 600)
    a, b = np.minimum(a, b), np.maximum(a, b)
    codes = np.unique(a[a != b] * n + b[a != b])
    a, b = codes // n, codes % n
    sim = rng.uniform(0.8, 1.0, a.size)
    prio = rng.permutation(n).astype(np.float64)
    pairs = dict(zip(zip(a.tolist(), b.tolist(), strict=True), sim.tolist(), strict=True))

    rep = representatives(clusters(n, a, b), prio)
    parent, link_sim = spanning_links(n, a, b, sim, rep)
    assert set(np.flatnonzero(parent >= 0).tolist()) == set(np.flatnonzero(rep != np.arange(n)).tolist())
    for i in np.flatnonzero(parent >= 0).tolist():
        j = int(parent[i])
        assert pairs[(min(i, j), max(i, j))] == link_sim[i]
        seen = 0
        while parent[j] >= 0 and seen < n:  # following links ends at the representative
            j, seen = int(parent[j]), seen + 1
        assert j == rep[i]

    parent, link_sim = kept_links(n, a, b, sim, prio)
    kept = parent < 0
    gone = np.flatnonzero(~kept)
    assert kept[parent[gone]].all()
    assert all(pairs[(min(i, int(parent[i])), max(i, int(parent[i])))] == link_sim[i] for i in gone.tolist())
    assert not (kept[a] & kept[b]).any()  # no verified pair between two kept rows
    # a removed row is linked to its most similar kept neighbour that came first
    for i in gone.tolist():
        nbrs = [(s, j) for (x, y), s in pairs.items() for j in ((y,) if x == i else (x,) if y == i else ())]
        best = max(s for s, j in nbrs if kept[j] and prio[j] < prio[i])
        assert link_sim[i] == best


def _words_jaccard(x: str, y: str, n: int = 5) -> float:
    """Jaccard of 5-word shingles after the default normalization, in plain Python (independent of ours)."""
    import re

    def sh(t: str) -> set[tuple[str, ...]]:
        w = re.sub(r"[^\w\s]+|_+", " ", t.lower()).split()
        return {tuple(w[i : i + n]) for i in range(max(1, len(w) - n + 1))}

    a, b = sh(x), sh(y)
    return len(a & b) / len(a | b) if a | b else 1.0


@pytest.mark.parametrize("clusters", ["connected", "non_transitive"])
def test_public_outputs_audit_names_truly_similar_pairs(shared_file, clusters):
    """AlpacaEval's model outputs (2,415 texts; alpaca-7b's appear twice, plus near-copies): every removed
    row's similarity is the exact Jaccard of the row and its duplicate_of (before: 16 of 833 were not)."""
    import json

    ann = json.loads(shared_file("alpaca_eval_alpaca7b_vs_davinci003_gpt4_annotations.json").read_text())
    outs = json.loads(shared_file("alpaca_eval_alpaca7b_outputs.json").read_text())
    texts = [r["output_1"] for r in ann] + [r["output_2"] for r in ann] + [r["output"] for r in outs]
    stage = NearDedupStage(type="near_dedup", threshold=0.5, clusters=clusters)
    dec = near_duplicates(pl.Series(texts), stage, np.arange(len(texts), dtype=np.float64))
    removed = np.flatnonzero(dec.removed)
    assert removed.size > 800
    wrong = [
        i for i in removed.tolist() if abs(_words_jaccard(texts[i], texts[dec.dup_of[i]]) - dec.similarity[i]) > 1e-9
    ]
    assert wrong == []
    assert (dec.similarity[removed] >= 0.5).all()
