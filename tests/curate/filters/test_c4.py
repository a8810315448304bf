"""C4 rules as a document filter: every threshold just inside and just outside, and the line-rule mapping."""

from __future__ import annotations

import polars as pl
import pytest

from curate.filters import get_filter
from curate.filters.c4 import C4Params
from schemas.kinds import Kind

PUBLISHED = {
    "filter_lorem_ipsum": True,
    "filter_curly_bracket": True,
    "max_word_length": 1000,
    "min_num_sentences": 5,
    "max_removed_line_frac": 0.5,  # not published: this project's document-level stand-in
    "doc_rules_on": "text",
    "filter_no_terminal_punct": True,
    "min_words_per_line": 3,
    "filter_javascript": True,
    "filter_policy": True,
    "policy_substrings": (
        "terms of use",
        "privacy policy",
        "cookie policy",
        "uses cookies",
        "use of cookies",
        "use cookies",
    ),
    "remove_citations": True,
}


def c4(text: str, **params: object) -> str | None:
    flt = get_filter("c4")(params, field="text")
    return flt.reasons(pl.DataFrame({"text": [text]}), Kind.TEXT).to_list()[0]


def code(reason: str | None) -> str | None:
    return None if reason is None else reason.split(":")[0]


def good(n: int) -> list[str]:
    """``n`` lines C4 keeps, one sentence each."""
    return [f"This is sentence number {i} here." for i in range(n)]


def test_defaults_are_published() -> None:
    assert C4Params().model_dump() == PUBLISHED


def test_a_plain_text_passes() -> None:
    assert c4("\n".join(good(5))) is None


def test_lorem_ipsum_anywhere_any_case() -> None:
    assert c4("\n".join([*good(5), "Some Lorem IPSUM filler text."])) == "c4.lorem_ipsum: contains 'lorem ipsum'"
    assert c4("\n".join([*good(5), "lorem  ipsum is spaced."])) is None
    assert c4("\n".join([*good(5), "Lorem ipsum dolor sit amet."]), filter_lorem_ipsum=False) is None


def test_curly_bracket() -> None:
    assert c4("\n".join([*good(5), "Use a dict like {a: 1} here."])) == "c4.curly_bracket: contains '{'"
    assert c4("\n".join([*good(5), "A closing } alone is fine."])) is None
    assert c4("\n".join([*good(5), "Use {a: 1} here."]), filter_curly_bracket=False) is None


def test_max_word_length() -> None:
    ok = "\n".join([*good(5), "A word " + "x" * 1000 + " here."])
    assert c4(ok) is None
    bad = "\n".join([*good(5), "A word " + "x" * 1001 + " here."])
    assert c4(bad) == "c4.max_word_length: a word longer than 1000 chars"
    assert c4(bad, max_word_length=None) is None


def test_min_num_sentences_counts_kept_lines_only() -> None:
    assert c4("\n".join(good(5))) is None
    assert c4("\n".join(good(4))) == "c4.min_num_sentences: 4 sentences in the lines C4 keeps < 5"
    # several sentences on one line
    assert c4("One two three. Four five six! Seven eight nine?\nTen and eleven. Twelve and thirteen.") is None
    # removed lines hold no sentences: a JavaScript notice is not the fifth sentence
    four_and_js = "\n".join([*good(4), "Please enable JavaScript to continue."])
    assert code(c4(four_and_js, max_removed_line_frac=None)) == "c4.min_num_sentences"
    assert c4("\n".join(good(4)), min_num_sentences=4) is None
    assert c4("", min_num_sentences=None, max_removed_line_frac=None) is None


def test_removed_lines_fraction() -> None:
    menu = [f"Menu item {i}" for i in range(6)]  # no terminal punctuation
    ok = "\n".join(good(5) + menu[:5])  # 5 of 10
    assert c4(ok) is None
    bad = "\n".join(good(5) + menu[:6])  # 6 of 11
    assert c4(bad) == "c4.removed_lines: C4 would remove 6 of 11 non-blank lines = 0.545 > 0.5"
    # blank lines are not counted
    assert c4("\n\n\n".join(good(5) + menu[:5]) + "\n\n") is None
    assert c4(bad, max_removed_line_frac=None) is None


REMOVED = [
    "No terminal punctuation here",
    "It trails off into an ellipsis...",
    "Two words.",
    "Please enable JavaScript to continue.",
    "This site uses cookies for analytics.",
    "Read our Privacy Policy before you go.",
    "By using it you accept the terms of use.",
    "We use cookies.",
]
KEPT = [
    "Three words here.",
    'She said "yes it is"',
    "He asked whether it was true?",
    "What a day it was!",
    "A cited fact is right here.[12]",
    "Edited text is here.[edit]",
    "   Indented lines are stripped first.   ",
]


@pytest.mark.parametrize("line", REMOVED)
def test_line_rules_remove(line: str) -> None:
    text = "\n".join([*good(5), line])
    assert (
        c4(text, max_removed_line_frac=0.0) == "c4.removed_lines: C4 would remove 1 of 6 non-blank lines = 0.167 > 0.0"
    )


@pytest.mark.parametrize("line", KEPT)
def test_line_rules_keep(line: str) -> None:
    assert c4("\n".join([*good(5), line]), max_removed_line_frac=0.0) is None


def test_line_rule_switches() -> None:
    def removed(line: str, **params: object) -> bool:
        return c4("\n".join([*good(5), line]), max_removed_line_frac=0.0, **params) is not None

    assert not removed("No terminal punctuation here", filter_no_terminal_punct=False)
    assert not removed("Two words.", min_words_per_line=2)
    assert removed("Two words.", min_words_per_line=3)
    assert not removed("Please enable JavaScript to continue.", filter_javascript=False)
    assert not removed("We use cookies.", filter_policy=False)
    assert not removed("We use cookies.", policy_substrings=())
    assert removed("A cited fact is right here.[12]", remove_citations=False)
    # non-ASCII phrases are matched on the lowercased line
    spanish = ("política de privacidad",)
    assert removed("Lea nuestra POLÍTICA DE PRIVACIDAD hoy.", policy_substrings=spanish)
    assert not removed("Lea nuestra política de datos hoy.", policy_substrings=spanish)


def test_kept_lines_mode_reproduces_the_reference_code() -> None:
    # the reference only looks for '{' and lorem ipsum on lines that survived the earlier line rules
    brace_in_removed_line = "\n".join([*good(5), "function f() {"])
    assert c4(brace_in_removed_line) == "c4.curly_bracket: contains '{'"
    assert c4(brace_in_removed_line, doc_rules_on="kept_lines") is None
    assert code(c4("\n".join([*good(5), "x = {1, 2} is a set."]), doc_rules_on="kept_lines")) == "c4.curly_bracket"
    # a JavaScript line is removed before the bracket check
    assert c4("\n".join([*good(5), "In JavaScript write {a: 1} here."]), doc_rules_on="kept_lines") is None
    lorem_short = "\n".join([*good(5), "Lorem ipsum"])
    assert c4(lorem_short, doc_rules_on="kept_lines") is None
    assert code(c4("\n".join([*good(5), "Lorem ipsum dolor sit."]), doc_rules_on="kept_lines")) == "c4.lorem_ipsum"
    # a long word only removes its line
    long_word = "\n".join([*good(5), "A word " + "x" * 1001 + " here."])
    assert c4(long_word, doc_rules_on="kept_lines") is None
    assert code(c4(long_word, doc_rules_on="kept_lines", max_removed_line_frac=0.0)) == "c4.removed_lines"


def test_order_of_checks() -> None:
    text = "Lorem ipsum {"  # also too few sentences and every line removed
    assert code(c4(text)) == "c4.lorem_ipsum"
    assert code(c4(text, filter_lorem_ipsum=False)) == "c4.curly_bracket"
    assert code(c4(text, filter_lorem_ipsum=False, filter_curly_bracket=False)) == "c4.min_num_sentences"
    assert code(c4(text, filter_lorem_ipsum=False, filter_curly_bracket=False, min_num_sentences=None)) == (
        "c4.removed_lines"
    )


def test_max_word_length_is_bounded() -> None:
    text = "\n".join([*good(5), "A word " + "x" * 5001 + " here."])
    assert c4(text, max_word_length=5000) == "c4.max_word_length: a word longer than 5000 chars"
    assert code(c4(text, max_word_length=5000, doc_rules_on="kept_lines", max_removed_line_frac=0.0)) == (
        "c4.removed_lines"
    )
    with pytest.raises(ValueError):
        get_filter("c4")({"max_word_length": 5001})


@pytest.mark.parametrize("kind", [Kind.SFT, Kind.ALPACA, Kind.PREFERENCE])
def test_works_on_each_kinds_response(kind: Kind, kind_frame) -> None:
    frame = kind_frame(kind, ["\n".join(good(5)), "Lorem ipsum.", "Short."])
    got = get_filter("c4")().reasons(frame, kind).to_list()
    assert got == [
        None,
        "c4.lorem_ipsum: contains 'lorem ipsum'",
        "c4.min_num_sentences: 0 sentences in the lines C4 keeps < 5",
    ]
