"""Exact dedup on normalized key text: each normalization step on and off, and which row stays."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from curate.dedup.decisions import priority_for
from curate.dedup.exact import exact_duplicates
from schemas.stages import Normalization


def dups(texts: list[str | None], norm: Normalization | None = None, priority=None) -> list[int]:
    keys = pl.Series(texts, dtype=pl.String)
    prio = np.arange(len(texts), dtype=np.float64) if priority is None else priority
    return exact_duplicates(keys, norm or Normalization(), prio).dup_of.tolist()


@pytest.mark.parametrize(
    ("step", "a", "b"),
    [
        ("case", "Hello World", "hello world"),
        ("punctuation", "hello, world!", "hello world"),
        ("whitespace", "  hello \t\n world ", "hello world"),
        ("unicode", "ｈｅｌｌｏ ﬁne", "hello fine"),  # full-width letters, the fi ligature
    ],
)
def test_each_normalization_step(step, a, b):
    assert dups([a, b]) == [-1, 0]
    off = Normalization(**{step: False})
    assert dups([a, b], off) == [-1, -1]


def test_all_steps_together_and_all_off():
    texts = ["  Ｈello,   WORLD!! ", "hello world", "hello-world", "Hello world.", "hello worlds"]
    assert dups(texts) == [-1, 0, 0, 0, -1]
    raw = Normalization(unicode=False, case=False, punctuation=False, whitespace=False)
    assert dups([*texts, "hello world"], raw) == [-1, -1, -1, -1, -1, 1]


def test_unicode_punctuation_and_spaces():
    texts = ["«Bonjour» — le monde…", "bonjour le monde", "bonjour\u00a0le\u3000monde"]
    assert dups(texts) == [-1, 0, 0]


def test_stats_and_similarity():
    keys = pl.Series(["a b", "A B", "c", "a  b"])
    dec = exact_duplicates(keys, Normalization(), np.arange(4.0))
    assert dec.dup_of.tolist() == [-1, 0, -1, 0]
    assert dec.stats["rows"] == 4 and dec.stats["duplicates"] == 2
    assert dec.similarity[1] == 1.0 and np.isnan(dec.similarity[0])
    assert dec.removed.tolist() == [False, True, False, True]


def test_keep_first():
    assert dups(["x", "y", "X", "x!", "y"]) == [-1, -1, 0, 0, 1]


def test_keep_longest_raw_text_wins_ties_to_first():
    texts = ["hello world", "Hello,   World!", "HELLO WORLD!!!", "hello world"]
    lengths = np.array([len(t) for t in texts])
    assert dups(texts, priority=priority_for("longest", lengths)) == [1, -1, 1, 1]
    assert dups(["ab", "AB"], priority=priority_for("longest", np.array([2, 2]))) == [-1, 0]


def test_keep_best_score_missing_scores_lose():
    texts = ["q", "Q", "q.", "r", "r"]
    scores = np.array([0.1, 0.7, np.nan, np.nan, np.nan])
    assert dups(texts, priority=priority_for("score", np.ones(5), scores)) == [1, -1, 1, -1, 3]


def test_distinct_texts_are_kept():
    texts = [f"document number {i}" for i in range(1000)]
    assert dups(texts) == [-1] * 1000
    assert dups([*texts, "Document Number 999"])[-1] == 999
