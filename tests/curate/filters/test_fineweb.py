"""FineWeb quality rules: every threshold just inside and just outside, DataTrove's current definitions."""

from __future__ import annotations

import polars as pl
import pytest

from curate.filters import get_filter
from curate.filters.fineweb import FineWebParams
from schemas.kinds import Kind

PUBLISHED = {
    "line_punct_thr": 0.12,
    "line_punct_exclude_zero": False,
    "stop_chars": None,  # DataTrove: TERMINAL_PUNCTUATION (Unicode sentence terminals)
    "short_line_thr": 0.67,
    "short_line_length": 30,
    "char_duplicates_ratio": 0.01,
    "new_line_ratio": 0.3,
}
ALL_OFF = {"line_punct_thr": None, "short_line_thr": None, "char_duplicates_ratio": None, "new_line_ratio": None}


def fineweb(text: str, **params: object) -> str | None:
    flt = get_filter("fineweb")(params, field="text")
    return flt.reasons(pl.DataFrame({"text": [text]}), Kind.TEXT).to_list()[0]


def only(text: str, **params: object) -> str | None:
    return fineweb(text, **(ALL_OFF | params))


def line(i: int, end: str = ".") -> str:
    """A distinct line of 35 characters plus ``end``."""
    return f"this is line number {i:03d} of the text{end}"


def test_defaults_are_published() -> None:
    assert FineWebParams().model_dump() == PUBLISHED


def test_a_plain_text_passes() -> None:
    text = "\n".join(line(i) for i in range(8))
    assert fineweb(text) is None


def test_empty_and_blank_texts() -> None:
    assert fineweb("") == "fineweb.empty: no non-blank line"
    assert fineweb("  \n\t\n") == "fineweb.empty: no non-blank line"
    assert only("x") is None  # every check off: only emptiness remains


def test_line_punct_ratio() -> None:
    ok = [line(i, "." if i < 3 else "") for i in range(25)]  # 3 / 25 = 0.12, not < 0.12
    assert only("\n".join(ok), line_punct_thr=0.12) is None
    bad = [line(i, "." if i < 3 else "") for i in range(26)]  # 3 / 26
    assert only("\n".join(bad), line_punct_thr=0.12) == (
        "fineweb.line_punct_ratio: 3 of 26 lines end in terminal punctuation = 0.115 < 0.12"
    )
    # blank lines are not lines
    assert only("\n\n\n".join(ok) + "\n\n", line_punct_thr=0.12) is None


def test_line_punct_exclude_zero_and_stop_chars() -> None:
    none_punctuated = "\n".join(line(i, "") for i in range(5))
    assert code(only(none_punctuated, line_punct_thr=0.12)) == "fineweb.line_punct_ratio"
    assert only(none_punctuated, line_punct_thr=0.12, line_punct_exclude_zero=True) is None
    # Unicode sentence terminals count; quotes, colons and trailing spaces do not (lines are not stripped)
    for end in ("。", "?", "!", "।", "؟"):
        assert only(line(0, end), line_punct_thr=0.12) is None, end
    for end in ('"', ":", ". ", "…"):
        assert code(only(line(0, end), line_punct_thr=0.12)) == "fineweb.line_punct_ratio", end
    assert only(line(0, '"'), line_punct_thr=0.12, stop_chars="\".'!?") is None  # FineWeb v1's set


def test_short_line_ratio_and_length() -> None:
    short = [f"short {i:02d}." for i in range(67)]
    long = [line(i) for i in range(33)]
    assert only("\n".join(short + long), short_line_thr=0.67) is None  # 67 / 100
    assert only("\n".join(short + long[:32]), short_line_thr=0.67) == (
        "fineweb.short_line_ratio: 67 of 99 lines have <= 30 chars = 0.677 > 0.67"
    )
    thirty, thirty_one = "x" * 29 + ".", "x" * 30 + "."
    assert code(only(thirty, short_line_thr=0.67)) == "fineweb.short_line_ratio"
    assert only(thirty_one, short_line_thr=0.67) is None
    assert code(only(thirty_one, short_line_thr=0.67, short_line_length=31)) == "fineweb.short_line_ratio"


def test_char_dup_ratio() -> None:
    dup = "abcd efgh."  # 10 characters, twice
    fill = [line(i) for i in range(24)]
    body = "\n".join([dup, *fill, dup])
    chars = len(body) - body.count("\n")
    filler = "y" * (1000 - chars - 1) + "."
    ok = body + "\n" + filler
    assert len(ok) - ok.count("\n") == 1000
    assert only(ok, char_duplicates_ratio=0.01) is None  # 10 / 1000
    bad = body + "\n" + filler[1:]
    assert only(bad, char_duplicates_ratio=0.01) == (
        "fineweb.char_dup_ratio: 10 chars in repeated lines / 999 = 0.01001 > 0.01"
    )
    # blank lines are never duplicates
    assert only("a.\n\n\nb.\n\n", char_duplicates_ratio=0.01) is None


def test_new_line_ratio() -> None:
    ok = "a b c d\ne f g\nh i\nj"  # 3 newlines / 10 tokens = 0.3
    assert only(ok, new_line_ratio=0.3) is None
    bad = "a b c\ne f g\nh i\nj"  # 3 / 9
    assert only(bad, new_line_ratio=0.3) == "fineweb.new_line_ratio: 3 newlines / 9 tokens = 0.333 > 0.3"
    # blank lines still count as newlines
    assert code(only("a b c d e f\n\n\n", new_line_ratio=0.3)) == "fineweb.new_line_ratio"


def test_checks_run_in_datatrove_order() -> None:
    text = "\n".join(["x"] * 10)  # no punctuation, all short, all duplicated, 9 newlines / 10 tokens
    assert code(fineweb(text)) == "fineweb.line_punct_ratio"
    assert code(fineweb(text, line_punct_thr=None)) == "fineweb.short_line_ratio"
    assert code(fineweb(text, line_punct_thr=None, short_line_thr=None)) == "fineweb.char_dup_ratio"
    assert code(fineweb(text, line_punct_thr=None, short_line_thr=None, char_duplicates_ratio=None)) == (
        "fineweb.new_line_ratio"
    )


def code(reason: str | None) -> str | None:
    return None if reason is None else reason.split(":")[0]


@pytest.mark.parametrize("kind", [Kind.SFT, Kind.ALPACA, Kind.PREFERENCE])
def test_works_on_each_kinds_response(kind: Kind, kind_frame) -> None:
    good = "\n".join(line(i) for i in range(5))
    got = get_filter("fineweb")().reasons(kind_frame(kind, [good, "", good + "\n" + good]), kind).to_list()
    assert got[0] is None
    assert got[1] == "fineweb.empty: no non-blank line"
    assert code(got[2]) == "fineweb.char_dup_ratio"
