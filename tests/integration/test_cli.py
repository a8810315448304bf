"""The real ``curate`` CLI in a subprocess: exit codes, --json summaries, outputs on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.integration

CURATE = [sys.executable, "-m", "curate.cli"]


def curate(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CURATE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


RECIPE = """
name: mixed
output: {{kind: sft, dir: {out}}}
sources:
  - name: tasks
    path: tasks.jsonl
    convert: alpaca_to_messages
  - name: faq
    path: faq.csv
    convert: alpaca_to_messages
    columns: {{instruction: question, output: answer}}
    storage_options: {{api_token: '${{DEMO_SECRET_TOKEN}}'}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tasks.jsonl").write_text(
        '{"instruction": "Add 2 and 2", "output": "4"}\n'
        "{broken\n"
        '{"instruction": "Say hi", "input": "politely", "output": "Hello!"}\n'
    )
    (tmp_path / "faq.csv").write_text("question,answer\nWhat is 1+1?,2\nbad,row,extra\n")
    (tmp_path / "recipe.yaml").write_text(RECIPE.format(out=tmp_path / "runs"))
    return tmp_path


def test_run_json_summary_and_outputs(project: Path) -> None:
    res = curate("run", "recipe.yaml", "--json", cwd=project, env={"DEMO_SECRET_TOKEN": "tok-123-secret"})
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert (s["input_rows"], s["kept"], s["quarantined"], s["duplicates"], s["dropped"]) == (5, 3, 2, 0, 0)
    assert s["balanced"] is True
    assert s["sources"]["tasks"]["quarantined_by_reason"] == {"invalid_json": 1}
    assert s["sources"]["faq"]["quarantined_by_reason"] == {"wrong_field_count": 1}
    run_dir = Path(s["outputs"]["dir"])
    assert (project / "runs" / "mixed" / "latest").resolve() == run_dir.resolve()
    data = pl.read_parquet(run_dir / "data")
    assert data.height == 3
    assert data["messages"][1].to_list()[0]["content"] == "Say hi\n\npolitely"
    q = [json.loads(line) for line in (run_dir / "quarantine.jsonl").read_text().splitlines()]
    assert {(x["source"], x["row"], x["reason"]) for x in q} == {
        ("tasks", 1, "invalid_json"),
        ("faq", 2, "wrong_field_count"),  # CSV rows are numbered by physical line (the header is line 1)
    }
    # the secret is a reference everywhere it is written
    written = "".join(
        p.read_text(errors="replace") for p in run_dir.rglob("*") if p.suffix in {".json", ".yaml", ".jsonl"}
    )
    assert "tok-123-secret" not in written and "${DEMO_SECRET_TOKEN}" in written
    assert "tok-123-secret" not in res.stderr  # nor in the flow's logs
    assert not list((project / "runs" / "mixed").glob(".*partial"))
    assert s["orchestrator"]["name"] == "prefect" and "Flow run" in res.stderr  # the default: a Prefect flow


def test_refresh_local_publishes_then_noops(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    (tmp_path / "r.yaml").write_text(
        f"name: rf\noutput: {{kind: sft, dir: {tmp_path / 'runs'}}}\n"
        "sources:\n  - {name: a, path: '*.jsonl', convert: alpaca_to_messages}\npublish: {store: store}\n"
    )
    first = curate("refresh", "r.yaml", "--local", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["published"]["ref"] == "rf@1"
    again = curate("refresh", "r.yaml", "--local", cwd=tmp_path)
    assert again.returncode == 0 and "no-op" in again.stdout and "rf@1" in again.stdout


def test_run_errors_name_the_fix(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    (tmp_path / "r.yaml").write_text(
        "name: e\noutput: {kind: sft}\nsources:\n  - {name: a, path: a.jsonl, convert: alpaca_to_messages}\n"
    )
    bad = curate("run", "r.yaml", "--runner", "ray", cwd=tmp_path)
    assert bad.returncode == 2 and "use thread, thread:N, dask" in bad.stderr
    no_pub = curate("refresh", "r.yaml", "--local", cwd=tmp_path)
    assert no_pub.returncode == 2 and "refresh needs a publish: section" in no_pub.stderr


def test_validate_reports_all_problems_exit_2(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "name: x\noutput: {kind: kto}\nsources:\n"
        "  - name: a\n    path: missing-*.jsonl\n    convert: alpaca_to_messagez\n"
        "  - name: b\n    path: missing.jsonl\n    convert: alpaca_to_messages\n    columns: {question: q}\n"
    )
    res = curate("validate", "r.yaml", "--json", cwd=tmp_path)
    assert res.returncode == 2
    problems = json.loads(res.stdout)["problems"]
    messages = " | ".join(p["message"] for p in problems)
    assert "unknown converter 'alpaca_to_messagez'" in messages
    assert "output.kind is kto" in messages
    assert "has no field 'question'" in messages
    assert "no input matches" in messages
    assert all(p["line"] for p in problems)


def test_validate_peek_finds_unmapped_columns(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"prompt": "q", "response": "a"}\n')
    (tmp_path / "r.yaml").write_text(
        "name: x\noutput: {kind: sft}\nsources:\n  - {name: a, path: a.jsonl, convert: alpaca_to_messages}\n"
    )
    res = curate("validate", "r.yaml", cwd=tmp_path)
    assert res.returncode == 2
    assert "map them: columns: {instruction: <column>, output: <column>}" in res.stderr
    assert curate("validate", "r.yaml", "--no-peek", cwd=tmp_path).returncode == 0


def test_quarantine_limit_fails_with_exit_2_but_keeps_outputs(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"instruction": "q", "output": "a"}\nnope\nnope\n')
    (tmp_path / "r.yaml").write_text(
        f"name: x\noutput: {{kind: sft, dir: {tmp_path / 'runs'}}}\nlimits: {{max_quarantined_fraction: 0.5}}\n"
        "sources:\n  - {name: a, path: a.jsonl, convert: alpaca_to_messages}\n"
    )
    res = curate("run", "r.yaml", "--json", "--local", cwd=tmp_path)
    assert res.returncode == 2
    assert "max_quarantined_fraction" in res.stderr
    assert json.loads(res.stdout)["quarantined"] == 2


def test_help_shows_examples(tmp_path: Path) -> None:
    for args in ([], ["run"], ["refresh"], ["serve"], ["server"], ["validate"], ["converters"], ["schema"]):
        res = curate(*args, "--help", cwd=tmp_path)
        assert res.returncode == 0
        assert "Examples" in res.stdout, args


def test_converters_listing_and_detail(tmp_path: Path) -> None:
    res = curate("converters", cwd=tmp_path)
    assert res.returncode == 0 and "alpaca_to_messages" in res.stdout
    res = curate("converters", "sharegpt_to_messages", cwd=tmp_path)
    assert "field conversations" in res.stdout
    assert curate("converters", "nope", cwd=tmp_path).returncode == 2


def test_schema_command_writes_json_schema(tmp_path: Path) -> None:
    assert curate("schema", "-o", "s.json", cwd=tmp_path).returncode == 0
    schema = json.loads((tmp_path / "s.json").read_text())
    assert "sources" in schema["properties"]
    kind = json.loads(curate("schema", "--kind", "preference", cwd=tmp_path).stdout)
    assert "chosen" in kind["properties"]


def test_structural_and_chain_problems_in_one_report(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "name: x\noutput: {kind: sft, colour: red}\nsources:\n"
        "  - {name: a, path: a.jsonl, convert: sharegpt_to_mesages}\n"
    )
    res = curate("validate", "r.yaml", cwd=tmp_path)
    assert res.returncode == 2
    assert "r.yaml:2: output.colour: unknown key" in res.stderr
    assert "r.yaml:4: sources[0].convert: unknown converter 'sharegpt_to_mesages'" in res.stderr
    assert "did you mean sharegpt_to_messages" in res.stderr
