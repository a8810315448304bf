"""Turn several annotators' responses per record into one decision and preference pairs.

Input: ``responses``, one row per (record, annotator) with ``record_id``, ``annotator``, ``status``
(``submitted`` / ``discarded`` / ``draft``), ``ranks`` (list of ranks, one per candidate in display
order, 1 = best, equal ranks allowed; null when the annotator did not rank), ``preferred`` (index of
the preferred candidate, -1 for a tie, null when not asked) and ``ratings`` (list of 1-5, nullable).
A response's ranks come from the ranking question, else from the preferred label (winner 1, others
2), else from the ratings (higher rating = better rank).

Every record of ``records`` ends with exactly one ``outcome``:

- ``pair``: a best and a worst response were decided;
- ``tie``: the best responses tie (``ties: drop``, or no suggestion to break it);
- ``no_majority``: rule ``majority`` and no response won more than ``min_agreement`` of the votes;
- ``discarded``: no submitted response and at least one annotator discarded the record;
- ``pending``: fewer than ``min_annotators`` submitted responses.

Example:
    >>> import polars as pl
    >>> from schemas.annotation import AggregateSpec
    >>> resp = pl.DataFrame({"record_id": ["r1", "r1"], "annotator": ["ann", "bob"],
    ...     "status": ["submitted", "submitted"], "ranks": [[1, 2], [2, 1]],
    ...     "preferred": [None, None], "ratings": [None, None]},
    ...     schema_overrides={"preferred": pl.Int64, "ratings": pl.List(pl.Float64)})
    >>> aggregate(resp, ["r1", "r2"], AggregateSpec()).decisions.select("record_id", "outcome").rows()
    [('r1', 'tie'), ('r2', 'pending')]
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from schemas.annotation import AggregateSpec

OUTCOMES = ("pair", "tie", "no_majority", "discarded", "pending")

RESPONSES_SCHEMA = pl.Schema(
    {
        "record_id": pl.String(),
        "annotator": pl.String(),
        "status": pl.String(),
        "ranks": pl.List(pl.Int64()),
        "preferred": pl.Int64(),
        "ratings": pl.List(pl.Float64()),
    }
)


@dataclass(frozen=True)
class Aggregated:
    """``decisions``: one row per record (outcome, best, worst, mean ranks, annotators);
    ``pairs``: record_id, chosen, rejected (candidate indexes), score_chosen, score_rejected, margin,
    annotators; ``votes``: the long (record, annotator, candidate, rank, rating) table used."""

    decisions: pl.DataFrame
    pairs: pl.DataFrame
    votes: pl.DataFrame

    def counts(self) -> dict[str, int]:
        """Records per outcome (every outcome present, zeros included)."""
        got = dict(self.decisions["outcome"].value_counts().iter_rows()) if self.decisions.height else {}
        return {o: int(got.get(o, 0)) for o in OUTCOMES}


def normalize_ranks(responses: pl.DataFrame) -> pl.DataFrame:
    """Fill missing ``ranks`` from ``preferred`` (winner 1, others 2; a tie ranks all 1), else ``ratings``.

    The number of candidates of a label-only response is taken from the other responses of the
    same record (2 when none says).
    """
    df = responses.with_row_index("__row")
    n_known = pl.coalesce(pl.col("ranks").list.len(), pl.col("ratings").list.len())
    df = df.with_columns(pl.coalesce(n_known, n_known.max().over("record_id"), pl.lit(2)).alias("__n"))
    labelled = df.filter(pl.col("ranks").is_null() & pl.col("preferred").is_not_null())
    long = labelled.select("__row", "preferred", pl.int_ranges(0, pl.col("__n")).alias("i")).explode("i")
    rank = pl.when((pl.col("preferred") == -1) | (pl.col("i") == pl.col("preferred"))).then(1).otherwise(2)
    from_label = long.group_by("__row").agg(rank.cast(pl.Int64).sort_by(pl.col("i")).alias("__label"))
    from_ratings = pl.col("ratings").list.eval((-pl.element()).rank("dense").cast(pl.Int64))
    return (
        df.join(from_label, "__row", how="left")
        .with_columns(pl.coalesce(pl.col("ranks"), pl.col("__label"), from_ratings).alias("ranks"))
        .drop("__row", "__n", "__label")
    )


def votes_table(responses: pl.DataFrame) -> pl.DataFrame:
    """Submitted responses as a long table: record_id, annotator, candidate, rank, rating, top."""
    sub = normalize_ranks(responses.filter(pl.col("status") == "submitted"))
    sub = sub.filter(pl.col("ranks").is_not_null())
    long = sub.select(
        "record_id",
        "annotator",
        pl.int_ranges(0, pl.col("ranks").list.len()).alias("candidate"),
        "ranks",
        pl.when(pl.col("ratings").list.len() == pl.col("ranks").list.len())
        .then(pl.col("ratings"))
        .otherwise(pl.col("ranks").list.eval(pl.lit(None, pl.Float64)))
        .alias("ratings"),
    ).explode("candidate", "ranks", "ratings")
    long = long.rename({"ranks": "rank", "ratings": "rating"}).with_columns(pl.col("candidate").cast(pl.Int64))
    best = pl.col("rank").min().over("record_id", "annotator")
    n_best = (pl.col("rank") == best).sum().over("record_id", "annotator")
    return long.with_columns(((pl.col("rank") == best) & (n_best == 1)).alias("top"))


def aggregate(
    responses: pl.DataFrame,
    record_ids: list[str],
    spec: AggregateSpec,
    suggested_best: pl.DataFrame | None = None,
) -> Aggregated:
    """Decide every record of ``record_ids`` from ``responses`` (see the module docstring).

    ``suggested_best`` (record_id, suggested: candidate index) breaks ties with ``ties: suggestion``.
    """
    responses = responses.cast(RESPONSES_SCHEMA) if responses.height else pl.DataFrame(schema=RESPONSES_SCHEMA)
    votes = votes_table(responses)
    status_counts = responses.group_by("record_id").agg(
        (pl.col("status") == "submitted").sum().alias("submitted"),
        (pl.col("status") == "discarded").sum().alias("discarded"),
    )
    per_cand = votes.group_by("record_id", "candidate").agg(
        pl.col("rank").mean().alias("mean_rank"),
        pl.col("rating").mean().alias("mean_rating"),
        pl.col("top").sum().alias("votes"),
    )
    annotators = votes.group_by("record_id").agg(
        pl.col("annotator").unique().sort().alias("annotators"), pl.col("annotator").n_unique().alias("n")
    )
    best_rank = pl.col("mean_rank").min().over("record_id")
    worst_rank = pl.col("mean_rank").max().over("record_id")
    ranked = per_cand.join(annotators.select("record_id", "n"), "record_id").with_columns(
        (pl.col("mean_rank") == best_rank).alias("is_best"),
        (pl.col("mean_rank") == worst_rank).alias("is_worst"),
        ((pl.col("votes") / pl.col("n")) > spec.min_agreement).alias("wins_vote"),
    )
    if suggested_best is not None and suggested_best.height:
        ranked = ranked.join(
            suggested_best.select("record_id", pl.col("suggested").cast(pl.Int64)), "record_id", how="left"
        )
    else:
        ranked = ranked.with_columns(pl.lit(None, pl.Int64).alias("suggested"))
    per_record = ranked.group_by("record_id").agg(
        pl.col("candidate").filter(pl.col("is_best")).alias("best_set"),
        pl.col("candidate").filter(pl.col("wins_vote")).first().alias("vote_winner"),
        pl.col("suggested").first(),
        pl.col("mean_rank").min().alias("best_rank"),
        pl.col("mean_rank").max().alias("worst_rank"),
        pl.struct("candidate", "mean_rank").sort_by("candidate").alias("mean_ranks"),
    )
    if spec.rule == "majority":
        best = pl.col("vote_winner")
        undecided = pl.lit("no_majority")
    else:
        unique_best = pl.col("best_set").list.len() == 1
        broken = pl.col("best_set").list.contains(pl.col("suggested")) & pl.lit(spec.ties == "suggestion")
        best = pl.when(unique_best).then(pl.col("best_set").list.first()).when(broken).then(pl.col("suggested"))
        undecided = pl.lit("tie")
    per_record = per_record.with_columns(best.alias("best"))
    # the worst: highest mean rank among the others (lowest mean rating, then the last index, breaks ties)
    worst = (
        ranked.join(per_record.select("record_id", "best"), "record_id")
        .filter(pl.col("candidate") != pl.col("best"))
        .sort(
            ["record_id", "mean_rank", "mean_rating", "candidate"],
            descending=[False, True, False, True],
            nulls_last=True,
        )
        .group_by("record_id", maintain_order=True)
        .agg(pl.col("candidate").first().alias("worst"))
    )
    per_record = per_record.join(worst, "record_id", how="left")
    outcome_decided = pl.when(pl.col("best").is_null()).then(undecided).otherwise(pl.lit("pair"))
    base = pl.DataFrame({"record_id": record_ids}, schema={"record_id": pl.String}).unique(maintain_order=True)
    decisions = (
        base.join(annotators, "record_id", how="left")
        .join(status_counts, "record_id", how="left")
        .join(per_record, "record_id", how="left")
        .with_columns(pl.col("submitted", "discarded").fill_null(0), pl.col("n").fill_null(0))
        .with_columns(
            pl.when(pl.col("submitted") >= spec.min_annotators)
            .then(outcome_decided)
            .when((pl.col("submitted") == 0) & (pl.col("discarded") > 0))
            .then(pl.lit("discarded"))
            .otherwise(pl.lit("pending"))
            .alias("outcome")
        )
        .with_columns(
            pl.when(pl.col("outcome") == "pair").then(pl.col("best")).alias("best"),
            pl.when(pl.col("outcome") == "pair").then(pl.col("worst")).alias("worst"),
        )
        .select("record_id", "outcome", "best", "worst", "annotators", "submitted", "discarded", "mean_ranks")
    )
    pairs = _pairs(decisions, ranked, spec)
    return Aggregated(decisions=decisions, pairs=pairs, votes=votes)


def _pairs(decisions: pl.DataFrame, ranked: pl.DataFrame, spec: AggregateSpec) -> pl.DataFrame:
    decided = decisions.filter(pl.col("outcome") == "pair").select("record_id", "best", "worst", "annotators")
    stats = ranked.select("record_id", "candidate", "mean_rank", "mean_rating")
    if spec.pairs == "best_worst":
        pairs = decided.select(
            "record_id", pl.col("best").alias("chosen"), pl.col("worst").alias("rejected"), "annotators"
        )
    else:
        a = stats.rename({"candidate": "chosen", "mean_rank": "rank_c", "mean_rating": "_rc"})
        b = stats.rename({"candidate": "rejected", "mean_rank": "rank_r", "mean_rating": "_rr"})
        pairs = (
            decided.select("record_id", "annotators")
            .join(a, "record_id")
            .join(b, "record_id")
            .filter(pl.col("rank_c") < pl.col("rank_r"))
            .select("record_id", "chosen", "rejected", "annotators")
        )
    c = stats.rename({"candidate": "chosen", "mean_rank": "rank_c", "mean_rating": "score_chosen"})
    r = stats.rename({"candidate": "rejected", "mean_rank": "rank_r", "mean_rating": "score_rejected"})
    pairs = pairs.join(c, ["record_id", "chosen"], how="left").join(r, ["record_id", "rejected"], how="left")
    margin = (
        pl.when(pl.col("score_chosen").is_not_null() & pl.col("score_rejected").is_not_null())
        .then(pl.col("score_chosen") - pl.col("score_rejected"))
        .otherwise(pl.col("rank_r") - pl.col("rank_c"))
    )
    return (
        pairs.with_columns(margin.alias("margin"))
        .select("record_id", "chosen", "rejected", "score_chosen", "score_rejected", "margin", "annotators")
        .sort("record_id", "chosen", "rejected")
    )
