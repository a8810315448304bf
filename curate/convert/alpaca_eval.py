"""AlpacaEval pairwise annotations -> preference pairs.

AlpacaEval stores a ``preference`` in ``[1, 2]`` for ``output_1`` vs ``output_2``: below 1.5 the first
output is better, above 1.5 the second, 1.5 is a tie, and 0 or null means the annotator did not decide.
Files store it as an integer, a float, or a string such as ``"2.0"``.

Example (recipe snippet):
    convert: alpaca_eval_to_preference    # {instruction, output_1, output_2, preference} -> pairs
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict

from curate.convert.messages import single_turn
from curate.convert.preference import JudgeKind, judge_expr, preference_frame
from curate.convert.registry import ROW, ConvertResult, InputField, converter
from schemas.kinds import Kind


class AlpacaEvalOptions(BaseModel):
    """``judge_kind``: who annotated (``ai`` for AlpacaEval's LLM judges, ``human`` for its human sets);
    ``judge_model``: judge name when the ``annotator`` column is missing or null. With ``judge_kind: human``
    the annotator goes to ``judge.annotators`` instead of ``judge.model``."""

    model_config = ConfigDict(extra="forbid")
    judge_kind: JudgeKind = "ai"
    judge_model: str | None = None


def preference_value(raw: pl.Expr) -> pl.Expr:
    """The numeric value of a preference read as text (null when it is not a number)."""
    return raw.str.strip_chars().cast(pl.Float64, strict=False)


def preference_reason(raw: pl.Expr) -> pl.Expr:
    """Why a preference names no better output (null when it does)."""
    text = raw.str.strip_chars()
    p = preference_value(raw)
    shown = pl.lit("preference ") + text
    return (
        pl.when(raw.is_null() | (text.str.len_chars() == 0))
        .then(pl.lit("no_preference: preference is missing (no decision)"))
        .when(p.is_null() | p.is_nan())
        .then(pl.lit("bad_preference: ") + shown + pl.lit(" is not a number"))
        .when(p == 0)
        .then(pl.lit("no_preference: ") + shown + pl.lit(" means the annotator made no decision"))
        .when((p < 1) | (p > 2))
        .then(pl.lit("bad_preference: ") + shown + pl.lit(" is outside [1, 2]"))
        .when(p == 1.5)
        .then(pl.lit("tie: ") + shown + pl.lit(" names no better output"))
    )


@converter(
    "alpaca_eval_to_preference",
    input=None,
    output=Kind.PREFERENCE,
    summary="AlpacaEval {instruction, output_1, output_2, preference} -> a pair; ties and no-decisions rejected",
    fields=(
        InputField("instruction", "str", doc="the prompt, given as a user message"),
        InputField("output_1", "str", doc="first output"),
        InputField("output_2", "str", doc="second output"),
        InputField(
            "preference",
            "scalar",
            nullable=True,
            doc="1..2: below 1.5 output_1 wins, above 1.5 output_2; 1.5 tie; 0 none",
        ),
        InputField("annotator", "scalar", required=False, doc="the judge's name (judge.model)"),
    ),
    options=AlpacaEvalOptions,
    example="convert: alpaca_eval_to_preference\noptions: {judge_model: alpaca_eval_gpt4}",
)
def alpaca_eval_to_preference(df: pl.DataFrame, opts: AlpacaEvalOptions) -> ConvertResult:
    """``{"instruction": "Name a color", "output_1": "Blue", "output_2": "Car", "preference": "1"}`` ->
    ``{prompt: [{user: "Name a color"}], chosen: [{assistant: "Blue"}], rejected: [{assistant: "Car"}],
    margin: 1.0}`` (``"1.75"`` would pick ``output_2`` with margin 0.5)."""
    raw = pl.col("preference").cast(pl.String)  # ingest gives text; tolerate numbers from other callers
    p = preference_value(raw)
    first_wins = p < 1.5
    annotator = pl.col("annotator").cast(pl.String) if "annotator" in df.columns else pl.lit(None, dtype=pl.String)
    annotator = annotator.fill_null(pl.lit(opts.judge_model, dtype=pl.String))
    if opts.judge_kind == "human":
        annotators = (
            pl.when(annotator.is_null())
            .then(pl.lit(None, dtype=pl.List(pl.String)))
            .otherwise(pl.concat_list(annotator))
        )
        judge = judge_expr("human", annotators=annotators)
    else:
        judge = judge_expr(opts.judge_kind, model=annotator)
    out = df.select(
        ROW,
        single_turn("user", pl.col("instruction")).alias("prompt"),
        single_turn("assistant", pl.when(first_wins).then("output_1").otherwise("output_2")).alias("chosen"),
        single_turn("assistant", pl.when(first_wins).then("output_2").otherwise("output_1")).alias("rejected"),
        ((p - 1.5).abs() * 2).alias("margin"),
        judge.alias("judge"),
        preference_reason(raw).alias("__why"),
    )
    res = ConvertResult.split(out, pl.col("__why"), ["prompt", "chosen", "rejected", "margin", "judge"])
    return ConvertResult(preference_frame(res.ok), res.rejected)
