"""Property tests: conversions that can be undone give back their input, and every converter keeps the contract."""

from __future__ import annotations

import re

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.convert import all_converters, get_converter
from curate.convert.hh import render_transcript
from curate.convert.preference import judge_expr, preference_frame
from curate.convert.registry import REJECT_SCHEMA, ROW
from schemas.kinds import MESSAGES, content_schema

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Unicode text of any script (emoji, CJK, RTL...), without control characters or lone surrogates.
raw_text = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
words = raw_text.filter(lambda s: s.strip() == s and s.strip() != "")
# HH content cannot hold a turn marker (nothing could tell it from a real turn)
hh_text = words.filter(lambda s: re.search(r"\n\n(Human|Assistant):", s) is None)


def hh_turns(texts: list[str], first: str) -> list[dict[str, str]]:
    roles = ("user", "assistant") if first == "user" else ("assistant", "user")
    return [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)]


@st.composite
def hh_pairs(draw: st.DrawFn) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """A prompt ending on a user turn, and two completions whose first assistant turns differ."""
    n_prompt = draw(st.integers(0, 2)) * 2 + 1
    prompt = hh_turns(draw(st.lists(hh_text, min_size=n_prompt, max_size=n_prompt)), "user")
    chosen = hh_turns(draw(st.lists(hh_text, min_size=1, max_size=3)), "assistant")
    rejected = hh_turns(draw(st.lists(hh_text, min_size=1, max_size=3)), "assistant")
    if chosen[0] == rejected[0]:
        rejected[0] = {"role": "assistant", "content": rejected[0]["content"] + " (other)"}
    return prompt, chosen, rejected


def transcript(messages: list[dict[str, str]]) -> str:
    return "".join(f"\n\n{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in messages)


@SETTINGS
@given(st.lists(hh_pairs(), min_size=1, max_size=5), st.booleans())
def test_hh_transcripts_round_trip(h, rows, strip) -> None:
    chosen = [transcript(p + c) for p, c, _ in rows]
    rejected = [transcript(p + r) for p, _, r in rows]
    df = h.frame(chosen=chosen, rejected=rejected)
    res = get_converter("hh_rlhf_to_preference")(df, {"strip": strip})
    assert res.rejected.height == 0, res.rejected.rows()
    assert res.ok["prompt"].to_list() == [p for p, _, _ in rows]
    back = res.ok.select(
        render_transcript(pl.concat_list("prompt", "chosen")).alias("chosen"),
        render_transcript(pl.concat_list("prompt", "rejected")).alias("rejected"),
    )
    assert back["chosen"].to_list() == chosen
    assert back["rejected"].to_list() == rejected


@SETTINGS
@given(st.lists(st.tuples(words, words, words), min_size=1, max_size=6))
def test_preference_to_kto_regroups_to_the_pairs(h, rows) -> None:
    df = preference_frame(
        pl.DataFrame(
            {
                ROW: pl.Series(range(0, 2 * len(rows), 2), dtype=pl.Int64),
                "prompt": pl.Series([[{"role": "user", "content": p}] for p, _, _ in rows], dtype=MESSAGES),
                "chosen": pl.Series([[{"role": "assistant", "content": c}] for _, c, _ in rows], dtype=MESSAGES),
                "rejected": pl.Series([[{"role": "assistant", "content": r}] for _, _, r in rows], dtype=MESSAGES),
            }
        ).with_columns(judge_expr("human").alias("judge"))
    )
    kto = get_converter("preference_to_kto")(df).ok
    regrouped = kto.group_by(ROW, maintain_order=True).agg(
        pl.col("prompt").first(),
        pl.col("completion").filter(pl.col("label")).first().alias("chosen"),
        pl.col("completion").filter(~pl.col("label")).first().alias("rejected"),
        pl.len().alias("n"),
    )
    assert regrouped["n"].to_list() == [2] * len(rows)
    assert regrouped.drop("n").equals(df.select(ROW, "prompt", "chosen", "rejected"))


@SETTINGS
@given(st.lists(st.tuples(words, st.one_of(st.just(""), words), words), min_size=1, max_size=6))
def test_alpaca_to_messages_reads_back(h, rows) -> None:
    df = h.frame(instruction=[r[0] for r in rows], input=[r[1] for r in rows], output=[r[2] for r in rows])
    messages = get_converter("alpaca_to_messages")(df).ok["messages"].to_list()
    for (instruction, inp, output), msgs in zip(rows, messages, strict=True):
        assert [m["role"] for m in msgs] == ["user", "assistant"]
        assert msgs[0]["content"] == (f"{instruction}\n\n{inp}" if inp else instruction)
        assert msgs[1]["content"] == output


chatml_text = raw_text.filter(lambda s: "<|im_" not in s)


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(["system", "user", "assistant", "tool"]), chatml_text), min_size=1, max_size=5)
)
def test_chatml_parses_back(h, turns) -> None:
    msgs = [{"role": r, "content": c} for r, c in turns]
    text = get_converter("messages_to_text")(h.frame(messages=pl.Series([msgs], dtype=MESSAGES))).ok["text"].item()
    blocks = text.split("<|im_end|>\n")
    assert blocks[-1] == ""
    parsed = [
        dict(zip(("role", "content"), b.removeprefix("<|im_start|>").split("\n", 1), strict=True)) for b in blocks[:-1]
    ]
    assert parsed == msgs


@SETTINGS
@given(st.floats(1, 2).filter(lambda p: p != 1.5), words, words)
def test_alpaca_eval_mirrored_preference_gives_the_same_pair(h, pref, out1, out2) -> None:
    conv = get_converter("alpaca_eval_to_preference")
    df = h.frame(instruction=["q"], output_1=[out1], output_2=[out2], preference=[repr(pref)])
    mirrored = h.frame(instruction=["q"], output_1=[out2], output_2=[out1], preference=[repr(3 - pref)])
    a, b = conv(df).ok, conv(mirrored).ok
    assert a.select("chosen", "rejected").equals(b.select("chosen", "rejected"))
    assert a["margin"].item() == pytest.approx(b["margin"].item())
    assert 0 <= a["margin"].item() <= 1


@SETTINGS
@given(st.lists(st.tuples(words, st.integers(0, 10)), min_size=2, max_size=6, unique_by=lambda t: t[0]))
def test_ratings_best_worst_spans_the_rating_range(h, items) -> None:
    res = get_converter("ratings_to_preference")(
        h.frame(prompt=["q"], completions=h.obj("completions", [[{"text": t, "rating": r} for t, r in items]]))
    )
    ratings = [r for _, r in items]
    if max(ratings) == min(ratings):
        assert res.rejected["reason"].item().startswith("tie:")
        return
    row = res.ok.row(0, named=True)
    assert (row["score_chosen"], row["score_rejected"]) == (max(ratings), min(ratings))
    assert row["margin"] == max(ratings) - min(ratings)
    by_text = dict(items)
    assert by_text[row["chosen"][0]["content"]] == max(ratings)
    assert by_text[row["rejected"][0]["content"]] == min(ratings)


@pytest.mark.parametrize("name", sorted(all_converters()))
def test_every_converter_documents_itself_and_handles_an_empty_frame(name) -> None:
    conv = all_converters()[name]
    assert conv.summary and "convert:" in conv.example and name in conv.example
    assert conv.options.model_config.get("extra") == "forbid"
    if conv.input is None:
        cols = {f.name: (pl.Object if f.type in ("list", "dict", "any") else pl.String) for f in conv.fields}
    else:
        cols = dict(content_schema(conv.input))
    res = conv(pl.DataFrame(schema={ROW: pl.Int64, **cols}))
    assert res.ok.height == 0 and res.rejected.height == 0
    assert res.rejected.schema == REJECT_SCHEMA
    expected = content_schema(conv.output)
    assert {c: t for c, t in res.ok.schema.items() if c != ROW} == {c: expected[c] for c in res.ok.columns[1:]}
