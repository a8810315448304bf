from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from trl.data_utils import apply_chat_template, is_conversational

from curate.store import RefError, Store, content_hash
from curate.store.load import load
from curate.store.splits import assign_splits
from schemas.kinds import MESSAGES, Kind
from schemas.recipe import SplitSpec


def _CHATML_TOKENIZER():
    import tokenizers
    import transformers

    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[UNK]")
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return fast


def _msgs(role: str, text: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


def _sft(n: int, offset: int = 0) -> pl.DataFrame:
    rows = [_msgs("user", f"question {i}") + _msgs("assistant", f"answer {i}") for i in range(offset, offset + n)]
    return pl.DataFrame(
        {"id": [f"id{i}" for i in range(offset, offset + n)], "messages": rows},
        schema={"id": pl.String, "messages": MESSAGES},
    )


def _with_splits(df: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    return df.with_columns(assign_splits(df, kind, SplitSpec(eval=0.2)))


def test_publish_versions_parent_and_skip_unchanged(tmp_path: Path) -> None:
    st = Store(tmp_path)
    one = st.publish("chat", _with_splits(_sft(10), Kind.SFT), {"kind": "sft"})
    same = st.publish("chat", _with_splits(_sft(10), Kind.SFT), {"kind": "sft"})
    two = st.publish("chat", _with_splits(_sft(12), Kind.SFT), {"kind": "sft"})
    assert (one.version, one.created, same.version, same.created, two.version) == (1, True, 1, False, 2)
    assert two.manifest["parent_version"] == 1
    assert st.versions("chat") == [1, 2]
    assert st.read("chat@1").height == 10 and st.read("chat").height == 12
    assert st.manifest("chat@1")["content_hash"] == one.manifest["content_hash"]
    assert (tmp_path / "chat" / "manifests" / "v2.json").exists()


def test_content_hash_ignores_row_order() -> None:
    df = _with_splits(_sft(20), Kind.SFT)
    assert content_hash(df) == content_hash(df.reverse())
    assert content_hash(df) != content_hash(df.head(19))


def test_refs_errors(tmp_path: Path) -> None:
    st = Store(tmp_path)
    with pytest.raises(RefError, match="no dataset 'nope'"):
        st.resolve("nope@latest")
    st.publish("chat", _with_splits(_sft(3), Kind.SFT), {"kind": "sft"})
    with pytest.raises(RefError, match="no version 5"):
        st.resolve("chat@5")
    with pytest.raises(RefError, match="not a dataset reference"):
        st.resolve("chat@@1")


def test_split_stability_when_rows_are_added() -> None:
    small, big = _sft(500), _sft(1000)
    s_small = assign_splits(small, Kind.SFT, SplitSpec(eval=0.1))
    s_big = assign_splits(big, Kind.SFT, SplitSpec(eval=0.1))
    assert s_small.to_list() == s_big.head(500).to_list()  # no existing row moved
    assert 60 <= (s_big == "eval").sum() <= 140
    other_seed = assign_splits(big, Kind.SFT, SplitSpec(eval=0.1, seed=1))
    assert other_seed.to_list() != s_big.to_list()


def test_rows_sharing_a_prompt_share_a_split() -> None:
    df = pl.DataFrame(
        {
            "id": [str(i) for i in range(200)],
            "messages": [_msgs("user", f"Q{i // 2}!") + _msgs("assistant", f"a{i}") for i in range(200)],
        },
        schema={"id": pl.String, "messages": MESSAGES},
    )
    s = assign_splits(df, Kind.SFT, SplitSpec(eval=0.3)).to_list()
    assert all(s[i] == s[i + 1] for i in range(0, 200, 2))


@pytest.mark.parametrize("kind", [Kind.SFT, Kind.PREFERENCE, Kind.KTO])
def test_load_gives_trl_formats(tmp_path: Path, kind: Kind) -> None:
    p, a, b = _msgs("user", "q"), _msgs("assistant", "good"), _msgs("assistant", "bad")
    if kind is Kind.SFT:
        df = _sft(4)
    elif kind is Kind.PREFERENCE:
        df = pl.DataFrame(
            {"id": ["x", "y"], "prompt": [p, p], "chosen": [a, a], "rejected": [b, b]},
            schema={"id": pl.String, "prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES},
        )
    else:
        df = pl.DataFrame(
            {"id": ["x", "y"], "prompt": [p, p], "completion": [a, b], "label": [True, False]},
            schema={"id": pl.String, "prompt": MESSAGES, "completion": MESSAGES, "label": pl.Boolean},
        )
    df = df.with_columns(pl.lit("train").alias("split"))
    Store(tmp_path).publish("d", df, {"kind": kind.value})
    ds, manifest = load("d@latest", split="train", root=tmp_path, with_manifest=True)
    assert manifest["resolved"] == "d@1" and ds.num_rows == df.height
    assert is_conversational(ds[0])
    assert (
        set(ds.column_names)
        == {
            Kind.SFT: {"messages"},
            Kind.PREFERENCE: {"prompt", "chosen", "rejected"},
            Kind.KTO: {"prompt", "completion", "label"},
        }[kind]
    )
    # TRL renders the rows with a chat template, as its trainers will
    rendered = apply_chat_template(ds[0], _CHATML_TOKENIZER())
    assert "<|im_start|>" in next(iter(rendered.values()))
    full = load("d", split=None, root=tmp_path, columns="all")
    assert {"id", "split"} <= set(full.column_names)


def test_score_only_change_is_a_new_version(tmp_path: Path) -> None:
    p, a, b = _msgs("user", "q"), _msgs("assistant", "good"), _msgs("assistant", "bad")
    schema = {
        "id": pl.String,
        "prompt": MESSAGES,
        "chosen": MESSAGES,
        "rejected": MESSAGES,
        "margin": pl.Float64,
        "split": pl.String,
    }
    base = {"id": ["x"], "prompt": [p], "chosen": [a], "rejected": [b], "split": ["train"]}
    st = Store(tmp_path)
    st.publish("pref", pl.DataFrame({**base, "margin": [0.2]}, schema=schema), {"kind": "preference"})
    again = st.publish("pref", pl.DataFrame({**base, "margin": [0.9]}, schema=schema), {"kind": "preference"})
    assert (again.version, again.created) == (2, True)
    assert st.read("pref@1")["margin"].to_list() == [0.2]


def test_read_a_split_with_selected_columns(tmp_path: Path) -> None:
    st = Store(tmp_path)
    st.publish("chat", _with_splits(_sft(30), Kind.SFT), {"kind": "sft"})
    only = st.read("chat", split="eval", columns=["id"])
    assert only.columns == ["id"] and only.height == (st.read("chat")["split"] == "eval").sum()
