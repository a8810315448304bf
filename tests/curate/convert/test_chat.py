"""The instruction/chat converters in curate/convert/chat.py."""

from __future__ import annotations

import polars as pl
import pytest
from pydantic import ValidationError

from curate.convert import get_converter
from schemas.kinds import Kind
from schemas.validate import check_rules


def msgs(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in pairs]


def test_alpaca_to_messages_without_input(h) -> None:
    df = h.frame(instruction=["Name a color", "Say hi"], output=["Blue", "Hi"])
    res = get_converter("alpaca_to_messages")(df)
    h.accounted(df, res, Kind.SFT)
    assert res.ok["messages"].to_list() == [
        msgs(("user", "Name a color"), ("assistant", "Blue")),
        msgs(("user", "Say hi"), ("assistant", "Hi")),
    ]
    assert check_rules(res.ok, Kind.SFT, max_chars=100_000).null_count() == 2


def test_alpaca_to_messages_with_input_and_joiner(h) -> None:
    df = h.frame(instruction=["Add", "Add", "Add"], input=["2+2", "  ", None], output=["4", "4", "4"])
    res = get_converter("alpaca_to_messages")(df)
    users = [m[0]["content"] for m in res.ok["messages"].to_list()]
    assert users == ["Add\n\n2+2", "Add", "Add"]  # blank and null inputs add nothing
    res = get_converter("alpaca_to_messages")(df, {"joiner": "\nInput: "})
    assert res.ok["messages"].to_list()[0][0]["content"] == "Add\nInput: 2+2"


def test_alpaca_to_messages_system_option_and_column(h) -> None:
    df = h.frame(instruction=["q1", "q2", "q3"], output=["a1", "a2", "a3"], system=["Be brief.", None, "  "])
    res = get_converter("alpaca_to_messages")(df, {"system": "Default."})
    firsts = [m[0] for m in res.ok["messages"].to_list()]
    # the column wins, the option fills nulls, a blank system prompt adds no message
    assert firsts == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Default."},
        {"role": "user", "content": "q3"},
    ]
    no_col = get_converter("alpaca_to_messages")(df.drop("system"), {"system": "Default."})
    assert all(m[0] == {"role": "system", "content": "Default."} for m in no_col.ok["messages"].to_list())
    assert check_rules(res.ok, Kind.SFT, max_chars=100_000).null_count() == 3


def test_alpaca_options_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        get_converter("alpaca_to_messages")(pl.DataFrame(), {"sytem": "typo"})


def test_alpaca_keeps_alpaca_and_fills_input(h) -> None:
    df = h.frame(instruction=["Translate", "Sum"], input=["chat → cat 🐱", None], output=["猫", "3"])
    res = get_converter("alpaca")(df)
    h.accounted(df, res, Kind.ALPACA)
    assert res.ok.drop("__row").rows() == [("Translate", "chat → cat 🐱", "猫"), ("Sum", "", "3")]
    no_input = get_converter("alpaca")(df.drop("input"))
    assert no_input.ok["input"].to_list() == ["", ""]
    assert check_rules(res.ok, Kind.ALPACA, max_chars=100_000).null_count() == 2


def test_text_passes_documents_through(h) -> None:
    df = h.frame(text=["שלום עולם", "plain"])
    res = get_converter("text")(df)
    h.accounted(df, res, Kind.TEXT)
    assert res.ok["text"].to_list() == ["שלום עולם", "plain"]


def test_sharegpt_maps_roles(h) -> None:
    conv = [
        {"from": "system", "value": "Be kind."},
        {"from": "human", "value": "你好"},
        {"from": "gpt", "value": "Hello 👋"},
        {"from": "observation", "value": "tool output"},
        {"from": "chatgpt", "value": "done"},
    ]
    df = h.frame(conversations=h.obj("conversations", [conv]))
    res = get_converter("sharegpt_to_messages")(df)
    h.accounted(df, res, Kind.SFT)
    assert res.ok["messages"].to_list() == [
        msgs(
            ("system", "Be kind."),
            ("user", "你好"),
            ("assistant", "Hello 👋"),
            ("tool", "tool output"),
            ("assistant", "done"),
        )
    ]
    assert check_rules(res.ok, Kind.SFT, max_chars=100_000).null_count() == 1


def test_sharegpt_rejects_bad_roles_and_types(h) -> None:
    good = [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]
    values = [
        good,
        [{"from": "narrator", "value": "x"}],
        "not a list",
        ["not a dict"],
        [{"from": "human", "value": 3}],
        None,
    ]
    df = h.frame(conversations=h.obj("conversations", values))
    res = get_converter("sharegpt_to_messages")(df)
    h.accounted(df, res, Kind.SFT)
    assert res.ok["__row"].to_list() == [0]
    reasons = dict(res.rejected.rows())
    assert reasons[1].startswith("bad_role: conversations[0].from='narrator'")
    assert reasons[2] == "wrong_type: conversations must be a list of turns"
    assert reasons[3] == "wrong_type: conversations[0] is not an object"
    assert reasons[4] == "wrong_type: conversations[0].value is missing or not text"
    assert reasons[5] == "wrong_type: conversations must be a list of turns"


def test_sharegpt_custom_keys_roles_and_content_parts(h) -> None:
    conv = [{"speaker": "me", "text": [{"type": "text", "text": "a"}, "b"]}, {"speaker": "bot", "text": "c"}]
    df = h.frame(conversations=h.obj("conversations", [conv]))
    opts = {"role_key": "speaker", "content_key": "text", "roles": {"me": "user", "bot": "assistant"}}
    res = get_converter("sharegpt_to_messages")(df, opts)
    assert res.ok["messages"].to_list() == [msgs(("user", "a\nb"), ("assistant", "c"))]


def test_openai_messages_text_parts_and_roles(h) -> None:
    rows = [
        [
            {"role": "developer", "content": "Rules."},
            {"role": "user", "content": [{"type": "text", "text": "Look:"}, {"type": "input_text", "text": "مرحبا"}]},
            {"role": "assistant", "content": "ok"},
        ],
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {}}],
            },
            {"role": "assistant", "content": "a cat"},
        ],
        [{"role": "user", "content": None}],
        [{"role": "robot", "content": "x"}],
    ]
    df = h.frame(messages=h.obj("messages", rows))
    res = get_converter("openai_messages")(df)
    h.accounted(df, res, Kind.SFT)
    assert res.ok["messages"].to_list() == [msgs(("system", "Rules."), ("user", "Look:\nمرحبا"), ("assistant", "ok"))]
    reasons = dict(res.rejected.rows())
    assert reasons[1] == "wrong_type: messages[0].content is missing or not text"  # the image part
    assert reasons[2] == "wrong_type: messages[0].content is missing or not text"
    assert reasons[3].startswith("bad_role: messages[0].role='robot'")
    custom = get_converter("openai_messages")(df.slice(3, 1), {"roles": {"robot": "assistant"}})
    assert custom.ok["messages"].to_list() == [msgs(("assistant", "x"))]
