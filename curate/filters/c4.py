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
from pydantic import ConfigDict, Field

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


def _has(text: pl.Expr, phrases: tuple[str, ...]) -> pl.Expr:
    """Whether ``text`` contains one of ``phrases``, ignoring case. The reference lowercases the line; for
    ASCII phrases ASCII case folding finds the same matches (bar the odd non-ASCII character whose lowercase
    is ASCII, like the Kelvin sign) without copying the text."""
    if all(ph.isascii() for ph in phrases):
        return text.str.contains_any(list(phrases), ascii_case_insensitive=True)
    return text.str.to_lowercase().str.contains_any([ph.lower() for ph in phrases])


class C4Params(FilterParams):
    """DataTrove's ``C4QualityFilter`` arguments and defaults, plus the document-level line rule."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    filter_lorem_ipsum: bool = True
    """Drop texts containing 'lorem ipsum'."""
    filter_curly_bracket: bool = True
    """Drop texts containing '{'."""
    max_word_length: int | None = Field(default=1000, ge=1, le=5000)
    """Longest allowed word (whitespace-separated), in characters; at most 5000 (a regex, \\S{n+1})."""
    min_num_sentences: int | None = 5
    """Fewest sentences in the lines C4 keeps."""
    max_removed_line_frac: float | None = 0.5
    """Not published: largest fraction of non-blank lines C4's line rules would remove."""
    doc_rules_on: Literal["text", "kept_lines"] = "text"
    """Where the document rules look: the whole text (paper), or only surviving lines (reference code)."""
    filter_no_terminal_punct: bool = True
    """Line rule: remove lines not ending in . ? ! " ' (or ending in ...)."""
    min_words_per_line: int | None = 3
    """Line rule: remove lines with fewer words."""
    filter_javascript: bool = True
    """Line rule: remove lines mentioning 'javascript'."""
    filter_policy: bool = True
    """Line rule: remove lines with a policy phrase."""
    policy_substrings: tuple[str, ...] = POLICY_SUBSTRINGS
    """The policy phrases (matched ignoring case)."""
    remove_citations: bool = True
    """Strip Wikipedia citation markers (numbers, edit, citation needed) from lines before the punctuation check."""


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

        # Each (stripped) line gets one code, in the reference's order: 0 blank, -1 removed by the long-word,
        # punctuation or word-count rules, -2 lorem ipsum (drops the document), -3 removed for JavaScript,
        # -4 a '{' (drops the document), -5 removed by a policy phrase; otherwise its sentence count (>= 1).
        line = e
        cleaned = line.str.replace_all(CITATION, "") if p.remove_citations else line
        basic = pl.lit(False)
        if too_long is not None:
            basic = basic | line.str.contains(too_long)
        if p.filter_no_terminal_punct:
            basic = basic | ~cleaned.str.contains(r"[.?!\"']$") | cleaned.str.ends_with("...")
        if p.min_words_per_line is not None and p.min_words_per_line > 0:
            k = p.min_words_per_line  # fewer than k words: no k-th word (lines are stripped)
            basic = basic | ~line.str.contains(rf"^(?:\S+\s+){{{k - 1}}}\S")
        kept_mode = p.doc_rules_on == "kept_lines"
        steps: list[tuple[pl.Expr, int]] = [(line == "", 0), (basic, -1)]
        if kept_mode and p.filter_lorem_ipsum:
            steps.append((_has(cleaned, ("lorem ipsum",)), -2))
        if p.filter_javascript:
            steps.append((_has(cleaned, ("javascript",)), -3))
        if kept_mode and p.filter_curly_bracket:
            steps.append((cleaned.str.contains("{", literal=True), -4))
        if p.filter_policy and p.policy_substrings:
            steps.append((_has(cleaned, p.policy_substrings), -5))
        # at least one sentence per kept line (Punkt never returns none for text)
        code: pl.Expr = pl.max_horizontal(cleaned.str.count_matches(SENTENCE_END).cast(pl.Int32), pl.lit(1, pl.Int32))
        for cond, value in reversed(steps):
            code = pl.when(cond).then(pl.lit(value, pl.Int32)).otherwise(code)

        lines = text.str.replace_all(LINE_BREAKS, "\n").str.strip_suffix("\n").str.split("\n")
        df = df.with_columns(codes=lines.list.eval(e.str.strip_chars()).list.eval(code))
        codes = pl.col("codes")
        stats = {
            "n_lines": codes.list.eval(e != 0).list.sum(),
            "n_removed": codes.list.eval(e < 0).list.sum(),
            "n_sentences": codes.list.eval(pl.when(e > 0).then(e)).list.sum(),
        }
        if kept_mode:
            stats["lorem"] = codes.list.eval(e == -2).list.any()
            stats["curly"] = codes.list.eval(e == -4).list.any()
            stats["long_word"] = pl.lit(False)
        else:
            stats["lorem"] = _has(text, ("lorem ipsum",))
            stats["curly"] = text.str.contains("{", literal=True)
            stats["long_word"] = text.str.contains(too_long) if too_long is not None else pl.lit(False)
        df = df.with_columns(**stats).drop("codes", "text")

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
        return df.with_columns(reason=first_reason(checks)).get_column("reason")
