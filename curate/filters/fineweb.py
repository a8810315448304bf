"""FineWeb's own quality rules (Penedo et al. 2024, "The FineWeb Datasets"), as polars expressions.

Follows DataTrove's ``FineWebQualityFilter`` (``src/datatrove/pipeline/filters/fineweb_quality_filter.py``)
in its current form (since the FineWeb-2 release: blank lines ignored, strict inequalities, Unicode
terminal punctuation), with its defaults. Lines are the text split on ``\\n``; blank lines (only
whitespace) are left out of every line count. Checks in DataTrove's order; the first failure is the reason:

======================  =========  ====================================================================
reason code             default    drop when
======================  =========  ====================================================================
``empty``               -          the text has no non-blank line
``line_punct_ratio``    0.12       lines ending in terminal punctuation / lines < ``line_punct_thr``
                                   (kept when the ratio is 0 and ``line_punct_exclude_zero`` is true;
                                   default false)
``short_line_ratio``    0.67       lines of at most ``short_line_length`` (30) characters / lines >
                                   ``short_line_thr``
``char_dup_ratio``      0.01       characters of repeated lines (every occurrence after the first) /
                                   characters of the text without its newlines > ``char_duplicates_ratio``
``new_line_ratio``      0.3        newlines / tokens > ``new_line_ratio`` (DataTrove's ``list_ratio``)
======================  =========  ====================================================================

A line "ends in terminal punctuation" when its last character (not stripped: trailing spaces or a ``\\r``
defeat it, as in DataTrove) is a Unicode ``Sentence_Terminal`` character (``. ! ?`` and their forms in
other scripts). DataTrove's ``TERMINAL_PUNCTUATION`` table is that property plus three Khmer signs
(U+17D6, U+17D9, U+17DA, added here too) and minus 14 of its characters (such as U+2024 ONE DOT LEADER,
the vertical forms U+FE12, U+FE15, U+FE16 and recent additions), which count here. ``stop_chars``
replaces the set with explicit characters; FineWeb v1 (2024) used ``.'"!?``.

Deviations from DataTrove, and why:

* Tokens for ``new_line_ratio`` come from the regex tokenizer shared with the Gopher rules
  (:data:`curate.filters.gopher.TOKEN_PATTERN`), not NLTK's ``word_tokenize``; punctuation counts as
  tokens in both.
* FineWeb v1 itself ran an older version of this filter: ``<=`` / ``>=`` comparisons, blank lines counted,
  stop characters ``.'"!?``. The paper's table quotes a 0.1 character-duplication threshold; the code
  default (used here) is 0.01.
* "Blank" uses polars' ``strip_chars`` (Unicode White_Space), Python's ``str.strip`` also strips
  U+001C..U+001F.

Example:
    >>> import polars as pl
    >>> from schemas.kinds import Kind
    >>> f = FineWeb(field="text")
    >>> f.reasons(pl.DataFrame({"text": ["no punctuation here\\nnor here"]}), Kind.TEXT).to_list()
    ['fineweb.line_punct_ratio: 0 of 2 lines end in terminal punctuation = 0.0 < 0.12']
"""

from __future__ import annotations

import re

import polars as pl
from pydantic import ConfigDict

from curate.filters.base import FilterParams, first_reason, fmt, register
from curate.filters.gopher import TOKEN_PATTERN, BatchFilter, safe_ratio

TERMINAL = r"[\p{Sentence_Terminal}\x{17D6}\x{17D9}\x{17DA}]"
"""Terminal punctuation: Unicode ``Sentence_Terminal`` plus the Khmer signs in DataTrove's table."""


class FineWebParams(FilterParams):
    """DataTrove's ``FineWebQualityFilter`` arguments and defaults; ``None`` disables a check."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    line_punct_thr: float | None = 0.12
    """Smallest fraction of lines ending in terminal punctuation."""
    line_punct_exclude_zero: bool = False
    """Keep texts where no line ends in punctuation (a ratio of exactly 0)."""
    stop_chars: str | None = None
    """Characters that end a punctuated line; null means Unicode terminal punctuation (Sentence_Terminal)."""
    short_line_thr: float | None = 0.67
    """Largest fraction of short lines."""
    short_line_length: int = 30
    """A line of at most this many characters is short."""
    char_duplicates_ratio: float | None = 0.01
    """Largest fraction of characters (newlines excluded) in repeated lines."""
    new_line_ratio: float | None = 0.3
    """Most newlines per token."""


@register
class FineWeb(BatchFilter):
    """FineWeb's line-punctuation, short-line, duplicated-line and newline ratios.

    Example recipe stage: ``{type: filter, rule: fineweb, field: response}``
    """

    name = "fineweb"
    Params = FineWebParams
    summary = "FineWeb quality rules (DataTrove defaults)"

    def batch_reasons(self, texts: pl.Series) -> pl.Series:
        p: FineWebParams = self.params  # type: ignore[assignment]
        e = pl.element()
        end = TERMINAL if p.stop_chars is None else "[" + "".join(re.escape(c) for c in p.stop_chars) + "]"
        text = pl.col("text")
        df = pl.DataFrame({"text": texts.cast(pl.String).fill_null("")})
        df = df.with_columns(
            lines=text.str.split("\n").list.eval(e.filter(e.str.strip_chars() != "")),
            n_newlines=text.str.count_matches("\n", literal=True),
            n_tokens=text.str.count_matches(TOKEN_PATTERN),
            n_chars=text.str.len_chars(),
        )
        lines = pl.col("lines")
        df = df.with_columns(
            n_lines=lines.list.len(),
            n_punct=lines.list.eval(e.str.contains(end + "$")).list.sum(),
            n_short=lines.list.eval(e.str.len_chars() <= p.short_line_length).list.sum(),
            dup_chars=lines.list.eval(pl.when(~e.is_first_distinct()).then(e.str.len_chars())).list.sum(),
        ).drop("lines", "text")
        n_lines = pl.col("n_lines")

        checks: list[tuple[pl.Expr, pl.Expr | str]] = [(n_lines == 0, "fineweb.empty: no non-blank line")]
        if p.line_punct_thr is not None:
            r = safe_ratio(pl.col("n_punct"), n_lines)
            broken = r < p.line_punct_thr
            if p.line_punct_exclude_zero:
                broken = broken & (r != 0)
            tpl = "fineweb.line_punct_ratio: {} of {} lines end in terminal punctuation = {} < {}"
            checks.append((broken, pl.format(tpl, pl.col("n_punct"), n_lines, fmt(r), p.line_punct_thr)))
        if p.short_line_thr is not None:
            r = safe_ratio(pl.col("n_short"), n_lines)
            tpl = f"fineweb.short_line_ratio: {{}} of {{}} lines have <= {p.short_line_length} chars = {{}} > {{}}"
            checks.append((r > p.short_line_thr, pl.format(tpl, pl.col("n_short"), n_lines, fmt(r), p.short_line_thr)))
        if p.char_duplicates_ratio is not None:
            chars = pl.col("n_chars") - pl.col("n_newlines")
            r = safe_ratio(pl.col("dup_chars"), chars)
            tpl = "fineweb.char_dup_ratio: {} chars in repeated lines / {} = {} > {}"
            limit = p.char_duplicates_ratio
            checks.append((r > limit, pl.format(tpl, pl.col("dup_chars"), chars, fmt(r, 5), limit)))
        if p.new_line_ratio is not None:
            r = safe_ratio(pl.col("n_newlines"), pl.col("n_tokens"))
            tpl = "fineweb.new_line_ratio: {} newlines / {} tokens = {} > {}"
            limit = p.new_line_ratio
            checks.append((r > limit, pl.format(tpl, pl.col("n_newlines"), pl.col("n_tokens"), fmt(r), limit)))
        return df.with_columns(reason=first_reason(checks)).get_column("reason")
