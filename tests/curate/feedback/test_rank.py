"""Pair choice from verdicts, by hand on tiny inline scores (no model)."""

from __future__ import annotations

from curate.feedback.generate import Candidate
from curate.feedback.rank import Verdict, choose, is_tie, uncertain, usable
from schemas.feedback import PairSpec, RouteSpec


def test_usable_drops_errors_empties_and_repeats() -> None:
    cands = [
        Candidate("g", "Paris."),
        Candidate("g", "", error=None),
        Candidate("g", "boom", error="HTTP 500"),
        Candidate("g", " Paris. "),
        Candidate("h", "Lyon."),
    ]
    assert [c.text for c in usable(cands)] == ["Paris.", "Lyon."]


def test_best_worst_takes_extremes_and_margin() -> None:
    v = Verdict(scores=[0.2, 0.9, 0.5])
    (p,) = choose(v, PairSpec())
    assert (p.chosen, p.rejected, p.margin) == (1, 0, 0.7)


def test_margin_below_threshold_is_a_tie_dropped_or_kept() -> None:
    v = Verdict(scores=[3.0, 3.25])
    assert choose(v, PairSpec(min_margin=0.5)) == []
    assert is_tie(v, [], PairSpec(min_margin=0.5))
    kept = choose(v, PairSpec(min_margin=0.5, ties="keep"))
    assert [(p.chosen, p.rejected, p.margin) for p in kept] == [(1, 0, 0.25)]
    assert is_tie(v, kept, PairSpec(min_margin=0.5, ties="keep"))


def test_equal_scores_never_make_a_pair() -> None:
    v = Verdict(scores=[0.5, 0.5])
    assert choose(v, PairSpec()) == []
    assert choose(v, PairSpec(strategy="all")) == []


def test_all_pairs_above_margin_ordered_by_margin() -> None:
    v = Verdict(scores=[1.0, 0.0, 0.5])
    got = [(p.chosen, p.rejected, p.margin) for p in choose(v, PairSpec(strategy="all", min_margin=0.4))]
    assert got == [(0, 1, 1.0), (0, 2, 0.5), (2, 1, 0.5)]


def test_pair_carries_the_direct_comparisons_confidence() -> None:
    v = Verdict(scores=[0.0, 1.0], confidence={(0, 1): 0.8}, consistent={(0, 1): True})
    (p,) = choose(v, PairSpec())
    assert (p.chosen, p.rejected, p.confidence) == (1, 0, 0.8)


def test_revisions_pair_each_revision_over_its_original() -> None:
    v = Verdict(revisions=["Better A.", "", "Better C."])
    got = [(p.rejected, p.revised) for p in choose(v, PairSpec())]
    assert got == [(0, "Better A."), (2, "Better C.")]


def test_routing_uncertain_verdicts() -> None:
    spec = PairSpec()
    confident = Verdict(scores=[1.0, 0.0], confidence={(0, 1): 0.95}, consistent={(0, 1): True})
    low = Verdict(scores=[1.0, 0.0], confidence={(0, 1): 0.6}, consistent={(0, 1): True})
    flipped = Verdict(scores=[0.5, 0.5], confidence={(0, 1): None}, consistent={(0, 1): False})
    route = RouteSpec(to_annotators="uncertain", min_confidence=0.75)
    assert not uncertain(confident, choose(confident, spec), spec, route)
    assert uncertain(low, choose(low, spec), spec, route)
    assert uncertain(flipped, choose(flipped, spec), spec, route)
    assert not uncertain(low, choose(low, spec), spec, RouteSpec())
    assert uncertain(confident, choose(confident, spec), spec, RouteSpec(to_annotators="all"))
    # without log-probs a consistent verdict has no confidence figure: it is not uncertain
    plain = Verdict(scores=[1.0, 0.0], confidence={(0, 1): None}, consistent={(0, 1): True})
    assert not uncertain(plain, choose(plain, spec), spec, route)
