from __future__ import annotations

import polars as pl

from schemas.kinds import MESSAGES, Kind
from schemas.validate import check_rules


def _msgs(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in pairs]


def test_sft_rules() -> None:
    rows = [
        _msgs(("system", "be brief"), ("user", "hi"), ("assistant", "hello")),
        _msgs(("user", "hi")),
        _msgs(("user", "hi"), ("system", "late"), ("assistant", "x")),
        _msgs(("assistant", "x")),
        _msgs(("user", "  "), ("assistant", "x")),
        _msgs(("user", "x" * 11), ("assistant", "y")),
    ]
    df = pl.DataFrame({"messages": rows}, schema={"messages": MESSAGES})
    got = check_rules(df, Kind.SFT, max_chars=10).to_list()
    assert got[0] is None
    assert got[1].startswith("bad_turns: messages must end with an assistant")
    assert got[2].startswith("misplaced_system")
    assert got[3].startswith("bad_turns: messages has no user")
    assert got[4].startswith("empty_content")
    assert got[5].startswith("too_long")


def test_preference_rules() -> None:
    p, a, b = _msgs(("user", "q")), _msgs(("assistant", "a")), _msgs(("assistant", "b"))
    df = pl.DataFrame(
        {"prompt": [p, p, _msgs(("assistant", "q"))], "chosen": [a, a, a], "rejected": [b, a, b]},
        schema={"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES},
    ).with_columns(pl.lit(None, dtype=pl.Struct({"kind": pl.String})).alias("judge"))
    got = check_rules(df, Kind.PREFERENCE, max_chars=100).to_list()
    assert got == [None, "identical_pair: chosen equals rejected", "bad_turns: prompt must end with a user message"]


def test_alpaca_allows_empty_input_but_not_empty_output() -> None:
    df = pl.DataFrame({"instruction": ["a", "a"], "input": ["", ""], "output": ["b", ""]})
    assert check_rules(df, Kind.ALPACA, max_chars=100).to_list() == [None, "empty_field: output is empty"]
