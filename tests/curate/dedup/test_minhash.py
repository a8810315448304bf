"""MinHash signatures (one-permutation hashing, numba kernel): shape, determinism, accuracy against
exact Jaccard, shingle kinds, short/empty documents, normalization, and threads."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from curate.dedup import minhash
from curate.dedup.minhash import EMPTY, estimated_jaccard, exact_jaccard, sketch
from schemas.stages import MinHashParams, Normalization

WORDS = [f"w{i}" for i in range(5000)]


def word_shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = text.split()
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)} if len(w) >= n else {tuple(w)}


def jaccard(x: str, y: str, n: int = 5) -> float:
    a, b = word_shingles(x, n), word_shingles(y, n)
    return len(a & b) / len(a | b)


def edited_pair(rng: random.Random, length: int, edits: int) -> tuple[str, str]:
    """A document of distinct words and a copy with ``edits`` words substituted at random places."""
    base = rng.sample(WORDS, length)
    copy = list(base)
    for i in rng.sample(range(length), edits):
        copy[i] = f"x{rng.randrange(10**9)}"
    return " ".join(base), " ".join(copy)


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str, float]]:
    """About 200 pairs over the whole similarity range (0.05 .. 1.0)."""
    rng = random.Random(3)
    out = []
    for k in range(200):
        a, b = edited_pair(rng, 200, [0, 1, 2, 4, 6, 9, 12, 16, 22, 30, 45, 70][k % 12])
        out.append((a, b, jaccard(a, b)))
    return out


def test_shape_dtype_and_determinism():
    texts = pl.Series(["the cat sat on the mat today", "a dog barked at the moon all night", ""])
    p = MinHashParams(num_perm=64)
    one, two = sketch(texts, p), sketch(texts, p)
    assert one.signatures.shape == (3, 64)
    assert one.signatures.dtype == np.uint32
    assert np.array_equal(one.signatures, two.signatures)
    assert np.array_equal(one.shingles, two.shingles)
    assert one.offsets.tolist() == [0, 3, 7, 7]  # 7 words -> 3 shingles, 8 words -> 4, empty -> 0
    assert sketch(texts, MinHashParams(num_perm=256)).signatures.shape == (3, 256)


def test_seed_changes_signatures():
    texts = pl.Series([" ".join(WORDS[i : i + 100]) for i in range(0, 1000, 100)])
    a = sketch(texts, MinHashParams(seed=1)).signatures
    b = sketch(texts, MinHashParams(seed=2)).signatures
    assert (a != b).mean() > 0.95


@pytest.mark.parametrize("repeats", [1, 2, 4])
def test_estimate_close_to_exact(pairs, repeats):
    texts = pl.Series([t for a, b, _ in pairs for t in (a, b)])
    sk = sketch(texts, MinHashParams(num_perm=128, repeats=repeats))
    left, right = np.arange(0, len(texts), 2), np.arange(1, len(texts), 2)
    exact = np.array([s for _, _, s in pairs])
    est = estimated_jaccard(sk.signatures, left, right)
    err = est - exact
    # one pair per similarity level: each within 0.12 (3.5 sigma of the 128-bin estimate)
    first = list(range(12))
    assert np.abs(err[first]).max() < 0.12, list(zip(exact[first].round(3), est[first].round(3), strict=True))
    # all pairs: unbiased, and spread like a binomial estimate over 128 bins
    assert abs(err.mean()) < 0.01
    assert np.sqrt((err**2).mean()) < 0.045  # about sqrt(J(1-J)/128) at worst
    assert np.array_equal(est[exact == 1.0], np.ones((exact == 1.0).sum()))
    # the kernel's exact Jaccard (sorted shingle hashes) agrees with Python sets
    assert np.allclose(exact_jaccard(sk, left, sk, right), exact)


def test_char_shingles():
    p = MinHashParams(shingle="char", shingle_size=3, num_perm=128)
    texts = pl.Series(["abcdefgh", "abcdefgx", "ABCDEFGH", "zzzzzzzz", "ab"])
    sk = sketch(texts, p)
    # "abcdefgh": abc bcd cde def efg fgh (6); with ...gx: 5 shared of 7 distinct
    assert np.diff(sk.offsets).tolist() == [6, 6, 6, 6, 1]
    ej = exact_jaccard(sk, np.array([0, 0, 0]), sk, np.array([1, 2, 3]))
    assert ej.tolist() == pytest.approx([5 / 7, 1.0, 0.0])
    assert np.array_equal(sk.signatures[0], sk.signatures[2])  # case folded
    # a repeated character gives one distinct shingle
    assert sk.unique_sets()[1][3] == 1
    # char shingles see inside words; word shingles of the same short texts do not
    words = sketch(pl.Series(["abcdefgh", "abcdefgx"]), MinHashParams(shingle_size=1))
    assert exact_jaccard(words, np.array([0]), words, np.array([1]))[0] == 0.0


def test_char_shingles_space_runs_are_one_token():
    p = MinHashParams(shingle="char", shingle_size=3)
    sk = sketch(pl.Series(["ab  cd", "ab cd", "ab, cd", "ab\t\ncd"]), p)
    assert all(np.array_equal(sk.signatures[0], sk.signatures[i]) for i in (1, 2, 3))


def test_char_shingles_ignore_leading_and_trailing_separators():
    p = MinHashParams(shingle="char", shingle_size=3)
    sk = sketch(pl.Series(["Hello, WORLD!", "hello world", "  ...hello   world?! ", "hello worl"]), p)
    assert np.diff(sk.offsets).tolist()[:3] == [9, 9, 9]
    assert np.array_equal(sk.signatures[0], sk.signatures[1])
    assert np.array_equal(sk.signatures[0], sk.signatures[2])
    assert not np.array_equal(sk.signatures[0], sk.signatures[3])


def test_short_and_empty_documents():
    texts = pl.Series(["one two three", "one two three", "one two four", "", "   ", "!!! ...", None, "a b c d e"])
    sk = sketch(texts, MinHashParams())
    assert sk.empty.tolist() == [False, False, False, True, True, True, True, False]
    # a document shorter than the shingle is one shingle of all its words
    assert np.diff(sk.offsets).tolist() == [1, 1, 1, 0, 0, 0, 0, 1]
    assert np.array_equal(sk.signatures[0], sk.signatures[1])
    assert not np.array_equal(sk.signatures[0], sk.signatures[2])
    assert (sk.signatures[3:7] == EMPTY).all()
    assert (sk.signatures[[0, 1, 2, 7]] != EMPTY).all()  # densified: no empty bins left


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hello, WORLD!", "hello world"),
        ("  Hello,\tWORLD!!  ", "hello world"),
        ("It's a well-known fact (really).", "it s a well known fact really"),
        ("Café — NAÏVE résumé!", "café naïve résumé"),
        ("ＨＥＬＬＯ　ｗｏｒｌｄ", "hello world"),  # full-width letters and ideographic space: NFKC
        ("hello\u00a0world", "hello world"),
        ("Ünïcödé «quotes» and ASCII, mixed!", "ünïcödé quotes and ascii mixed"),
    ],
)
def test_normalization_equates(a, b):
    base = " one two three four five six"  # long enough for several 5-word shingles
    sk = sketch(pl.Series([a + base, b + base]), MinHashParams())
    assert np.array_equal(sk.signatures[0], sk.signatures[1])
    assert np.diff(sk.offsets)[0] == np.diff(sk.offsets)[1]


def test_normalization_can_be_turned_off():
    texts = pl.Series(["Hello World again and again", "hello world again and again"])
    on = sketch(texts, MinHashParams(shingle_size=2))
    off = sketch(texts, MinHashParams(shingle_size=2, normalization=Normalization(case=False)))
    assert np.array_equal(on.signatures[0], on.signatures[1])
    assert not np.array_equal(off.signatures[0], off.signatures[1])
    punct = pl.Series(["hello, world again and again", "hello world again and again"])
    keep = sketch(punct, MinHashParams(shingle_size=2, normalization=Normalization(punctuation=False)))
    assert not np.array_equal(keep.signatures[0], keep.signatures[1])
    # the same holds on the non-ASCII path (polars normalization instead of the kernel's byte rules)
    uni = pl.Series(["Héllo World again and again", "héllo world again and again"])
    assert not np.array_equal(*sketch(uni, MinHashParams(normalization=Normalization(case=False))).signatures)
    assert np.array_equal(*sketch(uni, MinHashParams()).signatures)


def test_underscore_consistent_between_ascii_and_unicode_paths():
    """'_' is punctuation (\\p{Pc}) on both paths: the kernel's ASCII bytes and polars for non-ASCII text."""
    texts = pl.Series(["foo_bar one two three four", "foo bar one two three four café"])
    sk = sketch(texts, MinHashParams(shingle_size=1), keep_shingles=True)
    values, sizes = sk.unique_sets()
    first = set(values[sk.offsets[0] : sk.offsets[0] + sizes[0]].tolist())
    second = set(values[sk.offsets[1] : sk.offsets[1] + sizes[1]].tolist())
    assert first < second  # every word of the first is a word of the second


@pytest.mark.parametrize("chunk", [64, minhash.CHUNK_DOCS])
def test_workers_give_identical_results(monkeypatch, chunk):
    rng = random.Random(5)
    n = 1000 if chunk == 64 else minhash.CHUNK_DOCS * 2 + 17
    texts = pl.Series(
        [" ".join(rng.choices(WORDS[:300], k=rng.randrange(0, 40))) + " Ü" * (i % 7 == 0) for i in range(n)]
    )
    monkeypatch.setattr(minhash, "CHUNK_DOCS", chunk)
    p = MinHashParams(num_perm=64)
    one = sketch(texts, p, keep_shingles=True, workers=1)
    two = sketch(texts, p, keep_shingles=True, workers=2)
    assert np.array_equal(one.signatures, two.signatures)
    assert np.array_equal(one.offsets, two.offsets)
    assert np.array_equal(one.shingles, two.shingles)
    assert np.array_equal(one.empty, two.empty)
    # and chunking itself changes nothing
    monkeypatch.setattr(minhash, "CHUNK_DOCS", 10**9)
    assert np.array_equal(sketch(texts, p, workers=1).signatures, one.signatures)


@pytest.mark.parametrize("unicode", [True, False])
def test_unicode_whitespace_separates_words(unicode):
    norm = Normalization(unicode=unicode)
    seps = ["\u2028", "\u2029", "\u00a0", "\u3000", "\u2009"]
    texts = pl.Series(
        [f"alpha{sep}beta gamma delta epsilon zeta" for sep in seps] + ["alpha beta gamma delta epsilon zeta"]
    )
    sk = sketch(texts, MinHashParams(normalization=norm))
    assert all(np.array_equal(sk.signatures[i], sk.signatures[-1]) for i in range(len(seps)))
