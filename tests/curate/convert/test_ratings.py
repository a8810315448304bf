"""ratings_to_preference: a prompt with rated completions -> preference pairs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from curate.convert import ConvertResult, get_converter
from schemas.kinds import Kind
from schemas.validate import check_rules

conv = get_converter("ratings_to_preference")


def comps(*items: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"text": t, "rating": r} for t, r in items]


def run(h: Any, completions: list[Any], prompts: list[str] | None = None, **opts: Any) -> ConvertResult:
    df = h.frame(
        prompt=prompts or ["Write a haiku ✍️"] * len(completions), completions=h.obj("completions", completions)
    )
    res = conv(df, opts)
    h.accounted(df, res, Kind.PREFERENCE)
    return res


def texts(res: ConvertResult) -> list[tuple[int, str, str, float]]:
    cols = res.ok.select("__row", "chosen", "rejected", "margin").rows()
    return [(r, c[0]["content"], j[0]["content"], m) for r, c, j, m in cols]


def test_best_worst(h) -> None:
    res = run(h, [comps(("ok", 3), ("great", 5), ("bad", 1), ("fine", 4))])
    row = res.ok.row(0, named=True)
    assert row["prompt"] == [{"role": "user", "content": "Write a haiku ✍️"}]
    assert row["chosen"] == [{"role": "assistant", "content": "great"}]
    assert row["rejected"] == [{"role": "assistant", "content": "bad"}]
    assert (row["score_chosen"], row["score_rejected"], row["margin"]) == (5.0, 1.0, 4.0)
    assert row["judge"] == {"kind": "ai", "model": None, "annotators": None}
    assert check_rules(res.ok, Kind.PREFERENCE, max_chars=100_000).item() is None


def test_ties_at_the_top_or_bottom_pick_the_earlier_completion(h) -> None:
    res = run(h, [comps(("a", 2), ("b", 5), ("c", 5), ("d", 2))])
    assert texts(res) == [(0, "b", "a", 3.0)]


def test_all_equal_is_a_tie(h) -> None:
    res = run(h, [comps(("a", 3), ("b", 3.0))])
    assert res.rejected.rows() == [(0, "tie: every completion has the same rating")]


def test_all_pairs_with_min_margin(h) -> None:
    row = comps(("a", 1), ("b", 2), ("c", 4), ("d", 4))
    everything = run(h, [row], mode="all_pairs")
    assert sorted(texts(everything)) == sorted(
        [(0, "b", "a", 1.0), (0, "c", "a", 3.0), (0, "d", "a", 3.0), (0, "c", "b", 2.0), (0, "d", "b", 2.0)]
    )
    wide = run(h, [row], mode="all_pairs", min_margin=2.5)
    assert sorted(texts(wide)) == [(0, "c", "a", 3.0), (0, "d", "a", 3.0)]
    none = run(h, [row], mode="all_pairs", min_margin=5)
    assert none.rejected.rows() == [(0, "no_pairs: no two ratings differ by at least 5.0")]
    assert run(h, [row], min_margin=3.5).ok.height == 0  # best_worst honours min_margin too


def test_parallel_responses_and_ratings(h) -> None:
    df = h.frame(
        prompt=["q", "q", "q", "q"],
        responses=h.obj("responses", [["x", "y", "z"], ["x", "y"], None, ["x", 3]]),
        ratings=h.obj("ratings", [[1, 9, 5], [1], [1, 2], [1, 2]]),
    )
    res = conv(df)
    h.accounted(df, res, Kind.PREFERENCE)
    assert texts(res) == [(0, "y", "x", 8.0)]
    assert dict(res.rejected.rows()) == {
        1: "length_mismatch: 2 responses but 1 ratings",
        2: "missing_field: row has neither completions nor responses + ratings",
        3: "wrong_type: responses[1] is not text",
    }


def test_completions_win_over_parallel_lists_and_fill_gaps(h) -> None:
    df = h.frame(
        prompt=["q", "q"],
        completions=h.obj("completions", [comps(("c1", 1), ("c2", 2)), None]),
        responses=h.obj("responses", [["r1", "r2"], ["r1", "r2"]]),
        ratings=h.obj("ratings", [[9, 0], [0, 9]]),
    )
    assert texts(conv(df)) == [(0, "c2", "c1", 1.0), (1, "r2", "r1", 9.0)]


def test_unrated_items_are_skipped_and_bad_shapes_rejected(h) -> None:
    rows = [
        comps(("a", "N/A"), ("b", 2), ("c", "4.5"), ("d", None), ("e", float("nan")), ("f", True)),
        comps(("a", 1), ("b", "N/A")),
        "not a list",
        [{"text": "a", "rating": 1}, "not an object"],
        [{"rating": 1}, {"text": "b", "rating": 2}],
        [],
    ]
    res = run(h, rows)
    assert texts(res) == [(0, "c", "b", 2.5)]
    assert dict(res.rejected.rows()) == {
        1: "too_few: 1 rated completion(s), a pair needs 2",
        2: "wrong_type: completions must be a list",
        3: "wrong_type: completions[1] is not an object",
        4: "wrong_type: completions[0].text is missing or not text",
        5: "too_few: 0 rated completion(s), a pair needs 2",
    }


def test_custom_keys_and_fallback_keys(h) -> None:
    ultra = [{"response": "long", "score": 7}, {"response": "short", "score": 3}]
    assert texts(run(h, [ultra])) == [(0, "long", "short", 4.0)]
    custom = [{"output": "A", "overall": 1}, {"output": "B", "overall": 8}]
    res = run(h, [custom], text_key="output", score_key="overall", judge_kind="human", judge_model=None)
    assert texts(res) == [(0, "B", "A", 7.0)]
    assert res.ok["judge"].item()["kind"] == "human"
    # with an explicit key the defaults are not tried
    assert run(h, [ultra], text_key="output").rejected["reason"].item().startswith("wrong_type: completions[0].output")


def test_judge_model_and_unicode(h) -> None:
    rows = [comps(("مرحبا بك", 2), ("你好 👋", 8))]
    res = run(h, rows, prompts=["שלום"], judge_model="gpt-4")
    assert res.ok["judge"].item() == {"kind": "ai", "model": "gpt-4", "annotators": None}
    assert texts(res) == [(0, "你好 👋", "مرحبا بك", 6.0)]
    with pytest.raises(ValidationError):
        conv(res.ok, {"mode": "best"})
