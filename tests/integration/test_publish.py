"""`curate run` with a `publish:` section, then `curate datasets list/show` on the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curate.store import Store

pytestmark = pytest.mark.integration


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_run_publishes_versions_and_lineage(tmp_path: Path) -> None:
    rows = [{"instruction": f"Question number {i} about topic {i % 7}?", "output": f"Answer {i}."} for i in range(60)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "r.yaml").write_text(
        "name: pubtest\noutput: {kind: sft, dir: runs}\n"
        "sources:\n  - {name: a, path: a.jsonl, convert: alpaca_to_messages}\n"
        "publish: {store: store, splits: {eval: 0.2, test: 0.1}}\n"
    )
    first = cli("run", "r.yaml", "--json", "--local", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    pub = json.loads(first.stdout)["published"]
    assert (pub["ref"], pub["created"]) == ("pubtest@1", True)
    assert sum(pub["rows_per_split"].values()) == 60 and set(pub["rows_per_split"]) == {"train", "eval", "test"}
    again = json.loads(cli("run", "r.yaml", "--json", "--local", cwd=tmp_path).stdout)["published"]
    assert (again["version"], again["created"]) == (1, False)  # same content: nothing new

    with (tmp_path / "a.jsonl").open("a") as f:  # new rows -> version 2, old rows keep their split
        f.write(
            "".join(json.dumps({"instruction": f"New question {i}", "output": "New answer."}) + "\n" for i in range(5))
        )
    v2 = json.loads(cli("run", "r.yaml", "--json", "--local", cwd=tmp_path).stdout)["published"]
    assert (v2["version"], v2["created"]) == (2, True)
    st = Store(tmp_path / "store")
    old = dict(st.read("pubtest@1").select("id", "split").iter_rows())
    new = dict(st.read("pubtest@2").select("id", "split").iter_rows())
    assert all(new[i] == s for i, s in old.items())

    m = st.manifest("pubtest@2")
    assert m["parent_version"] == 1 and m["kind"] == "sft" and m["accounting"]["balanced"]
    assert m["inputs"][0]["sha256"] != st.manifest("pubtest@1")["inputs"][0]["sha256"]
    assert m["recipe"]["text"] == (tmp_path / "r.yaml").read_text()

    listed = json.loads(cli("datasets", "list", "--store", "store", "--json", cwd=tmp_path).stdout)
    assert [(d["dataset"], d["latest"], d["versions"]) for d in listed] == [("pubtest", 2, 2)]
    shown = cli("datasets", "show", "pubtest@1", "--store", "store", cwd=tmp_path)
    assert shown.returncode == 0 and "pubtest@1 (sft), 60 rows" in shown.stdout
    assert cli("datasets", "show", "pubtest@9", "--store", "store", cwd=tmp_path).returncode == 2
