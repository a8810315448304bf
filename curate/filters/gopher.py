"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models", appendix A, table A1).

Follows DataTrove's ``GopherQualityFilter`` and ``GopherRepetitionFilter``
(``src/datatrove/pipeline/filters/gopher_quality_filter.py`` and ``gopher_repetition_filter.py``, as of
2025: word tokenizer, distinct stop words, ``•``/``-`` bullets, ``\\n+`` line split), reimplemented as
polars expressions. Defaults are DataTrove's, which are the paper's.

``gopher_quality`` (checks in DataTrove's order; first failure is the reason):

==========================  =========  =============================================================
reason code                 default    drop when
==========================  =========  =============================================================
``min_doc_words``           50         words (tokens with a character that is not punctuation) < 50
``max_doc_words``           100000     words > 100,000
``min_avg_word_length``     3          mean length of those words < 3
``max_avg_word_length``     10         mean length > 10
``hash_ratio``              0.1        count of ``#`` / tokens > ``max_symbol_word_ratio``
``ellipsis_ratio``          0.1        (count of ``...`` + count of ``…``) / tokens > ``max_symbol_word_ratio``
``bullet_lines``            0.9        lines whose left-stripped text starts with ``•`` or ``-`` / lines > 0.9
``ellipsis_lines``          0.3        lines whose right-stripped text ends in ``...`` or ``…`` / lines > 0.3
``alpha_words``             0.8        tokens containing a letter / tokens < ``max_non_alpha_words_ratio``
``stop_words``              2          distinct stop words among the tokens < 2; stop words are
                                       the, be, to, of, and, that, have, with (case-sensitive, as published)
==========================  =========  =============================================================

"tokens" are all tokens including punctuation tokens (DataTrove divides by ``len(words)`` of its word
tokenizer's output); "words" exclude tokens made only of punctuation. Lines are ``str.splitlines()``
lines (every Unicode line break; a trailing line break does not start a new line).

``gopher_repetition`` (checks in DataTrove's order):

==========================  =========  =============================================================
reason code                 default    drop when
==========================  =========  =============================================================
``dup_para_frac``           0.3        repeated paragraphs / paragraphs > 0.3 (paragraphs: the stripped
                                       text split on ``\\n{2,}``; "repeated" = every occurrence after the first)
``dup_para_char_frac``      0.2        characters of repeated paragraphs / characters of the text > 0.2
``dup_line_frac``           0.3        repeated lines / lines > 0.3 (lines: the text split on ``\\n+``,
                                       so a leading/trailing newline gives an empty first/last line)
``dup_line_char_frac``      0.2        characters of repeated lines / characters of the text > 0.2
``top_{n}_gram``            2: 0.20,   count x characters (tokens joined with spaces) of the most common
                            3: 0.18,   n-gram / characters of the text > threshold. Ties go to the n-gram
                            4: 0.16    seen first (``Counter.most_common(1)``); a text with all n-grams
                                       distinct is judged on its first n-gram; skipped when < n tokens
``dup_{n}_gram``            5: 0.15 .. characters (tokens joined without spaces) of the repeated n-grams that
                            10: 0.10   DataTrove's left-to-right scan counts (see below) / characters of
                                       the text > threshold
==========================  =========  =============================================================

Every ``...`` threshold can be set to ``None`` (or a pair left out of ``top_n_grams``/``dup_n_grams``) to
disable it. Ratios whose denominator is 0 (an empty text) never drop (DataTrove would divide by zero).

Deviations from DataTrove, and why:

* Tokenizer. DataTrove tokenizes English with NLTK's Treebank ``word_tokenize``; here tokens are the
  regex :data:`TOKEN_PATTERN`: runs of word characters joined by inner ``-``, ``.``, ``'`` or ``’``
  (``e-mail``, ``3.14``, ``don't`` are one token each), ``...``, ``--``, or any other single
  non-space character (punctuation, symbols). NLTK splits contractions (``do`` + ``n't``), turns
  ``"`` into ````` / ``''``, and keeps some abbreviations with their period; counts on such text differ
  slightly. "Punctuation" is "no Unicode word character other than ``_``" instead of DataTrove's fixed
  punctuation table (which, for example, counts ``€`` as a word).
* Duplicated n-gram characters (``dup_{n}_gram``). DataTrove's scan walks the tokens: where the n-gram
  at the cursor was seen before it counts that n-gram and jumps n tokens, otherwise it remembers the
  n-gram and steps one token. Only repeats count, never a passage's first occurrence (the paper words it
  as "characters contained within all duplicate n-grams"). The scan is sequential; here every run of r
  consecutive positions whose n-gram occurred earlier in the document is measured the way the scan
  measures an isolated run, its first ceil(r/n) * n tokens, cut where the next run starts so no token
  counts twice. That equals DataTrove's count when runs are at least n tokens apart (a repeated passage
  or line, which is what the rule is for; the test suite checks it against a transcription of DataTrove
  on 600 random texts). It can differ when DataTrove's jump at the end of one run lands inside the next
  run, or when an n-gram's only earlier occurrence lies in a stretch the scan jumped over (the scan does
  not remember those). DataTrove also compares n-grams by their concatenation without spaces (``ab c``
  equals ``a bc``); here n-grams are compared token by token.
* N-grams are compared by 64-bit hashes of their tokens (a false match needs a 64-bit collision;
  about 1e-5 expected per 100,000 documents of 250 tokens).
* ``str.strip`` (Python) vs polars' ``strip_chars`` differ only on the separators U+001C..U+001F.

Example:
    >>> import polars as pl
    >>> from schemas.kinds import Kind
    >>> f = GopherQuality(field="text")
    >>> f.reasons(pl.DataFrame({"text": ["too short"]}), Kind.TEXT).to_list()
    ['gopher_quality.min_doc_words: 2 words < 50']
"""

from __future__ import annotations

import re
from abc import abstractmethod
from itertools import pairwise
from typing import ClassVar

import polars as pl
from pydantic import ConfigDict, field_validator

from curate.filters.base import Filter, FilterParams, first_reason, fmt, register

TOKEN_PATTERN = r"\w+(?:[-.'’]\w+)*|\.\.\.|--|[^\w\s]"
"""A token: a word (word characters, possibly joined by inner ``- . ' ’``), ``...``, ``--`` or one other
non-space character. Stands in for NLTK's ``word_tokenize`` (see the module docstring)."""

WORD_PATTERN = r"\w+(?:[-.'’]\w+)*"
"""The word alternative of :data:`TOKEN_PATTERN` (tokens that contain a word character)."""

LINE_BREAKS = r"\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]"
"""Line breaks other than ``\\n`` that ``str.splitlines`` honours; normalised to ``\\n`` first."""

STOP_WORDS: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")

_P = 0x100000001B3  # odd multiplier (FNV-64 prime) folding token hashes into n-gram hashes
_ROW = 0x9E3779B97F4A7C15  # odd multiplier mixing the row number into n-gram keys
_U64 = pl.UInt64


def safe_ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """``num / den`` as Float64, null where ``den`` is 0 (a null never drops, see ``first_reason``)."""
    return pl.when(den > 0).then(num.cast(pl.Float64) / den.cast(pl.Float64))


def splitlines_count(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """``(text with every line break as \\n, number of str.splitlines() lines)``."""
    norm = text.str.replace_all(LINE_BREAKS, "\n")
    n = norm.str.count_matches("\n", literal=True) + 1 - norm.str.ends_with("\n").cast(pl.UInt32)
    n = pl.when(norm.str.len_bytes() == 0).then(pl.lit(0, pl.UInt32)).otherwise(n)
    return norm, n


def token_regex(token: str) -> str:
    """A regex matching ``token`` where :data:`TOKEN_PATTERN` would cut it out as a whole token: not glued to
    word characters, nor to a joiner (``- . ' ’``) that is itself glued to word characters."""
    joiner = r"[-.'’]"
    before = rf"(?:^|[^\w\-.'’]|(?:^|\W){joiner})"
    after = rf"(?:$|[^\w\-.'’]|{joiner}(?:$|\W))"
    return before + re.escape(token) + after


class GopherQualityParams(FilterParams):
    """DataTrove's ``GopherQualityFilter`` arguments and defaults; ``None`` disables a check."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    min_doc_words: int | None = 50
    """Fewest words (tokens that are not only punctuation)."""
    max_doc_words: int | None = 100_000
    """Most words."""
    min_avg_word_length: float | None = 3
    """Smallest mean word length, in characters."""
    max_avg_word_length: float | None = 10
    """Largest mean word length, in characters."""
    max_symbol_word_ratio: float | None = 0.1
    """Most '#' per token, and most ellipses ('...', '…') per token."""
    max_bullet_lines_ratio: float | None = 0.9
    """Largest fraction of lines starting with '•' or '-'."""
    max_ellipsis_lines_ratio: float | None = 0.3
    """Largest fraction of lines ending with '...' or '…'."""
    max_non_alpha_words_ratio: float | None = 0.8
    """Despite the (published) name: the smallest fraction of tokens that contain a letter."""
    min_stop_words: int | None = 2
    """Fewest distinct stop words among the tokens."""
    stop_words: tuple[str, ...] = STOP_WORDS
    """The stop words (matched case-sensitively, as published)."""


class BatchFilter(Filter):
    """A filter computed on a whole column at once: :meth:`batch_reasons` materialises its statistics step
    by step (so a token list is extracted once, not once per rule) and :meth:`rule` wraps it in
    ``map_batches``, a whole-column call, never one per row. Columns are cut into slices of about
    :attr:`chunk_bytes` of text so the token-level intermediates stay a few hundred MB whatever the
    batch size."""

    chunk_bytes: ClassVar[int] = 16_000_000

    def rule(self, text: pl.Expr) -> pl.Expr:
        return text.map_batches(self.chunked_reasons, return_dtype=pl.String, is_elementwise=True)

    def chunked_reasons(self, texts: pl.Series) -> pl.Series:
        """:meth:`batch_reasons` over slices of ``texts`` of about :attr:`chunk_bytes` each, concatenated."""
        ends = texts.cast(pl.String).str.len_bytes().fill_null(0).cast(pl.Int64).cum_sum()
        total = int(ends[-1]) if len(ends) else 0
        if total <= self.chunk_bytes:
            return self.batch_reasons(texts).alias(texts.name)
        cuts = ends.search_sorted(pl.Series(range(self.chunk_bytes, total, self.chunk_bytes)), side="right")
        bounds = [0, *sorted(set(int(c) for c in cuts)), len(texts)]
        parts = [self.batch_reasons(texts.slice(a, b - a)) for a, b in pairwise(bounds) if b > a]
        return pl.concat(parts).alias(texts.name)

    @abstractmethod
    def batch_reasons(self, texts: pl.Series) -> pl.Series:
        """Reason (or null) for each text of ``texts``, in order."""


@register
class GopherQuality(BatchFilter):
    """Gopher's quality heuristics: length, word length, symbol ratios, bullets, alphabetic words, stop words.

    Example recipe stage: ``{type: filter, rule: gopher_quality, field: response}``
    """

    name = "gopher_quality"
    Params = GopherQualityParams
    summary = "Gopher quality heuristics (DataTrove defaults)"

    def batch_reasons(self, texts: pl.Series) -> pl.Series:
        p: GopherQualityParams = self.params  # type: ignore[assignment]
        text = pl.col("text")
        df = pl.DataFrame({"text": texts.cast(pl.String).fill_null("")})
        norm, n_lines = splitlines_count(text)
        stop = [text.str.contains(token_regex(w)).cast(pl.UInt32) for w in dict.fromkeys(p.stop_words)]
        df = df.with_columns(
            tokens=text.str.extract_all(TOKEN_PATTERN),
            hashes=text.str.count_matches("#", literal=True),
            ellipses=text.str.count_matches("...", literal=True) + text.str.count_matches("…", literal=True),
            n_lines=n_lines,
            bullet_lines=norm.str.count_matches(r"(?m)^[^\S\n]*[•\-]"),
            ellipsis_lines=norm.str.count_matches(r"(?m)(?:\.\.\.|…)[^\S\n]*$"),
            n_stop=pl.sum_horizontal(stop) if stop else pl.lit(0, pl.UInt32),
        )
        # "words": tokens with a character outside the punctuation set (``_`` counts as punctuation there)
        e = pl.element()
        is_word = e.str.contains(r"[^\W_]")
        tokens = pl.col("tokens")
        df = df.with_columns(
            n_tokens=tokens.list.len(),
            n_words=tokens.list.eval(is_word).list.sum(),
            word_chars=tokens.list.eval(pl.when(is_word).then(e.str.len_chars())).list.sum(),
            n_alpha=tokens.list.eval(e.str.contains(r"\p{L}")).list.sum(),
        ).drop("tokens", "text")
        n_words, n_tokens = pl.col("n_words"), pl.col("n_tokens")
        avg_len = safe_ratio(pl.col("word_chars"), n_words)

        checks: list[tuple[pl.Expr, pl.Expr | str]] = []

        def check(broken: pl.Expr, template: str, *args: pl.Expr | float | int) -> None:
            checks.append((broken, pl.format("gopher_quality." + template, *args)))

        if p.min_doc_words is not None:
            check(n_words < p.min_doc_words, "min_doc_words: {} words < {}", n_words, p.min_doc_words)
        if p.max_doc_words is not None:
            check(n_words > p.max_doc_words, "max_doc_words: {} words > {}", n_words, p.max_doc_words)
        if p.min_avg_word_length is not None:
            limit = p.min_avg_word_length
            check(avg_len < limit, "min_avg_word_length: mean word length {} < {}", fmt(avg_len), limit)
        if p.max_avg_word_length is not None:
            limit = p.max_avg_word_length
            check(avg_len > limit, "max_avg_word_length: mean word length {} > {}", fmt(avg_len), limit)
        if p.max_symbol_word_ratio is not None:
            limit = p.max_symbol_word_ratio
            for code, what in (("hash_ratio", "hashes"), ("ellipsis_ratio", "ellipses")):
                r = safe_ratio(pl.col(what), n_tokens)
                tpl = code + ": {} " + what + " / {} tokens = {} > {}"
                check(r > limit, tpl, pl.col(what), n_tokens, fmt(r), limit)
        for code, col, limit, what in (
            ("bullet_lines", "bullet_lines", p.max_bullet_lines_ratio, "start with a bullet"),
            ("ellipsis_lines", "ellipsis_lines", p.max_ellipsis_lines_ratio, "end with an ellipsis"),
        ):
            if limit is not None:
                r = safe_ratio(pl.col(col), pl.col("n_lines"))
                tpl = code + ": {} of {} lines " + what + " = {} > {}"
                check(r > limit, tpl, pl.col(col), pl.col("n_lines"), fmt(r), limit)
        if p.max_non_alpha_words_ratio is not None:
            limit = p.max_non_alpha_words_ratio
            r = safe_ratio(pl.col("n_alpha"), n_tokens)
            tpl = "alpha_words: {} of {} tokens contain a letter = {} < {}"
            check(r < limit, tpl, pl.col("n_alpha"), n_tokens, fmt(r), limit)
        if p.min_stop_words is not None:
            n_stop = pl.col("n_stop")
            check(n_stop < p.min_stop_words, "stop_words: {} distinct stop words < {}", n_stop, p.min_stop_words)
        return df.with_columns(reason=first_reason(checks)).get_column("reason")


NGramThresholds = tuple[tuple[int, float], ...]


class GopherRepetitionParams(FilterParams):
    """DataTrove's ``GopherRepetitionFilter`` arguments and defaults; ``None`` disables a check."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    dup_line_frac: float | None = 0.3
    """Largest fraction of lines that repeat an earlier line."""
    dup_para_frac: float | None = 0.3
    """Largest fraction of paragraphs that repeat an earlier paragraph."""
    dup_line_char_frac: float | None = 0.2
    """Largest fraction of the text's characters in repeated lines."""
    dup_para_char_frac: float | None = 0.2
    """Largest fraction of the text's characters in repeated paragraphs."""
    top_n_grams: NGramThresholds = ((2, 0.2), (3, 0.18), (4, 0.16))
    """(n, largest fraction of characters in the most common n-gram)."""
    dup_n_grams: NGramThresholds = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    """(n, largest fraction of characters in repeated n-grams)."""

    @field_validator("top_n_grams", "dup_n_grams")
    @classmethod
    def _sizes(cls, v: NGramThresholds) -> NGramThresholds:
        sizes = [n for n, _ in v]
        if any(n < 1 for n in sizes) or len(set(sizes)) != len(sizes):
            raise ValueError("n-gram sizes must be distinct integers >= 1")
        return tuple(sorted(v))


@register
class GopherRepetition(BatchFilter):
    """Gopher's repetition heuristics: repeated paragraphs and lines, top n-grams, duplicated n-grams.

    The n-gram part needs per-document grouping, so :meth:`rule` wraps a whole-column function
    (``map_batches``, vectorized over the batch). Tokens are hashed once; the smallest n-gram size is
    handled per document (``list.eval``: small hash tables), then larger sizes level by level on the
    exploded positions, carrying only positions whose (n-1)-gram repeats (an n-gram can only repeat
    where its prefix does), so each level is much smaller than the last.

    Example recipe stage: ``{type: filter, rule: gopher_repetition, field: text}``
    """

    name = "gopher_repetition"
    Params = GopherRepetitionParams
    summary = "Gopher repetition heuristics (DataTrove defaults)"

    def batch_reasons(self, texts: pl.Series) -> pl.Series:
        p: GopherRepetitionParams = self.params  # type: ignore[assignment]
        df = pl.DataFrame({"text": texts.cast(pl.String).fill_null("")})
        text = pl.col("text")
        df = df.with_columns(
            n_chars=text.str.len_chars(),
            # "".split gives [""]: one (empty) paragraph
            paras=text.str.strip_chars().str.extract_all(r"[^\n]+(?:\n[^\n]+)*"),
            lines=text.str.replace_all(r"\n+", "\n").str.split("\n"),
        )
        e = pl.element()
        again = ~e.is_first_distinct()
        df = df.with_columns(
            n_paras=pl.max_horizontal(pl.col("paras").list.len(), pl.lit(1, pl.UInt32)),
            dup_paras=pl.col("paras").list.eval(again).list.sum(),
            dup_para_chars=pl.col("paras").list.eval(pl.when(again).then(e.str.len_chars())).list.sum(),
            n_lines=pl.col("lines").list.len(),
            dup_lines=pl.col("lines").list.eval(again).list.sum(),
            dup_line_chars=pl.col("lines").list.eval(pl.when(again).then(e.str.len_chars())).list.sum(),
        )

        checks: list[tuple[pl.Expr, pl.Expr | str]] = []

        def frac_check(code: str, num: str, den: str, what: str, limit: float | None) -> None:
            if limit is None:
                return
            r = safe_ratio(pl.col(num), pl.col(den))
            msg = pl.format(
                f"gopher_repetition.{code}: {{}} {what} / {{}} = {{}} > {limit}", pl.col(num), pl.col(den), fmt(r)
            )
            checks.append((r > limit, msg))

        frac_check("dup_para_frac", "dup_paras", "n_paras", "repeated paragraphs", p.dup_para_frac)
        frac_check("dup_para_char_frac", "dup_para_chars", "n_chars", "chars in repeated paras", p.dup_para_char_frac)
        frac_check("dup_line_frac", "dup_lines", "n_lines", "repeated lines", p.dup_line_frac)
        frac_check("dup_line_char_frac", "dup_line_chars", "n_chars", "chars in repeated lines", p.dup_line_char_frac)
        first = df.with_columns(reason=first_reason(checks)).get_column("reason")
        if not (p.top_n_grams or p.dup_n_grams) or first.null_count() == 0:
            return first
        undecided = df.select("text").with_row_index("row").filter(first.is_null())
        return first.fill_null(self._ngram_reasons(undecided, df.height))

    def _ngram_reasons(self, docs: pl.DataFrame, n_rows: int) -> pl.Series:
        """Reasons from the n-gram rules for the ``n_rows`` rows of a batch; ``docs`` (``row``, ``text``)
        holds the rows still undecided, the others get null."""
        p: GopherRepetitionParams = self.params  # type: ignore[assignment]
        doc = docs.select(
            "row",
            n_chars=pl.col("text").str.len_chars().cast(pl.Int64),
            tok=pl.col("text").str.extract_all(TOKEN_PATTERN),
        ).with_columns(n_tok=pl.col("tok").list.len().cast(pl.Int64))
        doc = doc.with_columns(start=pl.col("n_tok").cum_sum() - pl.col("n_tok"))
        doc = doc.with_columns(end=pl.col("start") + pl.col("n_tok"))
        wanted = {n: ("top", t) for n, t in p.top_n_grams} | {n: ("dup", t) for n, t in p.dup_n_grams}
        sizes = sorted(wanted)
        values: dict[int, pl.Series] = {}  # n -> measured characters per document (aligned with ``doc``)
        lo = sizes[0]
        # tokens of the batch, documents one after another; g is a token's index in the batch.
        # prefix[g] = characters of tokens 0..g-1; a window [g, g+m) inside one document has
        # prefix[g+m] - prefix[g] characters (its tokens joined without separators)
        tok = doc.get_column("tok").explode(keep_nulls=False)
        ids = tok.hash(seed=17)
        prefix = pl.concat([pl.Series([0], dtype=pl.Int64), tok.str.len_chars().cast(pl.Int64).cum_sum()])
        # The first level works per document (small hash tables, cache-friendly): hashes of the lo-grams
        # starting at each position, and whether each repeats in its document.
        e = pl.element()
        h = e
        for k in range(1, lo):
            h = (h * pl.lit(_P, _U64)) ^ e.shift(-k)
        h = h.filter(pl.int_range(pl.len()) + lo <= pl.len())
        hs = doc.select(pl.col("tok").list.eval(e.hash(seed=17)).list.eval(h)).to_series()
        seen = hs.list.eval(~e.is_first_distinct()) if wanted[lo][0] == "dup" else hs.list.eval(e.is_null())
        cand = doc.select(
            "row",
            "end",
            g=pl.int_ranges(pl.col("start"), pl.max_horizontal(pl.col("end") - (lo - 1), pl.col("start"))),
            h=hs,
            dup=hs.list.eval(e.is_duplicated()),
            seen=seen,
        ).explode("g", "h", "dup", "seen", keep_nulls=False)
        cand = cand.with_columns(key=pl.col("h") ^ (pl.col("row").cast(_U64) * pl.lit(_ROW, _U64)))
        for n in range(lo, sizes[-1] + 1):
            if n > lo:  # an n-gram can only repeat where its (n-1)-gram prefix repeats
                cand = cand.filter(pl.col("dup") & (pl.col("g") + n <= pl.col("end")))
                cand = cand.with_columns(h=_fold(pl.col("h"), ids.gather(cand.get_column("g") + (n - 1))))
                key = pl.col("h") ^ (pl.col("row").cast(_U64) * pl.lit(_ROW, _U64))
                cand = cand.with_columns(key=key).with_columns(
                    dup=pl.col("key").is_duplicated(), seen=~pl.col("key").is_first_distinct()
                )
            if n in wanted:
                measure = _top_chars if wanted[n][0] == "top" else _dup_chars
                values[n] = measure(doc, cand, prefix, n)

        checks: list[tuple[pl.Expr, pl.Expr | str]] = []
        frame = doc.select("row", "n_chars")
        for n in sizes:
            kind, limit = wanted[n]
            code = f"{kind}_{n}_gram"
            frame = frame.with_columns(values[n].alias(code))
            r = safe_ratio(pl.col(code), pl.col("n_chars"))
            what = "chars in the most common" if kind == "top" else "chars in repeated"
            msg = pl.format(
                f"gopher_repetition.{code}: {{}} {what} {n}-grams / {{}} = {{}} > {limit}",
                pl.col(code),
                pl.col("n_chars"),
                fmt(r),
            )
            checks.append((r > limit, msg))
        out = frame.with_columns(reason=first_reason(checks)).select("row", "reason")
        full = pl.DataFrame({"row": pl.int_range(0, n_rows, dtype=pl.UInt32, eager=True)})
        return full.join(out, on="row", how="left", maintain_order="left").get_column("reason")


def _top_chars(doc: pl.DataFrame, cand: pl.DataFrame, prefix: pl.Series, n: int) -> pl.Series:
    """count x characters (tokens joined by spaces) of each document's most common n-gram, the first seen
    among equals; with all n-grams distinct, the first n-gram; null for documents with < n tokens."""
    if len(prefix) <= n:  # fewer than n tokens in the whole batch
        return pl.Series([None] * doc.height, dtype=pl.Int64)
    reps = cand.filter(pl.col("dup")).group_by("key").agg(pl.col("row").first(), count=pl.len(), g=pl.col("g").min())
    best = reps.sort(["row", "count", "g"], descending=[False, True, False]).unique(
        "row", keep="first", maintain_order=True
    )
    joined = doc.select("row", "start", "n_tok").join(
        best.select("row", "count", "g"), on="row", how="left", maintain_order="left"
    )
    g = joined.get_column("g").fill_null(joined.get_column("start"))
    g = pl.select(pl.when(joined.get_column("n_tok") >= n).then(g).otherwise(0)).to_series()
    chars = prefix.gather(g + n) - prefix.gather(g) + (n - 1)
    count = joined.get_column("count").fill_null(1).cast(pl.Int64)
    return pl.select(pl.when(joined.get_column("n_tok") >= n).then(count * chars)).to_series()


def _dup_chars(doc: pl.DataFrame, cand: pl.DataFrame, prefix: pl.Series, n: int) -> pl.Series:
    """Characters (tokens joined without spaces) that DataTrove's scan counts for repeated n-grams.

    The scan counts a repeated n-gram and jumps n tokens, so a run of r consecutive positions whose
    n-gram occurred earlier counts its first ceil(r/n) * n tokens. Runs are taken independently; a run
    is cut where the next run of the same document starts (so no token is counted twice).
    """
    hits = cand.filter(pl.col("seen")).select("g", "row")
    same_as_prev = (pl.col("row").shift(1) == pl.col("row")) & (pl.col("g").shift(1) == pl.col("g") - 1)
    hits = hits.with_columns(start=~same_as_prev.fill_null(False))
    hits = hits.with_columns(last=pl.col("start").shift(-1).fill_null(True))
    starts = hits.filter(pl.col("start")).select("row", s="g")
    ends = hits.filter(pl.col("last")).get_column("g")
    runs = starts.with_columns(r=ends - pl.col("s") + 1)
    next_start = pl.when(pl.col("row").shift(-1) == pl.col("row")).then(pl.col("s").shift(-1))
    stop = pl.col("s") + (pl.col("r") + (n - 1)) // n * n
    runs = runs.with_columns(stop=pl.min_horizontal(stop, next_start.fill_null(stop)))
    runs = runs.with_columns(chars=prefix.gather(runs.get_column("stop")) - prefix.gather(runs.get_column("s")))
    per_doc = runs.group_by("row").agg(pl.col("chars").sum())
    joined = doc.select("row").join(per_doc, on="row", how="left", maintain_order="left")
    return joined.get_column("chars").fill_null(0)


def _fold(h: pl.Expr, token: pl.Series) -> pl.Expr:
    """Extend n-gram hashes ``h`` by one token hash (wrapping 64-bit multiply, then xor)."""
    return (h * pl.lit(_P, _U64)) ^ pl.lit(token)
