"""Aggregation rules, ties, discards and pending records."""

from __future__ import annotations

import polars as pl
import pytest

from curate.annotate.aggregate import RESPONSES_SCHEMA, aggregate, normalize_ranks
from schemas.annotation import AggregateSpec


def responses(*rows: tuple) -> pl.DataFrame:
    """rows: (record_id, annotator, status, ranks, preferred, ratings)."""
    return pl.DataFrame([dict(zip(RESPONSES_SCHEMA.names(), r, strict=True)) for r in rows], schema=RESPONSES_SCHEMA)


def outcomes(agg) -> dict[str, str]:
    return dict(agg.decisions.select("record_id", "outcome").iter_rows())


def test_mean_rank_picks_best_and_worst_of_three() -> None:
    resp = responses(
        ("r", "a", "submitted", [1, 2, 3], None, None),
        ("r", "b", "submitted", [2, 1, 3], None, None),
        ("r", "c", "submitted", [1, 3, 2], None, None),
    )
    agg = aggregate(resp, ["r"], AggregateSpec())
    # mean ranks: 1.33, 2.0, 2.67 -> best 0, worst 2
    assert agg.pairs.select("chosen", "rejected").row(0) == (0, 2)
    assert agg.pairs["margin"].item() == pytest.approx(8 / 3 - 4 / 3)
    assert agg.pairs["annotators"].to_list() == [["a", "b", "c"]]
    all_pairs = aggregate(resp, ["r"], AggregateSpec(pairs="all_pairs")).pairs
    assert sorted(all_pairs.select("chosen", "rejected").rows()) == [(0, 1), (0, 2), (1, 2)]


def test_majority_needs_more_than_min_agreement() -> None:
    resp = responses(
        ("r", "a", "submitted", [1, 2], None, None),
        ("r", "b", "submitted", [1, 2], None, None),
        ("r", "c", "submitted", [2, 1], None, None),
    )
    assert outcomes(aggregate(resp, ["r"], AggregateSpec(rule="majority"))) == {"r": "pair"}  # 2/3 > 0.5
    strict = AggregateSpec(rule="majority", min_agreement=0.7)
    assert outcomes(aggregate(resp, ["r"], strict)) == {"r": "no_majority"}


def test_ties_are_dropped_or_broken_by_the_suggestion() -> None:
    resp = responses(("r", "a", "submitted", [1, 2], None, None), ("r", "b", "submitted", [2, 1], None, None))
    assert outcomes(aggregate(resp, ["r"], AggregateSpec())) == {"r": "tie"}
    sug = pl.DataFrame({"record_id": ["r"], "suggested": [1]})
    broken = aggregate(resp, ["r"], AggregateSpec(ties="suggestion"), sug)
    assert outcomes(broken) == {"r": "pair"} and broken.pairs.select("chosen", "rejected").row(0) == (1, 0)
    # without a suggestion the tie stays a tie
    assert outcomes(aggregate(resp, ["r"], AggregateSpec(ties="suggestion"))) == {"r": "tie"}


def test_discarded_pending_and_min_annotators() -> None:
    resp = responses(
        ("d", "a", "discarded", None, None, None),
        ("p", "a", "draft", [1, 2], None, None),
        ("one", "a", "submitted", [2, 1], None, None),
        ("mixed", "a", "submitted", [1, 2], None, None),
        ("mixed", "b", "discarded", None, None, None),
    )
    agg = aggregate(resp, ["d", "p", "one", "mixed", "none"], AggregateSpec())
    assert outcomes(agg) == {"d": "discarded", "p": "pending", "one": "pair", "mixed": "pair", "none": "pending"}
    assert agg.counts() == {"pair": 2, "tie": 0, "no_majority": 0, "discarded": 1, "pending": 2}
    strict = aggregate(resp, ["one", "mixed"], AggregateSpec(min_annotators=2))
    assert outcomes(strict) == {"one": "pending", "mixed": "pending"}


def test_labels_and_ratings_become_ranks() -> None:
    resp = responses(
        ("r", "a", "submitted", None, 1, None),  # label: response 2 better
        ("r", "b", "submitted", None, -1, None),  # label: tie
        ("s", "a", "submitted", None, None, [2.0, 5.0, 3.0]),  # ratings only
    )
    ranks = normalize_ranks(resp)["ranks"].to_list()
    assert ranks == [[2, 1], [1, 1], [3, 1, 2]]
    agg = aggregate(resp, ["r", "s"], AggregateSpec())
    assert outcomes(agg) == {"r": "pair", "s": "pair"}
    s = agg.pairs.filter(pl.col("record_id") == "s").row(0, named=True)
    assert (s["chosen"], s["rejected"], s["score_chosen"], s["score_rejected"], s["margin"]) == (1, 0, 5.0, 2.0, 3.0)


def test_no_responses_at_all() -> None:
    agg = aggregate(pl.DataFrame(schema=RESPONSES_SCHEMA), ["x", "y"], AggregateSpec())
    assert agg.counts()["pending"] == 2 and agg.pairs.height == 0
