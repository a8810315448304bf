"""Dataset cards: Hub-format front matter, every section, real example rows, the plot, no secrets."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import datasets
import polars as pl
import pytest
import yaml

from curate.store import Store
from curate.store.card import SECTIONS, example_rows, redact_uri, rewrite_card, write_card
from curate.store.export import export
from curate.store.splits import assign_splits
from schemas.kinds import MESSAGES, SOURCE, Kind
from schemas.recipe import SplitSpec

ROOT = Path(__file__).resolve().parents[3]
PNG = b"\x89PNG\r\n\x1a\n"


def _source(i: int) -> dict[str, Any]:
    return {"name": "src", "uri": "file:///data/src.jsonl", "sha256": "ab" * 32, "row": i}


def _sft(n: int, long_every: int = 0) -> pl.DataFrame:
    rows = []
    for i in range(n):
        answer = f"Answer {i}. " * (1 + i % 9) + ("x" * 1000 if long_every and i % long_every == 0 else "")
        rows.append([{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": answer}])
    df = pl.DataFrame(
        {"id": [f"id{i:05d}" for i in range(n)], "messages": rows, "source": [_source(i) for i in range(n)]},
        schema={"id": pl.String, "messages": MESSAGES, "source": SOURCE},
    )
    return df.with_columns(assign_splits(df, Kind.SFT, SplitSpec(eval=0.2, test=0.1)))


def _preference(n: int) -> pl.DataFrame:
    def m(role: str, text: str) -> list[dict[str, str]]:
        return [{"role": role, "content": text}]

    df = pl.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "prompt": [m("user", f"Prompt {i}") for i in range(n)],
            "chosen": [m("assistant", f"Good answer {i}") for i in range(n)],
            "rejected": [m("assistant", f"Bad answer {i}") for i in range(n)],
            "source": [_source(i) for i in range(n)],
        },
        schema={"id": pl.String, "prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "source": SOURCE},
    )
    return df.with_columns(assign_splits(df, Kind.PREFERENCE, SplitSpec(eval=0.2)))


def _manifest(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "recipe": {"name": "demo", "sha256": "c0ffee" * 10 + "beef", "text": "name: demo\n"},
        "inputs": [
            {"source": "src", "uri": "file:///data/src.jsonl", "sha256": "ab" * 32, "format": "jsonl", "rows": 7}
        ],
        "stages": [{"type": "exact_dedup", "name": None, "keep": "first", "key": None}],
        "accounting": {
            "input_rows": 10,
            "kept": 7,
            "quarantined": 2,
            "duplicates": 1,
            "dropped": 0,
            "balanced": True,
            "quarantined_by_reason": {"invalid_json": 2},
            "duplicates_by_reason": {"exact_duplicate": 1},
            "dropped_by_reason": {},
        },
        "run_id": "20260101T000000Z-abcdef",
        "code_version": {"package": "0.1.0", "git_commit": "deadbeef", "python": "3.11.7"},
        **extra,
    }


def _split(text: str) -> tuple[dict[str, Any], str]:
    m = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    assert m, "the card must start with YAML front matter between --- lines"
    return yaml.safe_load(m.group(1)), m.group(2)


def _publish(tmp_path: Path, df: pl.DataFrame, manifest: dict[str, Any]) -> tuple[Store, Path, dict[str, Any]]:
    store = Store(tmp_path / "store")
    pub = store.publish("demo", df, manifest)
    return store, write_card(store, "demo", pub.version, df, pub.manifest), pub.manifest


def test_front_matter_matches_the_data(tmp_path: Path) -> None:
    df = _sft(200)
    _, path, manifest = _publish(tmp_path, df, _manifest("sft"))
    assert path == tmp_path / "store" / "demo" / "cards" / "v1" / "README.md"
    meta, _ = _split(path.read_text())
    counts = dict(df["split"].value_counts().iter_rows())
    assert set(counts) == {"train", "eval", "test"}
    (config,) = meta["configs"]
    assert config["config_name"] == "default"
    assert {f["split"]: f["path"] for f in config["data_files"]} == {s: f"{s}.parquet" for s in counts}
    info = meta["dataset_info"]
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == counts
    assert all(s["num_bytes"] > 0 for s in info["splits"])
    assert meta["license"] == "other"
    assert meta["task_categories"] == ["text-generation"]
    assert "curate" in meta["tags"]
    # the features are what `datasets` reads and equal the TRL columns the export writes
    features = datasets.Features._from_yaml_list(info["features"])
    message = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    expected = datasets.Features({"messages": datasets.List(message)})
    assert features == expected
    assert manifest["content_hash"] in path.read_text()


def test_preference_and_kto_tags_and_features(tmp_path: Path) -> None:
    df = _preference(40)
    _, path, _ = _publish(tmp_path, df, _manifest("preference", license="mit"))
    meta, _ = _split(path.read_text())
    assert meta["license"] == "mit"
    assert meta["task_categories"] == ["text-generation"] and {"curate", "rlhf", "dpo"} <= set(meta["tags"])
    names = [f["name"] for f in meta["dataset_info"]["features"]]
    assert names == ["prompt", "chosen", "rejected"]
    datasets.Features._from_yaml_list(meta["dataset_info"]["features"])

    kto = pl.DataFrame(
        {
            "id": ["k1", "k2"],
            "prompt": [[{"role": "user", "content": "q"}]] * 2,
            "completion": [[{"role": "assistant", "content": "a"}]] * 2,
            "label": [True, False],
            "split": ["train", "train"],
        },
        schema={"id": pl.String, "prompt": MESSAGES, "completion": MESSAGES, "label": pl.Boolean, "split": pl.String},
    )
    store = Store(tmp_path / "kto")
    pub = store.publish("k", kto, {"kind": "kto"})
    meta, body = _split(write_card(store, "k", 1, kto, pub.manifest).read_text())
    assert {"rlhf", "kto"} <= set(meta["tags"])
    feats = datasets.Features._from_yaml_list(meta["dataset_info"]["features"])
    assert feats["label"] == datasets.Value("bool")
    assert [s["name"] for s in meta["dataset_info"]["splits"]] == ["train"]  # no empty eval/test entries
    assert "There is no eval split" in body


def test_every_section_and_the_funnel_lineage_limitations(tmp_path: Path) -> None:
    example = {"id": "e1", "train_id": "t1", "similarity": 0.9}
    leaks = {
        "threshold": 0.8,
        "eval": {"rows": 30, "near_duplicates_of_train": 2, "examples": [example]},
        "test": {"rows": 12, "near_duplicates_of_train": 0, "examples": []},
    }
    _, path, manifest = _publish(tmp_path, _sft(150), _manifest("sft", split_leaks=leaks))
    _, body = _split(path.read_text())
    headings = re.findall(r"^## (.+)$", body, re.M)
    assert headings == list(SECTIONS)
    assert body.lstrip().startswith("# demo@1")
    assert 'load("demo@1", split="train"' in body and "curate.store.load" in body
    assert "trl_parquet" in body  # the data_files note
    # sources: uri, sha256 prefix, rows
    assert "`file:///data/src.jsonl`" in body and f"`{'ab' * 6}`" in body and "| 7 |" in body
    # funnel
    assert "10 input = 7 kept + 2 quarantined + 1 duplicates + 0 dropped" in body and "exact_dedup" in body
    # lineage
    for value in (manifest["recipe"]["sha256"], manifest["run_id"], "deadbeef", manifest["published_at"]):
        assert value in body
    assert "none (first version)" in body
    # limitations: leaks, quarantine reasons
    limits = body.split("## Known limitations", 1)[1]
    assert "2 of 30 eval rows are near-duplicates" in limits and "`e1`~`t1`" in limits
    assert "0 of 12 test rows" in limits
    assert "invalid_json 2" in limits
    assert "name: demo" not in body  # the recipe text is not copied into the card


def test_parent_version_in_lineage(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.publish("demo", _sft(20), _manifest("sft"))
    df = _sft(30)
    pub = store.publish("demo", df, _manifest("sft"))
    _, body = _split(write_card(store, "demo", 2, df, pub.manifest).read_text())
    assert "`demo@1`" in body.split("## Lineage", 1)[1]


def test_examples_are_real_rows_and_long_text_is_cut(tmp_path: Path) -> None:
    df = _sft(120, long_every=1)  # every answer over the cut
    store, path, _ = _publish(tmp_path, df, _manifest("sft"))
    _, body = _split(path.read_text())
    section = body.split("## Examples", 1)[1].split("## Lineage", 1)[0]
    shown = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", section, re.S)]
    assert len(shown) == 5  # 3 train, 1 eval, 1 test
    stored = {r["id"]: r for r in store.read("demo@1").to_dicts()}
    for row in shown:
        real = stored[row["id"]]
        assert row["split"] == real["split"] and row["source"] == real["source"]
        assert [m["role"] for m in row["messages"]] == [m["role"] for m in real["messages"]]
        for got, want in zip(row["messages"], real["messages"], strict=True):
            if len(want["content"]) <= 300:
                assert got["content"] == want["content"]
            else:
                assert got["content"].startswith(want["content"][:300]) and "more characters]" in got["content"]
    # the chosen rows: the first ids of each split
    for split in ("train", "eval", "test"):
        first = df.filter(pl.col("split") == split).sort("id")["id"].to_list()
        ids = [r["id"] for r in shown if r["split"] == split]
        assert ids == first[: len(ids)]


def test_short_rows_appear_verbatim(tmp_path: Path) -> None:
    df = _sft(60)
    store, path, _ = _publish(tmp_path, df, _manifest("sft"))
    _, body = _split(path.read_text())
    shown = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", body, re.S)]
    stored = {r["id"]: r for r in store.read("demo@1").to_dicts()}
    assert shown and all(row == stored[row["id"]] for row in shown)
    assert example_rows(df) == shown


def test_lengths_plot_is_a_png(tmp_path: Path) -> None:
    _, path, _ = _publish(tmp_path, _sft(80), _manifest("sft"))
    png = path.parent / "lengths.png"
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 1000
    assert "![lengths](lengths.png)" in path.read_text()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary files left


def test_card_loads_with_a_trl_parquet_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The card copied into a ``trl_parquet`` export is a dataset that ``datasets.load_dataset`` reads."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    df = _sft(90)
    store, path, _ = _publish(tmp_path, df, _manifest("sft"))
    out = tmp_path / "export"
    export(store, "demo@1", "trl_parquet", out)
    shutil.copy(path, out / "README.md")
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    counts = dict(df["split"].value_counts().iter_rows())
    assert {s: ds[s].num_rows for s in ds} == counts
    meta, _ = _split(path.read_text())
    assert ds["train"].features == datasets.Features._from_yaml_list(meta["dataset_info"]["features"])
    assert ds["train"][0]["messages"][0]["role"] == "user"


def test_rewrite_card_from_the_store_alone(tmp_path: Path) -> None:
    _, path, _ = _publish(tmp_path, _sft(70), _manifest("sft"))
    first = path.read_text()
    shutil.rmtree(path.parent)
    again = rewrite_card(Store(tmp_path / "store"), "demo@latest")
    assert again == path and again.read_text() == first and (path.parent / "lengths.png").exists()


def test_redact_uri() -> None:
    assert redact_uri("https://user:pw@host/x.jsonl") == "https://user:***@host/x.jsonl"
    assert redact_uri("s3://b/k.parquet?X-Amz-Signature=abc&v=1") == "s3://b/k.parquet?X-Amz-Signature=***&v=1"
    assert redact_uri("file:///a/b.jsonl") == "file:///a/b.jsonl"
    assert redact_uri("hf://datasets/org/name/train.parquet") == "hf://datasets/org/name/train.parquet"


@pytest.mark.integration
def test_curate_run_writes_a_card_without_the_secret(tmp_path: Path) -> None:
    secret = "card-test-secret-7f3a91c2e5"
    rows = [{"instruction": f"Question {i} about {i % 5}?", "output": f"Answer {i}. " * (i % 4 + 1)} for i in range(50)]
    data = tmp_path / "a.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # a file:// URL goes through fsspec with the storage options, so the secret is really resolved and used
    (tmp_path / "r.yaml").write_text(
        "name: cardtest\noutput: {kind: sft, dir: runs}\n"
        "sources:\n"
        f"  - name: a\n    path: {data.as_uri()}\n    convert: alpaca_to_messages\n"
        "    storage_options: {token: '${CARD_TEST_TOKEN}'}\n"
        "stages:\n  - {type: exact_dedup}\n"
        "publish: {store: store, splits: {eval: 0.2}}\n"
    )
    env = {**os.environ, "CARD_TEST_TOKEN": secret}
    proc = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", "r.yaml", "--json", "--local"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    pub = json.loads(proc.stdout)["published"]
    card = tmp_path / pub["card"]
    assert card == tmp_path / "store" / "cardtest" / "cards" / "v1" / "README.md"
    assert (card.parent / "lengths.png").read_bytes()[:8] == PNG
    meta, body = _split(card.read_text())
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == pub["rows_per_split"]
    assert "${CARD_TEST_TOKEN}" not in body  # not even the reference: the recipe text stays in the manifest
    assert secret not in proc.stdout and secret not in proc.stderr
    leaked = [
        p
        for folder in (tmp_path / "store", tmp_path / "runs")
        for p in folder.rglob("*")
        if p.is_file() and secret.encode() in p.read_bytes()
    ]
    assert leaked == []
    # the recipe (with its ${ENV} reference) is still recorded
    assert "${CARD_TEST_TOKEN}" in Store(tmp_path / "store").manifest("cardtest@1")["recipe"]["text"]

    again = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", "r.yaml", "--json", "--local"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    unchanged = json.loads(again.stdout)["published"]
    assert unchanged["created"] is False and "card" not in unchanged
