"""Preference pairs -> KTO unpaired examples (TRL's "unpaired preference" format).

Example (recipe snippet):
    convert: preference_to_kto            # chained after a preference converter
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel

from curate.convert.registry import ROW, ConvertResult, converter
from schemas.kinds import MESSAGES, Kind


@converter(
    "preference_to_kto",
    input=Kind.PREFERENCE,
    output=Kind.KTO,
    summary="Each preference pair -> (prompt, chosen, label=true) and (prompt, rejected, label=false)",
    example="convert: [hh_rlhf_to_preference, preference_to_kto]",
)
def preference_to_kto(df: pl.DataFrame, _opts: BaseModel) -> ConvertResult:
    """``{prompt: [{user: "Hi"}], chosen: [{assistant: "Hello!"}], rejected: [{assistant: "Go away"}]}`` ->
    ``{prompt: [{user: "Hi"}], completion: [{assistant: "Hello!"}], label: true}`` and
    ``{prompt: [{user: "Hi"}], completion: [{assistant: "Go away"}], label: false}``, both with the
    pair's ``__row``, desirable first."""
    sides = [
        df.select(
            ROW,
            pl.col("prompt").cast(MESSAGES),
            pl.col(side).cast(MESSAGES).alias("completion"),
            pl.lit(label).alias("label"),
            pl.lit(k).alias("__side"),
        ).with_row_index("__pair")
        for k, (side, label) in enumerate((("chosen", True), ("rejected", False)))
    ]
    out = pl.concat(sides).sort("__pair", "__side").drop("__pair", "__side")
    return ConvertResult(out)
