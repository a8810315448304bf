"""Length bounds in characters and words."""

from __future__ import annotations

import polars as pl

from curate.filters.base import Filter, FilterParams, first_reason, register


class LengthParams(FilterParams):
    """Bounds (inclusive); ``None`` means no bound. Words are whitespace-separated tokens."""

    min_chars: int | None = None
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None


@register
class Length(Filter):
    """Drop texts outside character / word-count bounds.

    Example recipe stage: ``{type: filter, rule: length, field: response, params: {min_words: 3}}``
    """

    name = "length"
    Params = LengthParams
    summary = "character and word-count bounds"

    def rule(self, text: pl.Expr) -> pl.Expr:
        p: LengthParams = self.params  # type: ignore[assignment]
        chars = text.str.len_chars()
        words = text.str.count_matches(r"\S+")
        checks: list[tuple[pl.Expr, pl.Expr | str]] = []
        if p.min_chars is not None:
            checks.append(
                (chars < p.min_chars, "length.min_chars: " + chars.cast(pl.String) + f" chars < {p.min_chars}")
            )
        if p.max_chars is not None:
            checks.append(
                (chars > p.max_chars, "length.max_chars: " + chars.cast(pl.String) + f" chars > {p.max_chars}")
            )
        if p.min_words is not None:
            checks.append(
                (words < p.min_words, "length.min_words: " + words.cast(pl.String) + f" words < {p.min_words}")
            )
        if p.max_words is not None:
            checks.append(
                (words > p.max_words, "length.max_words: " + words.cast(pl.String) + f" words > {p.max_words}")
            )
        return first_reason(checks)
