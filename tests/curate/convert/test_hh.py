"""hh_rlhf_to_preference: Anthropic HH-RLHF transcripts -> preference pairs."""

from __future__ import annotations

from typing import Any

import polars as pl

from curate.convert import ConvertResult, get_converter
from schemas.kinds import Kind
from schemas.validate import check_rules

conv = get_converter("hh_rlhf_to_preference")


def m(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def run(h: Any, chosen: list[str | None], rejected: list[str | None], **opts: Any) -> ConvertResult:
    df = h.frame(chosen=pl.Series(chosen, dtype=pl.String), rejected=pl.Series(rejected, dtype=pl.String))
    res = conv(df, opts)
    h.accounted(df, res, Kind.PREFERENCE)
    return res


def test_single_turn(h) -> None:
    res = run(h, ["\n\nHuman: hi\n\nAssistant: hello"], ["\n\nHuman: hi\n\nAssistant: go away"])
    row = res.ok.row(0, named=True)
    assert row["prompt"] == [m("user", "hi")]
    assert row["chosen"] == [m("assistant", "hello")]
    assert row["rejected"] == [m("assistant", "go away")]
    assert row["judge"] == {"kind": "dataset", "model": None, "annotators": None}
    assert row["margin"] is None
    assert check_rules(res.ok, Kind.PREFERENCE, max_chars=100_000).null_count() == 1


def test_multi_turn(h) -> None:
    shared = "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: And times 3?"
    res = run(h, [shared + "\n\nAssistant: 12."], [shared + "\n\nAssistant: 7."])
    row = res.ok.row(0, named=True)
    assert row["prompt"] == [m("user", "What is 2+2?"), m("assistant", "4."), m("user", "And times 3?")]
    assert row["chosen"] == [m("assistant", "12.")]
    assert row["rejected"] == [m("assistant", "7.")]


def test_divergence_after_a_shared_assistant_turn_gives_multi_turn_completions(h) -> None:
    # both sides share the first assistant reply but diverge at the next Human turn: the prompt stops at
    # the last shared Human turn, and the completions carry the rest of each conversation
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: thanks\n\nAssistant: welcome"
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: ciao"
    row = run(h, [chosen], [rejected]).ok.row(0, named=True)
    assert row["prompt"] == [m("user", "hi")]
    assert row["chosen"] == [m("assistant", "hello"), m("user", "thanks"), m("assistant", "welcome")]
    assert row["rejected"] == [m("assistant", "hello"), m("user", "bye"), m("assistant", "ciao")]


def test_missing_leading_blank_line_and_leading_whitespace(h) -> None:
    res = run(h, ["Human: hi\n\nAssistant: a", "  \nHuman: hi\n\nAssistant: a"], ["Human: hi\n\nAssistant: b"] * 2)
    assert res.ok["prompt"].to_list() == [[m("user", "hi")]] * 2
    assert res.ok["chosen"].to_list() == [[m("assistant", "a")]] * 2


def test_unicode_content(h) -> None:
    q = "¿Qué es 東京? 🗼 مرحبا שלום"
    res = run(h, [f"\n\nHuman: {q}\n\nAssistant: 東京は首都です 🇯🇵"], [f"\n\nHuman: {q}\n\nAssistant: لا أعرف"])
    row = res.ok.row(0, named=True)
    assert row["prompt"] == [m("user", q)]
    assert row["chosen"] == [m("assistant", "東京は首都です 🇯🇵")]
    assert row["rejected"] == [m("assistant", "لا أعرف")]


def test_strip_option(h) -> None:
    chosen, rejected = "\n\nHuman:  hi \n\nAssistant: hello  ", "\n\nHuman:  hi \n\nAssistant: nope"
    assert run(h, [chosen], [rejected]).ok["chosen"].item().to_list() == [m("assistant", "hello")]
    raw = run(h, [chosen], [rejected], strip=False).ok.row(0, named=True)
    assert raw["prompt"] == [m("user", " hi ")]
    assert raw["chosen"] == [m("assistant", "hello  ")]


def test_marker_needs_a_space_or_the_end(h) -> None:
    # "Human:" glued to text is content, not a marker; a bare trailing "Assistant:" is an empty turn
    res = run(
        h, ["\n\nHuman: say\n\nHuman:x please\n\nAssistant: ok"], ["\n\nHuman: say\n\nHuman:x please\n\nAssistant:"]
    )
    row = res.ok.row(0, named=True)
    assert row["prompt"] == [m("user", "say\n\nHuman:x please")]
    assert row["rejected"] == [m("assistant", "")]
    # the empty reply is left to contract validation, which names it
    assert (
        check_rules(res.ok, Kind.PREFERENCE, max_chars=100).item()
        == "empty_content: rejected has a message with empty content"
    )


def test_rejections_have_reasons(h) -> None:
    ok = "\n\nHuman: hi\n\nAssistant: a"
    cases = {
        "missing_field: chosen is null": (None, ok),
        "missing_field: rejected is null": (ok, None),
        "no_turns: chosen has no 'Human:' or 'Assistant:' turns": ("just text", ok),
        "bad_transcript: rejected has text before its first 'Human:' turn": (ok, "Intro\n\nHuman: hi\n\nAssistant: b"),
        "bad_transcript: chosen contains the reserved control characters U+001E/U+001F": (ok + "\x1e", ok),
        "no_prompt: chosen and rejected share no opening Human turn": (
            "\n\nAssistant: a\n\nHuman: b",
            "\n\nAssistant: x\n\nHuman: b",
        ),
        "no_completion: chosen has no turns after the shared prompt": (
            "\n\nHuman: hi\n\nAssistant: a\n\nHuman: more",
            "\n\nHuman: hi\n\nAssistant: a\n\nHuman: more",
        ),
        "bad_turns: chosen continues the shared prompt with a Human turn, not an Assistant turn": (
            "\n\nHuman: hi\n\nHuman: again\n\nAssistant: a",
            "\n\nHuman: hi\n\nAssistant: b",
        ),
    }
    reasons = list(cases)
    res = run(h, [c for c, _ in cases.values()], [r for _, r in cases.values()])
    assert res.ok.height == 0
    assert res.rejected.sort("__row")["reason"].to_list() == reasons


def test_good_rows_survive_bad_neighbours(h) -> None:
    res = run(h, [None, "\n\nHuman: q\n\nAssistant: a", "x"], ["y", "\n\nHuman: q\n\nAssistant: b", None])
    assert res.ok["__row"].to_list() == [1]
    assert res.rejected["__row"].to_list() == [0, 2]
