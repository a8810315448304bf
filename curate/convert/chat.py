"""Instruction and chat conversions: Alpaca, ShareGPT and OpenAI-style messages, plain text.

Examples (recipe snippets):
    convert: alpaca_to_messages            # {instruction, input, output} -> messages
    convert: sharegpt_to_messages          # {conversations: [{from, value}]} -> messages
    convert: openai_messages               # {messages: [{role, content}]} -> messages (validated)
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict

from curate.convert.messages import messages_column, messages_series, normalize_turns
from curate.convert.registry import ROW, ConvertResult, InputField, converter
from schemas.kinds import Kind


class AlpacaOptions(BaseModel):
    """``system``: a system prompt for every row (a ``system`` column, when mapped, wins);
    ``joiner``: text placed between instruction and a non-empty input."""

    model_config = ConfigDict(extra="forbid")
    system: str | None = None
    joiner: str = "\n\n"


_ALPACA_FIELDS = (
    InputField("instruction", "str", doc="the task"),
    InputField("input", "str", required=False, doc="optional context; empty or missing means none"),
    InputField("output", "str", doc="the reference answer"),
)


@converter(
    "alpaca_to_messages",
    input=None,
    output=Kind.SFT,
    summary="Alpaca {instruction, input, output} -> a user/assistant conversation",
    fields=(*_ALPACA_FIELDS, InputField("system", "str", required=False, doc="per-row system prompt")),
    options=AlpacaOptions,
    example="convert: alpaca_to_messages\ncolumns: {instruction: prompt, output: response}",
)
def alpaca_to_messages(df: pl.DataFrame, opts: AlpacaOptions) -> ConvertResult:
    """``{"instruction": "Add", "input": "2+2", "output": "4"}`` ->
    ``[{user: "Add\\n\\n2+2"}, {assistant: "4"}]``."""
    inp = pl.col("input").fill_null("") if "input" in df.columns else pl.lit("")
    has_input = inp.str.strip_chars().str.len_chars() > 0
    user = pl.when(has_input).then(pl.col("instruction") + opts.joiner + inp).otherwise(pl.col("instruction"))
    system = pl.col("system") if "system" in df.columns else pl.lit(opts.system, dtype=pl.String)
    if "system" in df.columns and opts.system is not None:
        system = system.fill_null(opts.system)
    has_system = system.is_not_null() & (system.str.strip_chars().str.len_chars() > 0)
    turns = [("system", system, has_system), ("user", user, None), ("assistant", pl.col("output"), None)]
    out = df.select(ROW).with_columns(messages_column(df, turns))
    return ConvertResult(out)


@converter(
    "alpaca",
    input=None,
    output=Kind.ALPACA,
    summary="Alpaca records kept as Alpaca (missing input becomes empty)",
    fields=_ALPACA_FIELDS,
    example="convert: alpaca",
)
def alpaca(df: pl.DataFrame, _opts: BaseModel) -> ConvertResult:
    inp = pl.col("input").fill_null("") if "input" in df.columns else pl.lit("")
    return ConvertResult(df.select(ROW, "instruction", inp.alias("input"), "output"))


@converter(
    "text",
    input=None,
    output=Kind.TEXT,
    summary="A text field kept as a raw-text record (plain-text files give it as `text`)",
    fields=(InputField("text", "str", doc="the document"),),
    example="format: text\nconvert: text",
)
def text(df: pl.DataFrame, _opts: BaseModel) -> ConvertResult:
    return ConvertResult(df.select(ROW, "text"))


SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
    "tool": "tool",
    "observation": "tool",
    "function_call": "assistant",
}


class ShareGPTOptions(BaseModel):
    """Keys inside each turn and the role names to map (merged over the common defaults)."""

    model_config = ConfigDict(extra="forbid")
    role_key: str = "from"
    content_key: str = "value"
    roles: dict[str, str] = {}


def _turns_to_messages(
    df: pl.DataFrame, field: str, role_key: str, content_key: str, roles: dict[str, str]
) -> ConvertResult:
    msgs, reasons = normalize_turns(
        df[field].to_list(), role_key=role_key, content_key=content_key, role_map=roles, field=field
    )
    out = df.select(ROW).with_columns(messages_series("messages", msgs), pl.Series("__reason", reasons, pl.String))
    return ConvertResult.split(out, pl.col("__reason"), ["messages"])


@converter(
    "sharegpt_to_messages",
    input=None,
    output=Kind.SFT,
    summary="ShareGPT {conversations: [{from, value}]} -> messages (human/gpt/system/tool roles mapped)",
    fields=(InputField("conversations", "list", doc="list of {from, value} turns"),),
    options=ShareGPTOptions,
    example="convert: sharegpt_to_messages\noptions: {roles: {bot: assistant}}",
)
def sharegpt_to_messages(df: pl.DataFrame, opts: ShareGPTOptions) -> ConvertResult:
    return _turns_to_messages(df, "conversations", opts.role_key, opts.content_key, SHAREGPT_ROLES | opts.roles)


OPENAI_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}


class OpenAIOptions(BaseModel):
    """Extra role names to map (merged over system/developer/user/assistant/tool/function)."""

    model_config = ConfigDict(extra="forbid")
    roles: dict[str, str] = {}


@converter(
    "openai_messages",
    input=None,
    output=Kind.SFT,
    summary="OpenAI-style {messages: [{role, content}]} -> messages (text content parts joined)",
    fields=(InputField("messages", "list", doc="list of {role, content}; content may be text parts"),),
    options=OpenAIOptions,
    example="convert: openai_messages\ncolumns: {messages: conversation}",
)
def openai_messages(df: pl.DataFrame, opts: OpenAIOptions) -> ConvertResult:
    return _turns_to_messages(df, "messages", "role", "content", OPENAI_ROLES | opts.roles)
