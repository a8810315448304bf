"""Rated completions (UltraFeedback-style) -> preference pairs.

A row holds a prompt and several completions, each with a numeric rating: either one list of objects
(``completions: [{text, rating}]``, keys configurable) or two parallel lists (``responses``,
``ratings``). The lists are normalized once per row in Python (walking nested objects); pairs are
then formed with polars on one row per completion.

Example (recipe snippet):
    convert: ratings_to_preference        # {prompt, completions: [{text, rating}]} -> best vs worst
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate.convert.messages import single_turn
from curate.convert.preference import JudgeKind, judge_expr, preference_frame
from curate.convert.registry import REJECT_SCHEMA, ROW, ConvertResult, InputField, converter
from schemas.kinds import Kind

DEFAULT_TEXT_KEYS = ("text", "response")
DEFAULT_SCORE_KEYS = ("rating", "score")


class RatingsOptions(BaseModel):
    """``mode``: ``best_worst`` gives one pair per row (highest vs lowest rating; the earlier completion
    wins a tie within the top or the bottom), ``all_pairs`` one per two completions whose ratings differ.
    ``min_margin``: a pair needs chosen rating - rejected rating >= this (and > 0 always).
    ``text_key`` / ``score_key``: keys inside ``completions`` items (default: ``text`` then ``response``;
    ``rating`` then ``score``). ``judge_kind`` / ``judge_model``: who gave the ratings."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["best_worst", "all_pairs"] = "best_worst"
    min_margin: float = Field(default=0.0, ge=0.0)
    text_key: str | None = None
    score_key: str | None = None
    judge_kind: JudgeKind = "ai"
    judge_model: str | None = None


def _score(value: Any) -> float | None:
    """A rating as a float; None for a missing, non-numeric or NaN rating (e.g. UltraFeedback's "N/A")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and not math.isnan(value):
        return float(value)
    return None


def _first(item: dict[str, Any], keys: Sequence[str]) -> tuple[str, Any]:
    for key in keys:
        if key in item:
            return key, item[key]
    return keys[0], None


def normalize_rated(
    completions: Sequence[Any] | None,
    responses: Sequence[Any] | None,
    ratings: Sequence[Any] | None,
    *,
    text_keys: Sequence[str] = DEFAULT_TEXT_KEYS,
    score_keys: Sequence[str] = DEFAULT_SCORE_KEYS,
) -> tuple[list[list[tuple[str, float]] | None], list[str | None]]:
    """Per row, the rated completions as ``(text, rating)`` (unrated ones left out), or ``None`` and why.

    ``completions`` wins when a row has it; otherwise ``responses`` and ``ratings`` are zipped.

    Example:
        >>> rows = [[{"text": "a", "rating": 5}, {"response": "b", "score": "2"}, {"text": "c", "rating": "N/A"}]]
        >>> normalize_rated(rows, None, None)
        ([[('a', 5.0), ('b', 2.0)]], [None])
    """
    n = len(completions if completions is not None else responses if responses is not None else ratings or [])
    comps = completions if completions is not None else [None] * n
    resps = responses if responses is not None else [None] * n
    rates = ratings if ratings is not None else [None] * n
    out: list[list[tuple[str, float]] | None] = []
    reasons: list[str | None] = []
    for comp, resp, rate in zip(comps, resps, rates, strict=True):
        items: list[tuple[str, float]] | None = []
        reason: str | None = None
        if comp is not None:
            if not isinstance(comp, list):
                items, reason = None, "wrong_type: completions must be a list"
            else:
                for i, item in enumerate(comp):
                    if not isinstance(item, dict):
                        items, reason = None, f"wrong_type: completions[{i}] is not an object"
                        break
                    key, text = _first(item, text_keys)
                    if not isinstance(text, str):
                        items, reason = None, f"wrong_type: completions[{i}].{key} is missing or not text"
                        break
                    score = _score(_first(item, score_keys)[1])
                    if score is not None:
                        items.append((text, score))
        elif resp is not None and rate is not None:
            if not isinstance(resp, list) or not isinstance(rate, list):
                items, reason = None, "wrong_type: responses and ratings must be lists"
            elif len(resp) != len(rate):
                items, reason = None, f"length_mismatch: {len(resp)} responses but {len(rate)} ratings"
            else:
                for i, (text, raw) in enumerate(zip(resp, rate, strict=True)):
                    if not isinstance(text, str):
                        items, reason = None, f"wrong_type: responses[{i}] is not text"
                        break
                    score = _score(raw)
                    if score is not None:
                        items.append((text, score))
        else:
            items, reason = None, "missing_field: row has neither completions nor responses + ratings"
        if items is not None and len(items) < 2:
            items, reason = None, f"too_few: {len(items)} rated completion(s), a pair needs 2"
        out.append(items)
        reasons.append(reason)
    return out, reasons


def _column(df: pl.DataFrame, name: str) -> list[Any] | None:
    return df[name].to_list() if name in df.columns else None


@converter(
    "ratings_to_preference",
    input=None,
    output=Kind.PREFERENCE,
    summary="A prompt with rated completions -> best-vs-worst pair (or every pair past a rating margin)",
    fields=(
        InputField("prompt", "str", doc="the prompt, given as a user message"),
        InputField("completions", "list", required=False, doc="list of {text|response, rating|score}"),
        InputField("responses", "list", required=False, doc="completion texts, parallel to ratings"),
        InputField("ratings", "list", required=False, doc="numeric ratings, parallel to responses"),
    ),
    options=RatingsOptions,
    example="convert: ratings_to_preference\noptions: {mode: all_pairs, min_margin: 1, judge_model: gpt-4}",
)
def ratings_to_preference(df: pl.DataFrame, opts: RatingsOptions) -> ConvertResult:
    """``{"prompt": "Hi", "completions": [{"text": "Hello!", "rating": 5}, {"text": "meh", "rating": 2},
    {"text": "Hey", "rating": 4}]}`` -> ``{prompt: [{user: "Hi"}], chosen: [{assistant: "Hello!"}],
    rejected: [{assistant: "meh"}], score_chosen: 5, score_rejected: 2, margin: 3}``."""
    items, reasons = normalize_rated(
        _column(df, "completions"),
        _column(df, "responses"),
        _column(df, "ratings"),
        text_keys=(opts.text_key,) if opts.text_key else DEFAULT_TEXT_KEYS,
        score_keys=(opts.score_key,) if opts.score_key else DEFAULT_SCORE_KEYS,
    )
    item_type = pl.List(pl.Struct({"text": pl.String, "score": pl.Float64}))
    rows = df.select(ROW, "prompt").with_columns(
        pl.Series(
            "__items", [None if r is None else [{"text": t, "score": s} for t, s in r] for r in items], item_type
        ),
        pl.Series("__reason", reasons, pl.String),
    )
    long = (
        rows.filter(pl.col("__reason").is_null())
        .select(ROW, "__items")
        .explode("__items")
        .unnest("__items")
        .with_columns(pl.int_range(pl.len()).over(ROW).alias("i"))
    )
    if opts.mode == "best_worst":
        best = long.sort(ROW, "score", "i", descending=[False, True, False]).group_by(ROW, maintain_order=True).first()
        worst = long.sort(ROW, "score", "i").group_by(ROW, maintain_order=True).first()
        pairs = best.join(worst, on=ROW, suffix="_b", maintain_order="left")
    else:
        pairs = long.join(long, on=ROW, suffix="_b").sort(ROW, "i", "i_b")
    margin = pl.col("score") - pl.col("score_b")
    pairs = pairs.filter((margin > 0) & (margin >= opts.min_margin))
    ok = pairs.join(rows.select(ROW, "prompt"), on=ROW, maintain_order="left").select(
        ROW,
        single_turn("user", pl.col("prompt")).alias("prompt"),
        single_turn("assistant", pl.col("text")).alias("chosen"),
        single_turn("assistant", pl.col("text_b")).alias("rejected"),
        pl.col("score").alias("score_chosen"),
        pl.col("score_b").alias("score_rejected"),
        margin.alias("margin"),
        judge_expr(opts.judge_kind, model=opts.judge_model).alias("judge"),
    )
    spread = long.group_by(ROW).agg((pl.col("score").max() - pl.col("score").min()).alias("spread"))
    unpaired = (
        rows.filter(pl.col("__reason").is_null() & ~pl.col(ROW).is_in(ok[ROW].implode()))
        .join(spread, on=ROW, how="left", maintain_order="left")
        .select(
            ROW,
            pl.when(pl.col("spread") == 0)
            .then(pl.lit("tie: every completion has the same rating"))
            .otherwise(pl.format("no_pairs: no two ratings differ by at least {}", pl.lit(opts.min_margin)))
            .alias("reason"),
        )
    )
    bad = rows.filter(pl.col("__reason").is_not_null()).select(ROW, pl.col("__reason").alias("reason"))
    rejected = pl.concat([bad, unpaired]).sort(ROW).cast(dict(REJECT_SCHEMA))
    return ConvertResult(preference_frame(ok), rejected)
