"""Length bounds: each bound just inside and just outside, defaults, and every record kind."""

from __future__ import annotations

import polars as pl
import pytest

from curate.filters import all_filters, get_filter
from curate.filters.length import LengthParams
from schemas.kinds import Kind


def length(texts: list[str], **params: object) -> list[str | None]:
    flt = get_filter("length")(params, field="text")
    return flt.reasons(pl.DataFrame({"text": texts}), Kind.TEXT).to_list()


def test_defaults_are_no_bounds() -> None:
    assert LengthParams().model_dump() == {"min_chars": None, "max_chars": None, "min_words": None, "max_words": None}


def test_registry_lists_every_filter() -> None:
    assert set(all_filters()) >= {
        "length",
        "gopher_quality",
        "gopher_repetition",
        "c4",
        "fineweb",
        "instruction_defects",
    }
    with pytest.raises(KeyError, match="known: "):
        get_filter("nope")


def test_min_chars() -> None:
    assert length(["abcde", "abcd"], min_chars=5) == [None, "length.min_chars: 4 chars < 5"]


def test_max_chars() -> None:
    assert length(["abcde", "abcdef"], max_chars=5) == [None, "length.max_chars: 6 chars > 5"]


def test_min_words() -> None:
    assert length(["one two three", "one two"], min_words=3) == [None, "length.min_words: 2 words < 3"]


def test_max_words() -> None:
    assert length(["one two three", "one two three four"], max_words=3) == [None, "length.max_words: 4 words > 3"]


def test_characters_not_bytes_and_whitespace_words() -> None:
    assert length(["café", "naïve\tword\nhere"], max_chars=4, max_words=3) == [None, "length.max_chars: 15 chars > 4"]
    assert length(["naïve\tword\nhere"], max_words=2) == ["length.max_words: 3 words > 2"]


def test_first_broken_bound_is_the_reason() -> None:
    assert length([""], min_chars=1, min_words=1) == ["length.min_chars: 0 chars < 1"]


def test_no_bounds_keeps_every_row() -> None:
    # a rule with no checks is a bare null literal: reasons must still give one value per row
    assert length(["a", "b", "c"]) == [None, None, None]


@pytest.mark.parametrize("kind", [Kind.SFT, Kind.ALPACA, Kind.PREFERENCE])
def test_works_on_each_kinds_response(kind: Kind, kind_frame) -> None:
    got = get_filter("length")({"min_words": 3}).reasons(kind_frame(kind, ["one two three", "one"]), kind).to_list()
    assert got == [None, "length.min_words: 1 words < 3"]
    # the prompt field too ("Tell me about thing <i>." is 5 words)
    got = get_filter("length")({"max_words": 5}, field="prompt").reasons(kind_frame(kind, ["x", "y"]), kind).to_list()
    assert got == [None, None]
    got = get_filter("length")({"max_words": 4}, field="prompt").reasons(kind_frame(kind, ["x"]), kind).to_list()
    assert got == ["length.max_words: 5 words > 4"]
