"""SFT conversations -> plain text through a chat template (for language-modeling trainers).

``chatml`` is rendered with polars expressions; ``tokenizer`` applies a local tokenizer's own chat
template (``transformers``, imported only when used) once per row.

Examples (recipe snippets; it is chained after a converter that gives conversations):
    convert: [alpaca_to_messages, messages_to_text]       # ChatML: <|im_start|>user\\nhi<|im_end|>\\n...
    convert: [sharegpt_to_messages, messages_to_text]
    chain_options: [{template: tokenizer, tokenizer: models/my-tokenizer}]
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, model_validator

from curate.convert.registry import ROW, ConvertResult, converter
from schemas.kinds import Kind

IM_START, IM_END = "<|im_start|>", "<|im_end|>"


def render_chatml(messages: pl.Expr, add_generation_prompt: bool = False) -> pl.Expr:
    """ChatML text of a message-list expression; null when the list, or any role or content in it, is null.

    Example:
        >>> df = pl.DataFrame({"m": [[{"role": "user", "content": "hi"}]]})
        >>> df.select(render_chatml(pl.col("m"))).item()
        '<|im_start|>user\\nhi<|im_end|>\\n'
    """
    role, content = pl.element().struct.field("role"), pl.element().struct.field("content")
    parts = messages.list.eval(pl.lit(IM_START) + role + pl.lit("\n") + content + pl.lit(f"{IM_END}\n"))
    text = parts.list.join("")
    if add_generation_prompt:
        text = text + pl.lit(f"{IM_START}assistant\n")
    has_null = parts.list.eval(pl.element().is_null()).list.any()
    return pl.when(messages.is_null() | has_null).then(pl.lit(None, dtype=pl.String)).otherwise(text)


class RenderOptions(BaseModel):
    """``template``: ``chatml`` or ``tokenizer`` (the chat template of the tokenizer saved at ``tokenizer``,
    a local directory; nothing is downloaded). ``add_generation_prompt``: end with an open assistant turn."""

    model_config = ConfigDict(extra="forbid")
    template: Literal["chatml", "tokenizer"] = "chatml"
    tokenizer: str | None = None
    add_generation_prompt: bool = False

    @model_validator(mode="after")
    def _tokenizer_path(self) -> RenderOptions:
        if self.template == "tokenizer" and not self.tokenizer:
            raise ValueError("template: tokenizer needs `tokenizer: <local directory with tokenizer files>`")
        if self.template == "chatml" and self.tokenizer:
            raise ValueError("`tokenizer` is only used with `template: tokenizer`; remove it or set the template")
        return self


@lru_cache(maxsize=4)
def load_tokenizer(path: str) -> Any:
    """A tokenizer from a local directory (never a hub download); cached per path."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"tokenizer directory {path!r} does not exist (a local path is required)")
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("template: tokenizer needs transformers: pip install transformers") from exc
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if not getattr(tok, "chat_template", None):
        raise ValueError(f"tokenizer at {path!r} has no chat_template; use template: chatml or add one")
    return tok


@converter(
    "messages_to_text",
    input=Kind.SFT,
    output=Kind.TEXT,
    summary="Conversations -> text through ChatML or a local tokenizer's chat template",
    options=RenderOptions,
    example="convert: [alpaca_to_messages, messages_to_text]\nchain_options: [{template: chatml}]",
)
def messages_to_text(df: pl.DataFrame, opts: RenderOptions) -> ConvertResult:
    """``[{user: "hi"}, {assistant: "hello"}]`` ->
    ``"<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\nhello<|im_end|>\\n"``."""
    if opts.template == "chatml":
        out = df.select(ROW, render_chatml(pl.col("messages"), opts.add_generation_prompt).alias("text"))
        return ConvertResult.split(out, pl.when(pl.col("text").is_null()).then(pl.lit(_NULL_REASON)), ["text"])
    assert opts.tokenizer is not None  # checked by RenderOptions
    tok = load_tokenizer(opts.tokenizer)
    texts: list[str | None] = []
    reasons: list[str | None] = []
    for msgs in df["messages"].to_list():
        if msgs is None or any(m is None or m["role"] is None or m["content"] is None for m in msgs):
            texts.append(None)
            reasons.append(_NULL_REASON)
            continue
        try:
            rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=opts.add_generation_prompt)
        except Exception as exc:  # a template may refuse a conversation (e.g. no system role): reject the row
            texts.append(None)
            reasons.append(f"template_error: {type(exc).__name__}: {exc}")
            continue
        texts.append(rendered)
        reasons.append(None)
    out = df.select(ROW).with_columns(pl.Series("text", texts, pl.String), pl.Series("__reason", reasons, pl.String))
    return ConvertResult.split(out, pl.col("__reason"), ["text"])


_NULL_REASON = "empty_field: messages is null or holds a null role/content"
