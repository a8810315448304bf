"""Gopher quality and repetition: every threshold just inside and just outside, DataTrove's definitions."""

from __future__ import annotations

import random
import re
from collections import Counter
from fractions import Fraction

import polars as pl
import pytest

from curate.filters import get_filter
from curate.filters.gopher import GopherQualityParams, GopherRepetitionParams, token_regex
from schemas.kinds import Kind


def reasons(name: str, texts: list[str], **params: object) -> list[str | None]:
    flt = get_filter(name)(params, field="text")
    return flt.reasons(pl.DataFrame({"text": texts}, schema={"text": pl.String}), Kind.TEXT).to_list()


def quality(text: str, **params: object) -> str | None:
    return reasons("gopher_quality", [text], **params)[0]


def code(reason: str | None) -> str | None:
    return None if reason is None else reason.split(":")[0]


# --------------------------------------------------------------------------------------------- defaults

QUALITY_DEFAULTS = {
    "min_doc_words": 50,
    "max_doc_words": 100_000,
    "min_avg_word_length": 3,
    "max_avg_word_length": 10,
    "max_symbol_word_ratio": 0.1,
    "max_bullet_lines_ratio": 0.9,
    "max_ellipsis_lines_ratio": 0.3,
    "max_non_alpha_words_ratio": 0.8,
    "min_stop_words": 2,
    "stop_words": ("the", "be", "to", "of", "and", "that", "have", "with"),
}
REPETITION_DEFAULTS = {
    "dup_line_frac": 0.3,
    "dup_para_frac": 0.3,
    "dup_line_char_frac": 0.2,
    "dup_para_char_frac": 0.2,
    "top_n_grams": ((2, 0.2), (3, 0.18), (4, 0.16)),
    "dup_n_grams": ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
}


def test_quality_defaults_are_published() -> None:
    assert GopherQualityParams().model_dump() == QUALITY_DEFAULTS


def test_repetition_defaults_are_published() -> None:
    assert GopherRepetitionParams().model_dump() == REPETITION_DEFAULTS


def test_unknown_params_and_bad_ngram_sizes_are_errors() -> None:
    with pytest.raises(ValueError):
        get_filter("gopher_quality")({"min_words": 3})
    with pytest.raises(ValueError):
        get_filter("gopher_repetition")({"top_n_grams": [[2, 0.2], [2, 0.3]]})


# ------------------------------------------------------------------------------------------ quality

GOOD = (
    "The history of the city goes back to the early middle ages, when a small market grew up beside the "
    "river crossing. Merchants and farmers came to trade wool, grain and salt, and over the centuries the "
    "settlement became a busy town with a cathedral, a guild hall and a university that still attracts "
    "students from many countries."
)


def test_a_plain_paragraph_passes_every_default_rule() -> None:
    assert quality(GOOD) is None
    assert reasons("gopher_repetition", [GOOD]) == [None]


def words(n: int, stop: tuple[str, ...] = ("the", "and")) -> list[str]:
    """``n`` words: the given stop words, then distinct five-letter words."""
    extra = [f"w{i:04d}" for i in range(n - len(stop))]
    return [*stop, *extra]


def test_min_doc_words() -> None:
    assert quality(" ".join(words(50))) is None
    assert quality(" ".join(words(49))) == "gopher_quality.min_doc_words: 49 words < 50"
    # punctuation tokens are not words
    assert code(quality(" , ".join(words(49)))) == "gopher_quality.min_doc_words"


def test_max_doc_words() -> None:
    assert quality(" ".join(words(100_000))) is None
    assert quality(" ".join(words(100_001))) == "gopher_quality.max_doc_words: 100001 words > 100000"


def test_min_avg_word_length() -> None:
    ok = ["the", "and"] + ["cat"] * 48  # 150 chars / 50 words = 3.0
    assert quality(" ".join(ok)) is None
    short = ["the", "and", "at"] + ["cat"] * 47  # 149 / 50
    assert quality(" ".join(short)) == "gopher_quality.min_avg_word_length: mean word length 2.98 < 3"


def test_max_avg_word_length() -> None:
    ok = ["the", "and"] + ["abcdefghij"] * 47 + ["x" * 24]  # 500 chars / 50 words = 10.0
    assert quality(" ".join(ok)) is None
    long = ["the", "and"] + ["abcdefghij"] * 47 + ["x" * 25]  # 501 / 50
    assert quality(" ".join(long)) == "gopher_quality.max_avg_word_length: mean word length 10.02 > 10"


def test_hash_ratio_counts_hashes_per_token() -> None:
    ok = " ".join(words(54) + ["#"] * 6)  # 6 '#' / 60 tokens = 0.1
    assert quality(ok) is None
    bad = " ".join(words(53) + ["#"] * 7)  # 7 / 60
    assert quality(bad) == "gopher_quality.hash_ratio: 7 hashes / 60 tokens = 0.117 > 0.1"


def test_ellipsis_ratio_counts_both_spellings() -> None:
    ok = " ".join(words(54)[:30] + ["...", "…"] * 3 + words(54)[30:])  # 6 / 60
    assert quality(ok) is None
    bad = " ".join(words(53)[:30] + ["...", "…"] * 3 + ["..."] + words(53)[30:])  # 7 / 60
    assert quality(bad) == "gopher_quality.ellipsis_ratio: 7 ellipses / 60 tokens = 0.117 > 0.1"


def lines_of(n: int, start: int = 0) -> list[str]:
    return [" ".join(f"w{start + i}x{j}" for j in range(6)) + " the and" for i in range(n)]


def test_bullet_lines() -> None:
    plain = lines_of(11)
    ok = [("  • " if i % 2 else "- ") + line for i, line in enumerate(plain[:9])] + plain[9:10]  # 9 of 10
    assert quality("\n".join(ok)) is None
    bad = ["- " + line for line in plain[:10]] + plain[10:]  # 10 of 11
    assert quality("\n".join(bad)) == "gopher_quality.bullet_lines: 10 of 11 lines start with a bullet = 0.909 > 0.9"
    # a trailing newline does not make an extra line; '\r\n' and '\r' are line breaks (str.splitlines)
    assert quality("\r\n".join(bad[:10]) + "\n").startswith("gopher_quality.bullet_lines: 10 of 10 lines")
    assert quality("\r".join(bad)).startswith("gopher_quality.bullet_lines: 10 of 11 lines")


def test_ellipsis_lines() -> None:
    plain = lines_of(10)
    ok = [line + ("..." if i < 3 else ".") for i, line in enumerate(plain)]  # 3 of 10
    assert quality("\n".join(ok)) is None
    bad = [line + ("…  " if i < 4 else ".") for i, line in enumerate(plain)]  # 4 of 10, trailing spaces
    assert quality("\n".join(bad)) == "gopher_quality.ellipsis_lines: 4 of 10 lines end with an ellipsis = 0.4 > 0.3"


def test_alpha_words_ratio() -> None:
    ok = words(40) + ["1234"] * 10  # 40 of 50 tokens contain a letter
    assert quality(" ".join(ok)) is None
    bad = words(39) + ["1234"] * 11
    assert quality(" ".join(bad)) == "gopher_quality.alpha_words: 39 of 50 tokens contain a letter = 0.78 < 0.8"
    # punctuation tokens count in the denominator (DataTrove divides by all tokens)
    assert code(quality(" . ".join(words(50)))) == "gopher_quality.alpha_words"


def test_stop_words_are_distinct_and_case_sensitive() -> None:
    assert quality(" ".join(words(50, stop=("the", "with")))) is None
    assert quality(" ".join(words(50, stop=("the",) * 10))) == "gopher_quality.stop_words: 1 distinct stop words < 2"
    assert code(quality(" ".join(words(50, stop=("The", "And"))))) == "gopher_quality.stop_words"


def test_stop_word_regex_agrees_with_the_tokenizer() -> None:
    rng = random.Random(3)
    pieces = ["the", "and", "x", "9", "-", "--", ".", "...", "'", "’", " ", " ", "_", ",", "\n"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    for word in ("the", "and"):
        got = pl.Series(texts).str.contains(token_regex(word)).to_list()
        assert got == [word in _TOKEN.findall(t) for t in texts], word


def test_none_disables_a_rule_and_empty_text_never_divides_by_zero() -> None:
    assert quality(" ".join(words(49)), min_doc_words=None) is None
    assert quality("") == "gopher_quality.min_doc_words: 0 words < 50"
    # DataTrove would divide by zero here; ratios over nothing never drop, the stop-word count does
    assert quality("", min_doc_words=None) == "gopher_quality.stop_words: 0 distinct stop words < 2"
    assert quality("", min_doc_words=None, min_stop_words=None) is None


# --------------------------------------------------------------------------------------- repetition

ALL_OFF = {
    "dup_line_frac": None,
    "dup_para_frac": None,
    "dup_line_char_frac": None,
    "dup_para_char_frac": None,
    "top_n_grams": (),
    "dup_n_grams": (),
}


def repetition(text: str, **only: object) -> str | None:
    """Reason with every rule off except ``only``."""
    return reasons("gopher_repetition", [text], **(ALL_OFF | only))[0]


def test_dup_para_frac() -> None:
    paras = [f"paragraph number {i}" for i in range(7)]
    ok = "\n\n".join([*paras, paras[0], paras[1], paras[0]])  # 3 repeats / 10
    assert repetition(ok, dup_para_frac=0.3) is None
    bad = "\n\n\n".join([*paras, "x", "y", *paras[:4]])  # 4 / 13; any run of 2+ newlines splits
    assert repetition(bad, dup_para_frac=0.3) == (
        "gopher_repetition.dup_para_frac: 4 repeated paragraphs / 13 = 0.308 > 0.3"
    )


def test_dup_para_char_frac() -> None:
    a = "a" * 9 + " " + "b" * 10  # 20 chars
    ok = f"{a}\n\n{'f' * 56}\n\n{a}"  # 20 / 100
    assert len(ok) == 100 and repetition(ok, dup_para_char_frac=0.2) is None
    bad = f"{a}\n\n{'f' * 55}\n\n{a}"  # 20 / 99
    assert repetition(bad, dup_para_char_frac=0.2) == (
        "gopher_repetition.dup_para_char_frac: 20 chars in repeated paras / 99 = 0.202 > 0.2"
    )


def test_dup_line_frac_and_the_newline_split() -> None:
    lines = [f"line number {i}" for i in range(7)]
    ok = "\n".join([*lines, lines[0], lines[1], lines[0]])
    assert repetition(ok, dup_line_frac=0.3) is None
    bad = "\n\n".join([*lines, "x", "y", *lines[:4]])  # lines split on \n+: 4 / 13
    assert repetition(bad, dup_line_frac=0.3) == "gopher_repetition.dup_line_frac: 4 repeated lines / 13 = 0.308 > 0.3"
    # re.split("\n+") keeps an empty first and last line: two empty lines of three are one repeat
    assert (
        repetition("\nA\n", dup_line_frac=0.3) == "gopher_repetition.dup_line_frac: 1 repeated lines / 3 = 0.333 > 0.3"
    )
    assert repetition("\nA\nB\nC\n", dup_line_frac=0.3) is None  # 1 / 5


def test_dup_line_char_frac() -> None:
    a = "c" * 20
    ok = f"{a}\n{'f' * 58}\n{a}"  # 20 / 100
    assert len(ok) == 100 and repetition(ok, dup_line_char_frac=0.2) is None
    bad = f"{a}\n{'f' * 57}\n{a}"
    assert repetition(bad, dup_line_char_frac=0.2) == (
        "gopher_repetition.dup_line_char_frac: 20 chars in repeated lines / 99 = 0.202 > 0.2"
    )


def pad_to(text: str, length: int) -> str:
    """``text`` plus one unique word of z's, ``length`` characters in all."""
    assert length >= len(text) + 2
    return text + " " + "z" * (length - len(text) - 1)


@pytest.mark.parametrize(("n", "limit"), REPETITION_DEFAULTS["top_n_grams"])
def test_top_n_gram(n: int, limit: float) -> None:
    gram = " ".join(chr(ord("a") + i) * 2 for i in range(n))  # "aa bb cc ..."
    for k in range(2, 100):  # k repeats of the n-gram so that the boundary length is a whole number
        length = Fraction(len(gram) * k) / Fraction(str(limit))
        base = " ".join(f"{gram} f{i}" for i in range(k))
        if length.denominator == 1 and length >= len(base) + 3:
            break
    length = int(length)
    only = {"top_n_grams": ((n, limit),)}
    assert repetition(pad_to(base, length), **only) is None
    chars = len(gram) * k
    assert repetition(pad_to(base, length - 1), **only) == (
        f"gopher_repetition.top_{n}_gram: {chars} chars in the most common {n}-grams / {length - 1} = "
        f"{round(chars / (length - 1), 3)} > {limit}"
    )


def test_top_n_gram_ties_go_to_the_first_seen_and_distinct_ngrams_use_the_first() -> None:
    only = {"top_n_grams": ((2, 0.2),)}
    long_first = pad_to("aaaa bbbb q1 x y q2 aaaa bbbb q3 x y", 80)  # "aaaa bbbb" x2 = 18 chars / 80 > 0.2
    assert code(repetition(long_first, **only)) == "gopher_repetition.top_2_gram"
    short_first = pad_to("x y q1 aaaa bbbb q2 x y q3 aaaa bbbb", 80)  # "x y" x2 = 6 / 80
    assert repetition(short_first, **only) is None
    # every 2-gram distinct: judged on the first one, so short texts fail (as in DataTrove)
    assert repetition("Yes, it is.", **only) == (
        "gopher_repetition.top_2_gram: 5 chars in the most common 2-grams / 11 = 0.455 > 0.2"
    )
    assert repetition("Yes", **only) is None  # fewer than 2 tokens: skipped


@pytest.mark.parametrize(("n", "limit"), REPETITION_DEFAULTS["dup_n_grams"])
def test_dup_n_gram(n: int, limit: float) -> None:
    for width in range(1, 100):  # n tokens of `width` chars: n * width chars repeated
        length = Fraction(n * width) / Fraction(str(limit))
        if length.denominator == 1:
            break
    length = int(length)
    passage = " ".join(chr(ord("a") + i) * width for i in range(n))
    base = f"{passage} k {passage}"
    only = {"dup_n_grams": ((n, limit),)}
    assert repetition(pad_to(base, length), **only) is None
    chars = n * width
    assert repetition(pad_to(base, length - 1), **only) == (
        f"gopher_repetition.dup_{n}_gram: {chars} chars in repeated {n}-grams / {length - 1} = "
        f"{round(chars / (length - 1), 3)} > {limit}"
    )


def test_dup_n_gram_counts_whole_ngrams_like_datatrove() -> None:
    # a 12-token passage seen twice: the second copy has 8 repeated 5-grams in a row; DataTrove's scan
    # counts the 5-grams at offsets 0 and 5 (10 tokens), not all 12 tokens
    passage = " ".join("abcdefghijkl")
    text = pad_to(f"{passage} m0 {passage}", 70)
    assert repetition(text, dup_n_grams=((5, 0.15),)) is None  # 10 / 70 = 0.143; 12 / 70 would be 0.171
    assert repetition(pad_to(f"{passage} m0 {passage}", 66), dup_n_grams=((5, 0.15),)) == (
        "gopher_repetition.dup_5_gram: 10 chars in repeated 5-grams / 66 = 0.152 > 0.15"
    )


def test_rules_are_checked_in_datatrove_order() -> None:
    text = "\n\n".join(["same paragraph here"] * 4)
    assert code(reasons("gopher_repetition", [text])[0]) == "gopher_repetition.dup_para_frac"


# A plain-Python transcription of DataTrove's GopherRepetitionFilter over the same tokenizer.
_TOKEN = re.compile(r"\w+(?:[-.'’]\w+)*|\.\.\.|--|[^\w\s]")


def _find_duplicates(items: list[str]) -> tuple[int, int]:
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        seen.add(item)
    return count, chars


def _reference(text: str) -> str | None:
    p = GopherRepetitionParams()
    paras = re.split(r"\n{2,}", text.strip())
    dups, chars = _find_duplicates(paras)
    if dups / len(paras) > p.dup_para_frac:
        return "dup_para_frac"
    if text and chars / len(text) > p.dup_para_char_frac:
        return "dup_para_char_frac"
    lines = re.split("\n+", text)
    dups, chars = _find_duplicates(lines)
    if dups / len(lines) > p.dup_line_frac:
        return "dup_line_frac"
    if text and chars / len(text) > p.dup_line_char_frac:
        return "dup_line_char_frac"
    words = _TOKEN.findall(text)
    for n, limit in p.top_n_grams:
        grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        if grams:
            gram, count = Counter(grams).most_common(1)[0]
            if len(gram) * count / len(text) > limit:
                return f"top_{n}_gram"
    for n, limit in p.dup_n_grams:
        seen: set[tuple[str, ...]] = set()
        chars, i = 0, 0
        while i < len(words) - n + 1:
            gram = tuple(words[i : i + n])
            if gram in seen:
                chars += sum(map(len, gram))
                i += n
            else:
                seen.add(gram)
                i += 1
        if text and chars / len(text) > limit:
            return f"dup_{n}_gram"
    return None


def test_matches_a_plain_transcription_of_datatrove_on_random_texts() -> None:
    rng = random.Random(7)
    small = ["a", "b", "c", "d", "ee", "the", "of", ",", ".", "x-y"]
    texts = []
    for i in range(600):
        if i % 2:
            parts = [rng.choice(small) + rng.choice([" "] * 8 + ["\n", "\n\n"]) for _ in range(rng.randint(0, 90))]
            text = "".join(parts)
        else:
            toks = [f"w{rng.randint(0, 200)}" for _ in range(rng.randint(1, 150))]
            if rng.random() < 0.6:
                a = rng.randint(0, len(toks))
                toks += toks[a : a + rng.randint(1, 25)] * rng.randint(1, 3)
            text = " ".join(toks)
        texts.append(text)
    got = [
        None if r is None else r.split(":")[0].removeprefix("gopher_repetition.")
        for r in reasons("gopher_repetition", texts)
    ]
    want = [_reference(t) for t in texts]
    assert got == want
    assert len(set(want)) > 8  # the sample exercises most rules


@pytest.mark.parametrize("name", ["gopher_quality", "gopher_repetition", "c4", "fineweb"])
def test_batches_cut_into_chunks_give_the_same_reasons(name: str) -> None:
    rng = random.Random(5)
    vocab = ["the", "and", "cat", "dog", "a.", "b,", "\n", "\n\n", "{", "#", "..."]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 120))) for _ in range(400)]
    df = pl.DataFrame({"text": texts})
    whole = get_filter(name)(field="text")
    chunked = get_filter(name)(field="text")
    chunked.chunk_bytes = 5000  # type: ignore[misc]  # about 20 chunks
    assert chunked.reasons(df, Kind.TEXT).to_list() == whole.reasons(df, Kind.TEXT).to_list()


def test_row_order_and_mixed_batches() -> None:
    texts = [GOOD, "\n\n".join(["same paragraph here"] * 4), "", GOOD + " " + GOOD, "Yes, it is.", GOOD]
    got = [code(r) for r in reasons("gopher_repetition", texts)]
    assert got == [None if (c := _reference(t)) is None else f"gopher_repetition.{c}" for t in texts]
    assert got[:3] == [None, "gopher_repetition.dup_para_frac", None] and got[3] is not None and got[5] is None
    assert reasons("gopher_repetition", []) == []


def test_rule_is_an_expression_usable_in_select() -> None:
    flt = get_filter("gopher_repetition")()
    df = pl.DataFrame({"t": [GOOD, "Yes, it is."]})
    out = df.select(flt.rule(pl.col("t")).alias("r")).to_series().to_list()
    assert out[0] is None and code(out[1]) == "gopher_repetition.top_2_gram"


# ------------------------------------------------------------------------------------------- kinds


@pytest.mark.parametrize("kind", [Kind.SFT, Kind.ALPACA, Kind.PREFERENCE])
@pytest.mark.parametrize(
    ("name", "bad"),
    [("gopher_quality", "too short"), ("gopher_repetition", "\n\n".join(["same paragraph here"] * 4))],
)
def test_works_on_each_kinds_response(kind: Kind, name: str, bad: str, kind_frame) -> None:
    got = get_filter(name)().reasons(kind_frame(kind, [GOOD, bad]), kind).to_list()
    assert got[0] is None and got[1] is not None and got[1].startswith(name + ".")
