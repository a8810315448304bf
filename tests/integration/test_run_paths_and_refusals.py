"""Run behaviour a user relies on, through the real CLI: folder settings are relative to the recipe
(not the working directory), an empty result is not published as `latest` unless asked, input paths
that climb out of the recipe's folder are named, and messages carrying `[...]` print as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.store import Store

pytestmark = pytest.mark.integration

ROWS = [{"instruction": f"Explain item {i} please.", "output": f"Item {i} is described here."} for i in range(4)]


def curate(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def project(root: Path, rows: list[dict], publish: str = "publish: {store: store}\n", out: str = "runs") -> Path:
    folder = root / "proj" / "recipes"
    folder.mkdir(parents=True)
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = folder / "r.yaml"
    recipe.write_text(
        f"name: paths\noutput: {{kind: sft, dir: '{out}'}}\n"
        "sources:\n  - {name: d, path: data.jsonl, convert: alpaca_to_messages}\n" + publish
    )
    return recipe


def test_output_dir_and_store_are_relative_to_the_recipe(tmp_path: Path) -> None:
    recipe = project(tmp_path, ROWS)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    res = curate("run", str(recipe), "--local", "--json", cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    run_dir = Path(s["outputs"]["dir"])
    assert run_dir.is_absolute() and run_dir.parent == recipe.parent / "runs" / "paths"
    assert Store(recipe.parent / "store").manifest("paths@latest")["rows"] == 4
    assert list(elsewhere.iterdir()) == []  # nothing lands in the working directory
    # an absolute output.dir is kept as written
    absolute = tmp_path / "abs-runs"
    recipe.write_text(recipe.read_text().replace("dir: 'runs'", f"dir: '{absolute}'"))
    res = curate("run", str(recipe), "--local", "--json", cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    assert Path(json.loads(res.stdout)["outputs"]["dir"]).parent == absolute / "paths"


def test_an_empty_result_is_not_published_unless_allowed(tmp_path: Path) -> None:
    recipe = project(tmp_path, [])
    res = curate("run", str(recipe), "--local", "--json", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "empty version not published" in res.stderr and "publish.allow_empty: true" in res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
    s = json.loads(res.stdout)  # the run folder is still written, for the audit
    assert s["input_rows"] == 0 and Path(s["outputs"]["dir"], "summary.json").exists()
    store = recipe.parent / "store"
    assert not store.exists() or "paths" not in Store(store).names()
    # with the opt-in, the empty version is published
    recipe.write_text(recipe.read_text().replace("{store: store}", "{store: store, allow_empty: true}"))
    res = curate("run", str(recipe), "--local", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert Store(store).manifest("paths@latest")["rows"] == 0


def test_a_path_out_of_the_recipe_folder_is_named(tmp_path: Path) -> None:
    recipe = project(tmp_path, ROWS)  # tmp/proj/recipes/r.yaml
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(ROWS[0]) + "\n")
    recipe.write_text(recipe.read_text().replace("path: data.jsonl", "path: ../../outside.jsonl"))
    cwd = tmp_path / "proj"  # run from the project: the file is outside it and outside the recipe's folder
    res = curate("validate", str(recipe), "--json", cwd=cwd)
    assert res.returncode == 0, res.stderr
    warnings = json.loads(res.stdout)["warnings"]
    assert len(warnings) == 1 and "sources[0].path" in warnings[0] and str(outside) in warnings[0]
    res = curate("run", str(recipe), "--local", "--json", cwd=cwd)
    assert res.returncode == 0, res.stderr
    assert "warning: " in res.stderr and "outside the recipe's folder" in res.stderr
    # a file under the working directory (../data/raw beside recipes/) is the usual layout: no warning
    assert json.loads(curate("validate", str(recipe), "--json", cwd=tmp_path).stdout)["warnings"] == []
    # an absolute path is the user's explicit choice: no warning
    recipe.write_text(recipe.read_text().replace("../../outside.jsonl", str(outside)))
    res = curate("validate", str(recipe), "--json", cwd=cwd)
    assert json.loads(res.stdout)["warnings"] == []


def test_bracketed_text_prints_as_written(tmp_path: Path) -> None:
    recipe = project(tmp_path, ROWS, publish="", out="runs[old]")
    res = curate("run", str(recipe), "--local", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert str(recipe.parent / "runs[old]" / "paths") in res.stdout  # rich would have swallowed "[old]"


def test_annotate_status_against_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    env = {"ARGILLA_API_URL": "http://127.0.0.1:9", "ARGILLA_API_KEY": "not-used", "CURATE_ARGILLA_HOME": str(tmp_path)}
    res = curate("annotate", "status", cwd=tmp_path, env=env)
    assert res.returncode == 2
    assert res.stderr.startswith("Argilla error: ConnectError")
    assert "[red" not in res.stderr and "[/]" not in res.stderr and "Traceback" not in res.stderr
