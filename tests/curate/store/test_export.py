from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import polars as pl
import pytest
from trl.data_utils import apply_chat_template, is_conversational

from curate.store import Store
from curate.store.export import ExportError, export
from curate.store.load import load
from schemas.kinds import MESSAGES, Kind


def _chatml_tokenizer() -> Any:
    import tokenizers
    import transformers

    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[UNK]")
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return fast


def _m(role: str, text: str) -> dict[str, str]:
    return {"role": role, "content": text}


SYS = _m("system", "Be brief.")
SFT = [
    ([_m("user", "Hi"), _m("assistant", "Hello!")], "train"),
    ([SYS, _m("user", "2+2?"), _m("assistant", "4"), _m("user", "and 3+3?"), _m("assistant", "6")], "train"),
    ([_m("user", "Name a colour"), _m("assistant", "Blue")], "eval"),
    ([_m("user", "one"), _m("user", "two"), _m("assistant", "three")], "train"),  # not alternating
]
PREF = [
    ([_m("user", "Capital of France?")], [_m("assistant", "Paris")], [_m("assistant", "Lyon")], "train"),
    (
        [SYS, _m("user", "Hi"), _m("assistant", "Hey"), _m("user", "Joke?")],
        [_m("assistant", "Pun")],
        [_m("assistant", "No")],
        "train",
    ),
    (
        [_m("user", "Continue:"), _m("assistant", "Once upon")],
        [_m("assistant", "a time")],
        [_m("assistant", "zzz")],
        "eval",
    ),
    ([_m("user", "Best pet?")], [_m("assistant", "A cat")], [_m("assistant", "A rock")], "eval"),
]
KTO = [
    ([_m("user", "Is water wet?")], [_m("assistant", "Yes")], True, "train"),
    ([SYS, _m("user", "Is fire cold?")], [_m("assistant", "Yes")], False, "train"),
    ([_m("user", "Sky colour?")], [_m("assistant", "Blue")], True, "eval"),
]


def _frame(kind: Kind) -> pl.DataFrame:
    if kind is Kind.SFT:
        data = {"messages": [r[0] for r in SFT], "split": [r[1] for r in SFT]}
        schema: dict[str, Any] = {"messages": MESSAGES}
    elif kind is Kind.PREFERENCE:
        data = {k: [r[i] for r in PREF] for i, k in enumerate(("prompt", "chosen", "rejected", "split"))}
        schema = {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES}
    else:
        data = {k: [r[i] for r in KTO] for i, k in enumerate(("prompt", "completion", "label", "split"))}
        schema = {"prompt": MESSAGES, "completion": MESSAGES, "label": pl.Boolean}
    n = len(data["split"])
    return pl.DataFrame(
        {"id": [f"{kind}-{i}" for i in range(n)], **data}, schema={"id": pl.String, **schema, "split": pl.String}
    )


KINDS = [Kind.SFT, Kind.PREFERENCE, Kind.KTO]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    st = Store(tmp_path_factory.mktemp("store"))
    for kind in KINDS:
        st.publish(kind.value, _frame(kind), {"kind": kind.value})
    return st


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "export_manifest.json").read_text())


def _expected_trl(store: Store, kind: Kind, split: str) -> list[dict[str, Any]]:
    return load(f"{kind}@1", split=split, root=store.root).to_list()


@pytest.mark.parametrize("kind", KINDS)
def test_hf_disk(store: Store, tmp_path: Path, kind: Kind) -> None:
    r = export(store, kind.value, "hf_disk", tmp_path)
    dd = datasets.load_from_disk(str(tmp_path))
    assert set(dd) == {"train", "eval"}
    for split in dd:
        assert dd[split].to_list() == _expected_trl(store, kind, split)
    assert is_conversational(dd["train"][0])
    rendered = apply_chat_template(dd["train"][0], _chatml_tokenizer())
    assert "<|im_start|>" in next(iter(rendered.values()))
    m = _manifest(tmp_path)
    assert m == r
    assert (m["ref"], m["format"], m["kind"]) == (f"{kind}@1", "hf_disk", kind.value)
    assert m["content_hash"] == store.manifest(f"{kind}@1")["content_hash"]
    assert m["splits"] == store.manifest(f"{kind}@1")["rows_per_split"] and m["skipped"] == {}


@pytest.mark.parametrize("fmt", ["trl_jsonl", "trl_parquet"])
@pytest.mark.parametrize("kind", KINDS)
def test_trl_conversational_files(store: Store, tmp_path: Path, kind: Kind, fmt: str) -> None:
    ext = "jsonl" if fmt == "trl_jsonl" else "parquet"
    export(store, f"{kind}@latest", fmt, tmp_path, split="train")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export_manifest.json", f"train.{ext}"]
    builder = "json" if ext == "jsonl" else "parquet"
    ds = datasets.load_dataset(builder, data_files={"train": str(tmp_path / f"train.{ext}")})["train"]
    assert ds.to_list() == _expected_trl(store, kind, "train")
    assert all(is_conversational(row) for row in ds)
    assert _manifest(tmp_path)["splits"] == {"train": ds.num_rows}


def _trl_reference(store: Store, kind: Kind, split: str) -> list[dict[str, Any]]:
    tok = _chatml_tokenizer()
    return [apply_chat_template(row, tok) for row in _expected_trl(store, kind, split)]


@pytest.mark.parametrize("template", ["chatml", "tokenizer"])
@pytest.mark.parametrize("kind", KINDS)
def test_trl_text_matches_trl_apply_chat_template(store: Store, tmp_path: Path, kind: Kind, template: str) -> None:
    tok_dir = None
    if template == "tokenizer":
        tok_dir = tmp_path / "tok"
        _chatml_tokenizer().save_pretrained(str(tok_dir))
    out = tmp_path / "out"
    r = export(store, kind.value, "trl_text_jsonl", out, template=template, tokenizer=tok_dir)
    for split in ("train", "eval"):
        ds = datasets.load_dataset("json", data_files=str(out / f"{split}.jsonl"))["train"]
        assert not is_conversational(ds[0])
        assert ds.to_list() == _trl_reference(store, kind, split)  # the exact strings TRL's trainers make
    assert r["template"] == template and r["skipped"] == {}
    parquet = export(store, kind.value, "trl_text_parquet", tmp_path / "pq", split="eval")
    pq = datasets.load_dataset("parquet", data_files=str(tmp_path / "pq" / "eval.parquet"))["train"]
    assert pq.to_list() == _trl_reference(store, kind, "eval") and parquet["splits"] == {"eval": pq.num_rows}


# --- LLaMA-Factory: a condensed copy of its DatasetAttr.join + alpaca/sharegpt converters ------------------

_LF_DEFAULTS = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": None,
    "messages": "conversations",
    "system": None,
    "chosen": None,
    "rejected": None,
    "kto_tag": None,
}
_LF_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}


def _lf_attr(entry: dict[str, Any]) -> dict[str, Any]:
    attr = {"formatting": entry.get("formatting", "alpaca"), "ranking": entry.get("ranking", False)}
    cols = entry.get("columns")
    attr |= {k: cols.get(k) for k in _LF_DEFAULTS} if cols is not None else dict(_LF_DEFAULTS)
    tags = entry.get("tags")
    attr |= {k: tags.get(k) for k in _LF_TAGS} if tags is not None else dict(_LF_TAGS)
    return attr


def _lf_convert(ex: dict[str, Any], a: dict[str, Any]) -> tuple[list[dict], list[dict], str] | None:
    """(prompt, response, system) as LLaMA-Factory builds them, or None for an example it skips."""
    kto = a["kto_tag"] and isinstance(ex.get(a["kto_tag"]), bool)
    if a["formatting"] == "alpaca":
        prompt = []
        if a["history"] and isinstance(ex[a["history"]], list):
            for q, r in ex[a["history"]]:
                prompt += [_m("user", q), _m("assistant", r)]
        query = [ex[k] for k in (a["prompt"], a["query"]) if k and ex.get(k)]
        prompt.append(_m("user", "\n".join(query)))
        if kto:
            response = [_m("assistant", ex[a["response"]])]
            response = [*response, _m("assistant", "")] if ex[a["kto_tag"]] else [_m("assistant", ""), *response]
        elif a["ranking"]:
            response = [_m("assistant", ex[a["chosen"]]), _m("assistant", ex[a["rejected"]])]
        else:
            response = [_m("assistant", ex[a["response"]])]
        return prompt, response, ex[a["system"]] if a["system"] else ""
    tag = {a["user_tag"]: "user", a["assistant_tag"]: "assistant", a["system_tag"]: "system"}
    tag |= {a["observation_tag"]: "observation", a["function_tag"]: "function"}
    accept = ((a["user_tag"], a["observation_tag"]), (a["assistant_tag"], a["function_tag"]))
    msgs = ex[a["messages"]]
    system = ""
    if a["system_tag"] and msgs and msgs[0][a["role_tag"]] == a["system_tag"]:
        system, msgs = msgs[0][a["content_tag"]], msgs[1:]
    aligned = []
    for i, msg in enumerate(msgs):
        if msg[a["role_tag"]] not in accept[i % 2]:
            return None
        aligned.append(_m(tag[msg[a["role_tag"]]], msg[a["content_tag"]]))
    if (not a["ranking"] and len(aligned) % 2) or (a["ranking"] and len(aligned) % 2 == 0):
        return None
    if kto:
        prompt, response = aligned[:-1], aligned[-1:]
        response = [*response, _m("assistant", "")] if ex[a["kto_tag"]] else [_m("assistant", ""), *response]
    elif a["ranking"]:
        c, r = ex[a["chosen"]], ex[a["rejected"]]
        assert c[a["role_tag"]] in accept[1] and r[a["role_tag"]] in accept[1]
        prompt = aligned
        response = [_m(tag[c[a["role_tag"]]], c[a["content_tag"]]), _m(tag[r[a["role_tag"]]], r[a["content_tag"]])]
    else:
        prompt, response = aligned[:-1], aligned[-1:]
    return prompt, response, system


def _lf_expected(kind: Kind, split: str) -> list[tuple[list[dict], list[dict], str]]:
    """What LLaMA-Factory should see for the rows it can take (leading system message -> system)."""
    out = []
    for row in {Kind.SFT: SFT, Kind.PREFERENCE: PREF, Kind.KTO: KTO}[kind]:
        if row[-1] != split:
            continue
        conv = row[0]
        system = conv[0]["content"] if conv[0]["role"] == "system" else ""
        conv = conv[1:] if system else conv
        roles = "".join(m["role"][0] for m in conv)
        if kind is Kind.SFT:
            if roles.replace("ua", "") != "":
                continue
            out.append((conv[:-1], conv[-1:], system))
        elif kind is Kind.PREFERENCE:
            if roles.replace("ua", "") != "u":
                continue
            out.append((conv, [row[1][0], row[2][0]], system))
        else:
            empty = _m("assistant", "")
            out.append((conv, [row[1][0], empty] if row[2] else [empty, row[1][0]], system))
    return out


@pytest.mark.parametrize("fmt", ["alpaca_json", "sharegpt_json"])
@pytest.mark.parametrize("kind", KINDS)
def test_llamafactory(store: Store, tmp_path: Path, kind: Kind, fmt: str) -> None:
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.json"}}))
    r = export(store, kind.value, fmt, tmp_path, name="demo")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {"mine", "demo_train", "demo_eval"}  # merged, not overwritten
    assert r["llamafactory_datasets"] == ["demo_train", "demo_eval"]
    for split in ("train", "eval"):
        entry = info[f"demo_{split}"]
        assert entry["file_name"] == f"demo_{split}.json"
        assert entry["formatting"] == fmt.removesuffix("_json")
        assert entry.get("ranking", False) is (kind is Kind.PREFERENCE)
        if fmt == "sharegpt_json":
            assert entry["tags"] == _LF_TAGS and entry["columns"]["messages"] == "conversations"
        if kind is Kind.KTO:
            assert entry["columns"]["kto_tag"] == "kto_tag"
        if kind is Kind.PREFERENCE:
            assert (entry["columns"]["chosen"], entry["columns"]["rejected"]) == ("chosen", "rejected")
        ds = datasets.load_dataset("json", data_files=str(tmp_path / entry["file_name"]))["train"]
        assert set(entry["columns"].values()) <= set(ds.column_names)
        attr = _lf_attr(entry)
        got = [_lf_convert(ex, attr) for ex in ds]
        assert got == _lf_expected(kind, split)
    skipped = {Kind.SFT: {"train": 1}, Kind.PREFERENCE: {"eval": 1}, Kind.KTO: {}}[kind]
    assert {s: sum(v.values()) for s, v in r["skipped"].items()} == skipped


def test_text_and_alpaca_records(tmp_path: Path) -> None:
    st = Store(tmp_path / "store")
    st.publish("docs", pl.DataFrame({"id": ["a"], "text": ["a document"], "split": ["train"]}), {"kind": "text"})
    alp = pl.DataFrame({"id": ["a"], "instruction": ["Add"], "input": ["2 and 2"], "output": ["4"], "split": ["train"]})
    st.publish("alp", alp, {"kind": "alpaca"})
    export(st, "docs", "alpaca_json", tmp_path / "lf")
    export(st, "alp", "alpaca_json", tmp_path / "lf")
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    assert info["docs_train"]["columns"] == {"prompt": "text"}  # LLaMA-Factory's pre-training form
    assert json.loads((tmp_path / "lf" / "alp_train.json").read_text()) == [
        {"instruction": "Add", "input": "2 and 2", "output": "4"}
    ]
    with pytest.raises(ExportError, match="no pre-training form"):
        export(st, "docs", "sharegpt_json", tmp_path / "x")
    text = export(st, "alp", "trl_text_jsonl", tmp_path / "t")
    row = json.loads((tmp_path / "t" / "train.jsonl").read_text())
    assert text["splits"] == {"train": 1}
    assert row == {
        "prompt": "<|im_start|>user\nAdd\n\n2 and 2<|im_end|>\n<|im_start|>assistant\n",
        "completion": "4<|im_end|>\n",
    }


def test_hub_needs_token_and_repo(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ExportError, match="HF_TOKEN"):
        export(store, "sft", "hub", tmp_path, repo_id="me/chat")
    with pytest.raises(ExportError, match="--repo-id"):
        export(store, "sft", "hub", tmp_path)
    assert not (tmp_path / "export_manifest.json").exists()


def test_bad_requests(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown format 'csv'"):
        export(store, "sft", "csv", tmp_path)
    with pytest.raises(ExportError, match="no rows in split 'test'"):
        export(store, "sft", "trl_jsonl", tmp_path, split="test")
    with pytest.raises(ExportError, match="needs --tokenizer"):
        export(store, "sft", "trl_text_jsonl", tmp_path, template="tokenizer")
    with pytest.raises(ExportError, match="does not exist"):
        export(store, "sft", "trl_text_jsonl", tmp_path, template="tokenizer", tokenizer=tmp_path / "missing")
    with pytest.raises(ExportError, match="apply to trl_text"):
        export(store, "sft", "hf_disk", tmp_path, template="tokenizer", tokenizer=tmp_path)
