"""Prompts from curated records of each input kind."""

from __future__ import annotations

import polars as pl
import pytest

from curate.feedback.inputs import prompts_of
from schemas.kinds import Kind, polars_schema

SRC = {"name": "s", "uri": "f.jsonl", "sha256": "x", "row": 1}


def _msgs(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in pairs]


def _frame(kind: Kind, rows: list[dict]) -> pl.DataFrame:
    schema = polars_schema(kind)
    full = [{k: r.get(k) for k in schema} | {"id": f"r{i}", "source": SRC} for i, r in enumerate(rows)]
    return pl.DataFrame(full, schema=schema)


def test_sft_prompt_is_up_to_the_last_user_turn() -> None:
    df = _frame(
        Kind.SFT,
        [
            {"messages": _msgs(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "2+2?"))},
            {"messages": _msgs(("user", "Capital of France?"), ("assistant", "Paris."))},
            {"messages": _msgs(("system", "Only a system turn."))},
        ],
    )
    a, b, c = prompts_of(df, Kind.SFT)
    assert a.messages[-1] == ("user", "2+2?") and len(a.messages) == 4 and a.responses == ()
    assert b.messages == (("user", "Capital of France?"),) and b.responses == ("Paris.",)
    assert c.reason == "no_user_turn" and c.source == SRC


def test_alpaca_text_and_preference() -> None:
    (al,) = prompts_of(
        _frame(Kind.ALPACA, [{"instruction": "Translate", "input": "chat", "output": "cat"}]), Kind.ALPACA
    )
    assert al.messages == (("user", "Translate\n\nchat"),) and al.responses == ("cat",)
    t_ok, t_empty = prompts_of(_frame(Kind.TEXT, [{"text": "Write a haiku."}, {"text": "  "}]), Kind.TEXT)
    assert t_ok.messages == (("user", "Write a haiku."),) and t_empty.reason == "empty_prompt"
    pref = _frame(
        Kind.PREFERENCE,
        [
            {
                "prompt": _msgs(("user", "Q?")),
                "chosen": _msgs(("assistant", "good")),
                "rejected": _msgs(("assistant", "bad")),
            }
        ],
    )
    (p,) = prompts_of(pref, Kind.PREFERENCE)
    assert p.messages == (("user", "Q?"),) and p.responses == ("good", "bad")


def test_kto_is_refused() -> None:
    with pytest.raises(ValueError, match="input_kind kto"):
        prompts_of(pl.DataFrame(schema=polars_schema(Kind.KTO)), Kind.KTO)
