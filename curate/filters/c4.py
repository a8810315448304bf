"""C4's cleaning rules (Raffel et al. 2020, section 2.2) as a document filter, as polars expressions.

Follows DataTrove's ``C4QualityFilter`` (``src/datatrove/pipeline/filters/c4_filters.py``), itself a port
of TFDS's ``c4_utils.clean_page``, with their defaults. The published filter *rewrites* documents: it walks
the lines (``str.splitlines``, each stripped) and

1. removes a line with a word (whitespace-separated) longer than ``max_word_length`` (1000),
2. removes Wikipedia citation markers (``[1]``, ``[edit]``, ``[citation needed]``) from the line,
3. removes a line that does not end in ``.``, ``?``, ``!``, ``"`` or ``'``, or that ends in ``...``,
4. removes a line with fewer than ``min_words_per_line`` (3) words,
5. drops the whole document if the line contains "lorem ipsum" (any case),
6. removes a line containing "javascript" (any case),
7. drops the whole document if the line contains ``{``,
8. removes a line containing a policy phrase ("terms of use", "privacy policy", "cookie policy",
   "uses cookies", "use of cookies", "use cookies"; any case),
9. keeps the rest, and drops the document if the kept lines hold fewer than ``min_num_sentences`` (5)
   sentences.

Filters here never edit text, so this filter keeps or drops the document as it is. Reason codes, in
the order they are checked:

=======================  ==========  ====================================================================
reason code              default     drop when
=======================  ==========  ====================================================================
``lorem_ipsum``          on          the text contains "lorem ipsum" (any case)
``curly_bracket``        on          the text contains ``{``
``max_word_length``      1000        a whitespace-separated word is longer than this
``min_num_sentences``    5           the lines C4 keeps (steps 1-9) hold fewer sentences than this
``removed_lines``        0.5         non-blank lines C4 would remove (steps 1, 3, 4, 6, 8) / non-blank
                                     lines > ``max_removed_line_frac``
=======================  ==========  ====================================================================

How this maps to the published line filter:

* ``doc_rules_on: text`` (default) applies the three document rules to the whole text, as the paper
  words them ("removed any page that contained a curly bracket"). The reference code only looks at
  lines that survived steps 1-4 (and, for ``{``, step 6), and a long word only removes its line;
  ``doc_rules_on: kept_lines`` reproduces that exactly (then there is no ``max_word_length`` document
  rule; such lines count as removed). When a document has both a lorem-ipsum line and a ``{`` line,
  the reference reports whichever comes first; here it is always ``lorem_ipsum``.
* ``min_num_sentences`` is the published document rule, computed on the lines the reference would keep.
* ``removed_lines`` is the document-level stand-in for the line removals, which a filter cannot do:
  a document where C4 would delete more than half of its non-blank lines is mostly what C4 calls
  boilerplate. The 0.5 default is this project's choice (not published); ``None`` disables it, leaving
  exactly the published document-level decisions. Blank lines are not counted (C4 removes them too,
  but they carry nothing).
* ``filter_no_terminal_punct``, ``min_words_per_line``, ``filter_javascript``, ``filter_policy`` and
  ``remove_citations`` switch steps 3, 4, 6, 8 and 2 off as in the reference (FineWeb ran C4 with
  ``filter_no_terminal_punct: false``).

Deviations: sentences are counted with a regex (a run of ``.``, ``!``, ``?``, with optional closing quotes
or brackets, followed by whitespace or the end of the line; at least one per kept line) instead of
NLTK's Punkt tokenizer, so abbreviations such as "e.g." count as sentence ends. Words in steps 1 and 4
are split on Unicode whitespace (Python's ``str.split`` also splits on U+001C..U+001F).

Example:
    >>> import polars as pl
    >>> from schemas.kinds import Kind
    >>> f = C4(field="text")
    >>> f.reasons(pl.DataFrame({"text": ["Lorem ipsum dolor sit amet."]}), Kind.TEXT).to_list()
    ["c4.lorem_ipsum: contains 'lorem ipsum'"]
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from curate.filters.base import FilterParams, first_reason, fmt, register
from curate.filters.gopher import LINE_BREAKS, BatchFilter, safe_ratio

POLICY_SUBSTRINGS: tuple[str, ...] = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"
SENTENCE_END = r"[.!?]+[\"'”’)\]]*(?:\s|$)"


class C4Params(FilterParams):
    """DataTrove's ``C4QualityFilter`` arguments and defaults, plus the document-level line rule."""

    filter_lorem_ipsum: bool = True
    filter_curly_bracket: bool = True
    max_word_length: int | None = Field(default=1000, ge=1, le=10_000)
    min_num_sentences: int | None = 5
    max_removed_line_frac: float | None = 0.5
    """Not published: drop when more than this fraction of non-blank lines would be removed by C4."""
    doc_rules_on: Literal["text", "kept_lines"] = "text"
    filter_no_terminal_punct: bool = True
    min_words_per_line: int | None = 3
    filter_javascript: bool = True
    filter_policy: bool = True
    policy_substrings: tuple[str, ...] = POLICY_SUBSTRINGS
    remove_citations: bool = True


@register
class C4(BatchFilter):
    """C4's lorem-ipsum, curly-bracket, long-word and sentence rules, and its line rules as a fraction.

    Example recipe stage: ``{type: filter, rule: c4, field: text, params: {max_removed_line_frac: null}}``
    """

    name = "c4"
    Params = C4Params
    summary = "C4 cleaning rules as a document filter (DataTrove defaults)"

    def batch_reasons(self, texts: pl.Series) -> pl.Series:
        p: C4Params = self.params  # type: ignore[assignment]
        e = pl.element()
        text = pl.col("text")
        df = pl.DataFrame({"text": texts.cast(pl.String).fill_null("")})
        too_long = rf"\S{{{p.max_word_length + 1}}}" if p.max_word_length is not None else None

        # per line (lines are stripped, as in the reference)
        line = e
        cleaned = line.str.replace_all(CITATION, "") if p.remove_citations else line
        lower = cleaned.str.to_lowercase()
        removed = pl.lit(False)
        if too_long is not None:
            removed = removed | line.str.contains(too_long)
        if p.filter_no_terminal_punct:
            removed = removed | ~cleaned.str.contains(r"[.?!\"']$") | cleaned.str.ends_with("...")
        if p.min_words_per_line is not None:
            removed = removed | (line.str.count_matches(r"\S+") < p.min_words_per_line)
        survived = ~removed  # lines that reach the lorem-ipsum check
        if p.filter_javascript:
            removed = removed | lower.str.contains("javascript", literal=True)
        reaches_bracket = ~removed
        if p.filter_policy and p.policy_substrings:
            removed = removed | lower.str.contains_any(list(p.policy_substrings))
        # at least one sentence per non-empty line (Punkt never returns none for text)
        sentences = (
            pl.when(cleaned == "")
            .then(0)
            .otherwise(pl.max_horizontal(cleaned.str.count_matches(SENTENCE_END), pl.lit(1, pl.UInt32)))
        )

        df = df.with_columns(
            lines=text.str.replace_all(LINE_BREAKS, "\n")
            .str.strip_suffix("\n")
            .str.split("\n")
            .list.eval(e.str.strip_chars())
        )
        lines = pl.col("lines")
        stats = {
            "n_lines": lines.list.eval(e != "").list.sum(),
            "n_removed": lines.list.eval(removed & (e != "")).list.sum(),
            "n_sentences": lines.list.eval(pl.when(~removed).then(sentences)).list.sum(),
        }
        if p.doc_rules_on == "kept_lines":
            stats["lorem"] = lines.list.eval(survived & lower.str.contains("lorem ipsum", literal=True)).list.any()
            stats["curly"] = lines.list.eval(reaches_bracket & cleaned.str.contains("{", literal=True)).list.any()
            stats["long_word"] = pl.lit(False)
        else:
            stats["lorem"] = text.str.to_lowercase().str.contains("lorem ipsum", literal=True)
            stats["curly"] = text.str.contains("{", literal=True)
            stats["long_word"] = text.str.contains(too_long) if too_long is not None else pl.lit(False)
        df = df.with_columns(**stats).drop("lines", "text")

        checks: list[tuple[pl.Expr, pl.Expr | str]] = []
        if p.filter_lorem_ipsum:
            checks.append((pl.col("lorem"), "c4.lorem_ipsum: contains 'lorem ipsum'"))
        if p.filter_curly_bracket:
            checks.append((pl.col("curly"), "c4.curly_bracket: contains '{'"))
        if p.max_word_length is not None:
            checks.append((pl.col("long_word"), f"c4.max_word_length: a word longer than {p.max_word_length} chars"))
        if p.min_num_sentences is not None:
            n = pl.col("n_sentences")
            tpl = "c4.min_num_sentences: {} sentences in the lines C4 keeps < {}"
            checks.append((n < p.min_num_sentences, pl.format(tpl, n, p.min_num_sentences)))
        if p.max_removed_line_frac is not None:
            r = safe_ratio(pl.col("n_removed"), pl.col("n_lines"))
            tpl = "c4.removed_lines: C4 would remove {} of {} non-blank lines = {} > {}"
            limit = p.max_removed_line_frac
            checks.append((r > limit, pl.format(tpl, pl.col("n_removed"), pl.col("n_lines"), fmt(r), limit)))
        return df.select(first_reason(checks).alias("reason")).to_series()
