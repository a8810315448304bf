"""preference_to_kto: preference pairs -> KTO unpaired examples."""

from __future__ import annotations

import polars as pl

from curate.convert import get_converter
from curate.convert.preference import judge_expr, preference_frame
from schemas.kinds import MESSAGES, Kind
from schemas.validate import check_rules

conv = get_converter("preference_to_kto")


def pairs(*rows: tuple[int, str, str, str]) -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "__row": pl.Series([r[0] for r in rows], dtype=pl.Int64),
            "prompt": pl.Series([[{"role": "user", "content": r[1]}] for r in rows], dtype=MESSAGES),
            "chosen": pl.Series([[{"role": "assistant", "content": r[2]}] for r in rows], dtype=MESSAGES),
            "rejected": pl.Series([[{"role": "assistant", "content": r[3]}] for r in rows], dtype=MESSAGES),
        }
    )
    return preference_frame(df.with_columns(judge_expr("ai", model="j").alias("judge"), pl.lit(1.0).alias("margin")))


def test_each_pair_fans_out_to_two_labelled_rows(h) -> None:
    df = pairs((3, "q1", "good1", "bad1"), (7, "你好", "👍 好", "👎 坏"))
    assert conv.input is Kind.PREFERENCE and conv.output is Kind.KTO
    res = conv(df)
    h.accounted(df, res, Kind.KTO)
    assert res.ok.columns == ["__row", "prompt", "completion", "label"]
    rows = [(r, p[0]["content"], c[0]["content"], lab) for r, p, c, lab in res.ok.rows()]
    assert rows == [
        (3, "q1", "good1", True),
        (3, "q1", "bad1", False),
        (7, "你好", "👍 好", True),
        (7, "你好", "👎 坏", False),
    ]
    assert check_rules(res.ok, Kind.KTO, max_chars=100_000).null_count() == 4


def test_multi_turn_prompts_are_kept_whole(h) -> None:
    prompt = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hey"},
        {"role": "user", "content": "bye"},
    ]
    df = pairs((0, "x", "ciao", "no")).with_columns(pl.Series("prompt", [prompt], dtype=MESSAGES))
    res = conv(df)
    assert res.ok["prompt"].to_list() == [prompt, prompt]


def test_empty_input(h) -> None:
    res = conv(pairs((0, "q", "a", "b")).clear())
    assert res.ok.height == 0 and res.rejected.height == 0
    assert res.ok.schema["completion"] == MESSAGES and res.ok.schema["label"] == pl.Boolean
