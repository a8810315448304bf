"""The real ``curate datasets diff`` / ``curate datasets export`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from curate.store import Store
from schemas.kinds import MESSAGES

pytestmark = pytest.mark.integration


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
    )


def _sft(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [f"{p}|{a}" for p, a, _ in rows],
            "messages": [[{"role": "user", "content": p}, {"role": "assistant", "content": a}] for p, a, _ in rows],
            "split": [s for *_, s in rows],
        },
        schema={"id": pl.String, "messages": MESSAGES, "split": pl.String},
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    st = Store(tmp_path / "store")
    v1 = [("What is 2+2?", "4", "train"), ("Capital of France?", "Paris", "train"), ("Colour of sky?", "Blue", "eval")]
    v2 = [
        ("What is 2+2?", "Four.", "train"),
        ("Colour of sky?", "Blue", "eval"),
        ("Largest ocean?", "Pacific", "train"),
    ]
    st.publish("chat", _sft(v1), {"kind": "sft"})
    st.publish("chat", _sft(v2), {"kind": "sft"})
    return tmp_path


def test_diff_json_and_table(project: Path) -> None:
    res = cli("datasets", "diff", "chat@1", "chat@2", "--store", "store", "--json", cwd=project)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["counts"] == {"unchanged": 1, "added": 1, "removed": 1, "changed": 1, "changed_old": 1, "moved_split": 0}
    assert [e["id"] for e in d["examples"]["added"]] == ["Largest ocean?|Pacific"]
    assert [e["id"] for e in d["examples"]["removed"]] == ["Capital of France?|Paris"]
    assert [(e["old_response"], e["new_response"]) for e in d["examples"]["changed"]] == [("4", "Four.")]
    assert d["per_split"]["eval"]["unchanged"] == 1
    table = cli("datasets", "diff", "chat@1", "chat@latest", "--store", "store", cwd=project)
    assert table.returncode == 0 and "chat@1 -> chat@2" in table.stdout and "old: 4" in table.stdout
    bad = cli("datasets", "diff", "chat@1", "chat@9", "--store", "store", cwd=project)
    assert bad.returncode == 2 and "no version 9" in bad.stderr
    assert cli("datasets", "diff", "chat@1", "chat@2", "--key", "nope", "--store", "store", cwd=project).returncode == 2


def test_export(project: Path) -> None:
    res = cli("datasets", "export", "chat@1", "--format", "trl_jsonl", "--out", "exp", "--store", "store", cwd=project)
    assert res.returncode == 0, res.stderr
    assert "exported chat@1 (sft) as trl_jsonl" in res.stdout
    train = [json.loads(line) for line in (project / "exp" / "train.jsonl").read_text().splitlines()]
    assert {r["messages"][0]["content"] for r in train} == {"What is 2+2?", "Capital of France?"}
    m = json.loads((project / "exp" / "export_manifest.json").read_text())
    assert (m["ref"], m["splits"], m["format"]) == ("chat@1", {"train": 2, "eval": 1}, "trl_jsonl")
    assert m["content_hash"] == Store(project / "store").manifest("chat@1")["content_hash"]

    lf = cli(
        "datasets", "export", "chat", "--format", "sharegpt_json", "--out", "lf", "--split", "eval",
        "--store", "store", "--json", cwd=project,
    )  # fmt: skip
    assert lf.returncode == 0, lf.stderr
    assert json.loads(lf.stdout)["llamafactory_datasets"] == ["chat_eval"]
    assert set(json.loads((project / "lf" / "dataset_info.json").read_text())) == {"chat_eval"}

    bad_fmt = cli("datasets", "export", "chat", "--format", "csv", "--out", "x", "--store", "store", cwd=project)
    assert bad_fmt.returncode == 2 and "unknown format 'csv'" in bad_fmt.stderr
    hub = cli(
        "datasets", "export", "chat", "--format", "hub", "--repo-id", "me/chat", "--out", "h", "--store", "store",
        cwd=project,
    )  # fmt: skip
    assert hub.returncode == 2 and "HF_TOKEN" in hub.stderr
