"""alpaca_eval_to_preference: AlpacaEval pairwise annotations -> preference pairs."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import polars as pl
import pytest

from curate.convert import ConvertResult, get_converter
from schemas.kinds import Kind
from schemas.validate import check_rules

conv = get_converter("alpaca_eval_to_preference")


def run(h: Any, prefs: list[str | None], **opts: Any) -> ConvertResult:
    n = len(prefs)
    df = h.frame(
        instruction=["Name a color 🎨"] * n,
        output_1=["Blue"] * n,
        output_2=["青"] * n,
        preference=pl.Series(prefs, dtype=pl.String),
        annotator=["gpt4_judge"] * n,
    )
    res = conv(df, opts)
    h.accounted(df, res, Kind.PREFERENCE)
    return res


@pytest.mark.parametrize(
    ("pref", "winner", "margin"),
    [
        ("1", "Blue", 1.0),
        ("1.0", "Blue", 1.0),
        ("1.25", "Blue", 0.5),
        ("2", "青", 1.0),
        ("2.0", "青", 1.0),
        ("1.75", "青", 0.5),
    ],
)
def test_preference_picks_the_better_output(h, pref, winner, margin) -> None:
    row = run(h, [pref]).ok.row(0, named=True)
    loser = "青" if winner == "Blue" else "Blue"
    assert row["prompt"] == [{"role": "user", "content": "Name a color 🎨"}]
    assert row["chosen"] == [{"role": "assistant", "content": winner}]
    assert row["rejected"] == [{"role": "assistant", "content": loser}]
    assert row["margin"] == pytest.approx(margin)
    assert row["judge"] == {"kind": "ai", "model": "gpt4_judge", "annotators": None}


def test_ties_no_decisions_and_bad_values_have_distinct_codes(h) -> None:
    prefs = ["1.5", "0", "0.0", None, "", "abc", "3", "0.5", "nan", " 2 "]
    res = run(h, prefs)
    reasons = dict(res.rejected.rows())
    assert reasons == {
        0: "tie: preference 1.5 names no better output",
        1: "no_preference: preference 0 means the annotator made no decision",
        2: "no_preference: preference 0.0 means the annotator made no decision",
        3: "no_preference: preference is missing (no decision)",
        4: "no_preference: preference is missing (no decision)",
        5: "bad_preference: preference abc is not a number",
        6: "bad_preference: preference 3 is outside [1, 2]",
        7: "bad_preference: preference 0.5 is outside [1, 2]",
        8: "bad_preference: preference nan is not a number",
    }
    assert res.ok["__row"].to_list() == [9]  # surrounding spaces are fine


def test_numeric_preference_column_is_tolerated(h) -> None:
    df = h.frame(instruction=["q", "q"], output_1=["a", "a"], output_2=["b", "b"], preference=[1.0, 2.0])
    res = conv(df)
    assert [c[0]["content"] for c in res.ok["chosen"].to_list()] == ["a", "b"]


def test_judge_model_from_option_when_annotator_missing_or_null(h) -> None:
    df = h.frame(
        instruction=["q", "q"], output_1=["a", "a"], output_2=["b", "b"], preference=["1", "2"], annotator=[None, "x"]
    )
    res = conv(df, {"judge_model": "weighted_gpt4"})
    assert res.ok["judge"].struct.field("model").to_list() == ["weighted_gpt4", "x"]
    res = conv(df.drop("annotator"))
    assert res.ok["judge"].to_list() == [{"kind": "ai", "model": None, "annotators": None}] * 2


def test_human_judges_go_to_annotators(h) -> None:
    df = h.frame(instruction=["q"], output_1=["a"], output_2=["b"], preference=["1"], annotator=["worker_7"])
    res = conv(df, {"judge_kind": "human"})
    assert res.ok["judge"].item() == {"kind": "human", "model": None, "annotators": ["worker_7"]}
    assert check_rules(res.ok, Kind.PREFERENCE, max_chars=100_000).item() is None


@pytest.mark.integration
def test_real_alpaca_eval_annotations(h, datasets) -> None:
    path = datasets / "alpaca_eval_alpaca7b_vs_davinci003_gpt4_annotations.json"
    if not path.exists():
        pytest.skip(f"{path.name} not present")
    records = json.loads(path.read_bytes())
    df = h.frame(
        instruction=[r["instruction"] for r in records],
        output_1=[r["output_1"] for r in records],
        output_2=[r["output_2"] for r in records],
        # ingest reads a `scalar` field as text
        preference=pl.Series([None if r["preference"] is None else str(r["preference"]) for r in records]),
        annotator=[r["annotator"] for r in records],
    )
    res = conv(df)
    h.accounted(df, res, Kind.PREFERENCE)
    counts = Counter(str(r["preference"]) for r in records)
    decided = sum(n for p, n in counts.items() if p not in ("0", "1.5", "None"))
    assert res.ok.height == decided
    assert res.rejected.height == len(records) - decided
    assert set(res.rejected["reason"].str.extract(r"^(\w+):").to_list()) <= {"no_preference", "tie"}
    # where output_1 wins, the chosen text is output_1
    wins_1 = [i for i, r in enumerate(records) if str(r["preference"]) == "1"]
    chosen = dict(zip(res.ok["__row"].to_list(), res.ok["chosen"].to_list(), strict=True))
    assert all(chosen[i][0]["content"] == records[i]["output_1"] for i in wins_1)
    assert check_rules(res.ok, Kind.PREFERENCE, max_chars=100_000).null_count() == res.ok.height
