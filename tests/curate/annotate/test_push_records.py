"""Record ids, display order, suggestions and validation of pushed records (no server needed)."""

from __future__ import annotations

import polars as pl
import pytest

from curate.annotate.push import PushError, _item, candidates


def msg(role: str, text: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


def prefs(chosen: list[str], rejected: list[str], **extra) -> pl.DataFrame:
    n = len(chosen)
    return pl.DataFrame(
        {
            "prompt": [msg("user", f"Question {i}?") for i in range(n)],
            "chosen": [msg("assistant", c) for c in chosen],
            "rejected": [msg("assistant", r) for r in rejected],
            **extra,
        }
    )


def test_record_ids_derive_from_content_only() -> None:
    a = candidates(prefs(["Yes.", "Sure."], ["No.", "Nope."]), "d@1")
    b = candidates(prefs(["Yes. ", "Sure."], ["No.", "Nope."]), "d@2")  # whitespace and version do not matter
    assert a["record_id"].to_list() == b["record_id"].to_list()
    assert a["record_id"].n_unique() == 2 and all(len(i) == 32 for i in a["record_id"])
    swapped = candidates(prefs(["No.", "Sure."], ["Yes.", "Nope."]))  # same prompt, same response set
    assert swapped["record_id"][0] == a["record_id"][0]
    other = candidates(prefs(["Yes!", "Sure."], ["No.", "Nope."]))
    assert other["record_id"][0] != a["record_id"][0]


def test_display_order_is_shuffled_deterministically() -> None:
    df = prefs([f"good {i}" for i in range(40)], [f"bad {i}" for i in range(40)])
    c = candidates(df)
    first_is_good = c["responses"].list.first().str.starts_with("good")
    assert 5 < first_is_good.sum() < 35  # not always the chosen one first
    assert candidates(df)["responses"].to_list() == c["responses"].to_list()


def test_suggestions_only_from_ai_or_scores() -> None:
    judge = [
        {"kind": "ai", "model": "gpt-judge", "annotators": []},
        {"kind": "dataset", "model": None, "annotators": []},
        {"kind": "human", "model": None, "annotators": ["x"]},
    ]
    df = prefs(
        ["g0", "g1", "g2"],
        ["b0", "b1", "b2"],
        score_chosen=[None, None, 4.0],
        score_rejected=[None, None, 1.0],
        judge=judge,
    )
    c = candidates(df)
    good_rank = [
        ranks[resp.index(f"g{i}")] if ranks is not None else None
        for i, (resp, ranks) in enumerate(zip(c["responses"].to_list(), c["suggested_ranks"].to_list(), strict=True))
    ]
    assert good_rank == [1, None, 1]
    assert c["agent"].to_list() == ["gpt-judge", None, "model-scores"]
    item = _item(c.row(0, named=True), 2, {"ranking": "q1", "preferred": "q2"}, suggestions=True)
    ranking = next(s for s in item["suggestions"] if s["question_id"] == "q1")["value"]
    assert sorted(v["rank"] for v in ranking) == [1, 2] and all(set(v) == {"value", "rank"} for v in ranking)
    assert "suggestions" not in _item(c.row(1, named=True), 2, {"ranking": "q1"}, suggestions=True)


def test_n_candidates_and_bad_input() -> None:
    df = pl.DataFrame({"prompt": [msg("user", "Q")], "responses": [["a", "b", "c"]], "scores": [[0.1, 0.9, 0.5]]})
    c = candidates(df)
    assert c["responses"].list.len().item() == 3
    best = c["responses"].to_list()[0][c["suggested_ranks"].to_list()[0].index(1)]
    assert best == "b"
    with pytest.raises(PushError, match="between 2 and 3"):
        candidates(pl.DataFrame({"prompt": [msg("user", "Q")] * 2, "responses": [["a", "b"], ["a", "b", "c"]]}))
    with pytest.raises(PushError, match="2 to 8"):
        candidates(pl.DataFrame({"prompt": [msg("user", "Q")], "responses": [["only one"]]}))
    with pytest.raises(PushError, match="prompt, chosen"):
        candidates(pl.DataFrame({"text": ["x"]}))
