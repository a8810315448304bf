"""The preference pass-through converter: conversations or strings in, contract preference records out."""

from __future__ import annotations

import polars as pl

from curate.convert import get_converter
from schemas.kinds import JUDGE


def test_strings_and_conversations_become_messages_and_scores_survive() -> None:
    conv = [{"role": "user", "content": "Hi?"}]
    df = pl.DataFrame(
        {
            "__row": [0, 1, 2],
            "prompt": [conv, [{"role": "user", "content": "2+2?"}], [{"role": "narrator", "content": "x"}]],
            "chosen": [[{"role": "assistant", "content": "Hello!"}], [{"role": "assistant", "content": "4"}], []],
            "rejected": [[{"role": "assistant", "content": "Go."}], [{"role": "assistant", "content": "5"}], []],
            "score_chosen": [0.9, None, None],
            "judge": [{"kind": "ai", "model": "m", "annotators": None}] * 3,
        },
        schema_overrides={"judge": JUDGE},
    )
    res = get_converter("preference").fn(df, None)
    assert res.ok["__row"].to_list() == [0, 1]
    assert res.ok["prompt"][0].to_list() == conv and res.ok["score_chosen"].to_list() == [0.9, None]
    assert res.ok["judge"].struct.field("kind").to_list() == ["ai", "ai"]
    assert res.rejected["reason"].to_list() == ["bad_role: prompt[0].role='narrator' is not a known role"]
    plain = pl.DataFrame({"__row": [0], "prompt": ["2+2?"], "chosen": ["4"], "rejected": ["5"]})
    out = get_converter("preference").fn(plain, None).ok
    assert out["prompt"][0].to_list() == [{"role": "user", "content": "2+2?"}]
    assert out["rejected"][0].to_list() == [{"role": "assistant", "content": "5"}]
