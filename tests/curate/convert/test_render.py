"""messages_to_text and render_chatml: conversations -> chat-template text."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from curate.convert import get_converter
from curate.convert.render import render_chatml
from schemas.kinds import MESSAGES, Kind
from schemas.validate import check_rules

conv = get_converter("messages_to_text")

CHATML_JINJA = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
NO_SYSTEM_JINJA = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
)


def sft(h, conversations: list[list[dict[str, str]] | None]) -> pl.DataFrame:
    return h.frame(messages=pl.Series(conversations, dtype=MESSAGES))


CONV = [
    {"role": "system", "content": "Sé breve."},
    {"role": "user", "content": "2+2? 🤔"},
    {"role": "assistant", "content": "٤ (four)"},
]


def test_chatml(h) -> None:
    df = sft(h, [CONV])
    res = conv(df)
    h.accounted(df, res, Kind.TEXT)
    assert res.ok["text"].item() == (
        "<|im_start|>system\nSé breve.<|im_end|>\n"
        "<|im_start|>user\n2+2? 🤔<|im_end|>\n"
        "<|im_start|>assistant\n٤ (four)<|im_end|>\n"
    )
    assert check_rules(res.ok, Kind.TEXT, max_chars=100_000).item() is None


def test_chatml_generation_prompt(h) -> None:
    res = conv(sft(h, [CONV[:2]]), {"add_generation_prompt": True})
    assert res.ok["text"].item().endswith("2+2? 🤔<|im_end|>\n<|im_start|>assistant\n")


def test_nulls_are_rejected_not_rendered(h) -> None:
    df = h.frame(messages=pl.Series([CONV, None, [{"role": "user", "content": None}]], dtype=MESSAGES))
    res = conv(df)
    h.accounted(df, res, Kind.TEXT)
    assert res.ok["__row"].to_list() == [0]
    assert res.rejected["reason"].to_list() == ["empty_field: messages is null or holds a null role/content"] * 2


def test_render_chatml_is_a_plain_expression() -> None:
    df = pl.DataFrame({"m": pl.Series([CONV[1:], []], dtype=MESSAGES)})
    out = df.select(render_chatml(pl.col("m")).alias("t"), render_chatml(pl.col("m"), True).alias("g"))
    assert out["t"].to_list() == [
        "<|im_start|>user\n2+2? 🤔<|im_end|>\n<|im_start|>assistant\n٤ (four)<|im_end|>\n",
        "",
    ]
    assert out["g"].to_list()[1] == "<|im_start|>assistant\n"


def test_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="tokenizer"):
        conv.options.model_validate({"template": "tokenizer"})
    with pytest.raises(ValidationError, match="only used with"):
        conv.options.model_validate({"tokenizer": "some/dir"})
    with pytest.raises(ValidationError):
        conv.options.model_validate({"template": "llama"})


def _save_tokenizer(directory: Path, template: str) -> str:
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0, "hi": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[UNK]")
    fast.chat_template = template
    fast.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="module")
def tokenizer_dirs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tokenizers")
    return {
        "chatml": _save_tokenizer(root / "chatml", CHATML_JINJA),
        "no_system": _save_tokenizer(root / "no_system", NO_SYSTEM_JINJA),
    }


def test_tokenizer_template_matches_chatml(h, tokenizer_dirs) -> None:
    df = sft(h, [CONV, CONV[1:]])
    for gen in (False, True):
        by_tok = conv(
            df, {"template": "tokenizer", "tokenizer": tokenizer_dirs["chatml"], "add_generation_prompt": gen}
        )
        by_expr = conv(df, {"add_generation_prompt": gen})
        h.accounted(df, by_tok, Kind.TEXT)
        assert by_tok.ok.equals(by_expr.ok)


def test_tokenizer_template_errors_reject_the_row(h, tokenizer_dirs) -> None:
    df = sft(h, [CONV, CONV[1:], None])
    res = conv(df, {"template": "tokenizer", "tokenizer": tokenizer_dirs["no_system"]})
    h.accounted(df, res, Kind.TEXT)
    assert res.ok.rows() == [(1, "[user] 2+2? 🤔\n[assistant] ٤ (four)\n")]
    reasons = dict(res.rejected.rows())
    assert reasons[0].startswith("template_error: ") and "System role not supported" in reasons[0]
    assert reasons[2].startswith("empty_field: ")


def test_tokenizer_must_be_a_local_directory(h, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="local path"):
        conv(sft(h, [CONV]), {"template": "tokenizer", "tokenizer": str(tmp_path / "missing")})
