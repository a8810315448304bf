"""Annotation config validation, recipe wiring, and server housekeeping that needs no server."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from curate.annotate.client import resolve
from curate.annotate.progress import AnnotationTimeout, wait_until_complete
from curate.annotate.server import ArgillaHome, ServerError
from schemas.annotation import AnnotationSpec
from schemas.recipe_loader import RecipeError, load_recipe_text

RECIPE = "name: r\noutput: {kind: preference}\nsources:\n  - {name: a, path: a.jsonl, convert: hh_rlhf_to_preference}\n"


def test_spec_defaults_and_errors() -> None:
    spec = AnnotationSpec()
    assert spec.required == ["ranking"] and spec.min_submitted == 1
    assert AnnotationSpec(questions=["ratings", "rationale"]).required == ["ratings"]
    with pytest.raises(ValidationError, match="at least one of ranking, label, ratings"):
        AnnotationSpec(questions=["rationale"])
    with pytest.raises(ValidationError, match="required: label not in questions"):
        AnnotationSpec(questions=["ranking"], required=["label"])
    with pytest.raises(ValidationError):
        AnnotationSpec(colour="red")


def test_recipe_annotation_section() -> None:
    recipe = load_recipe_text(RECIPE + "annotation: {min_submitted: 2, aggregate: {rule: majority}}\n")
    assert recipe.annotation is not None and recipe.annotation.aggregate.rule == "majority"
    with pytest.raises(RecipeError) as e:
        load_recipe_text(RECIPE.replace("preference", "sft") + "annotation: {}\n")
    assert "needs output.kind: preference" in str(e.value)
    with pytest.raises(RecipeError) as e:
        load_recipe_text(RECIPE + "annotation: {aggregate: {rule: vote}}\n")
    assert "annotation.aggregate.rule" in str(e.value)


def test_credentials_are_private_and_stable(tmp_path: Path) -> None:
    home = ArgillaHome(tmp_path / "home", venv=tmp_path / "venv")
    creds = home.credentials(create=True)
    assert creds is not None and len(creds.password) >= 20 and creds.api_key.startswith("curate.")
    assert stat.S_IMODE(os.stat(home.credentials_file).st_mode) == 0o600
    assert home.credentials(create=True) == creds and home.auth_secret() == home.auth_secret()
    assert stat.S_IMODE(os.stat(home.path / "auth_secret").st_mode) == 0o600
    assert creds.password not in repr(creds) and creds.api_key not in repr(creds)
    assert home.status() == {"home": str(home.path), "running": False, "venv_ready": False}
    assert home.down() is False


def test_sweep_removes_temp_dirs_of_dead_processes(tmp_path: Path) -> None:
    home = ArgillaHome(tmp_path)
    (home.tmp / "999999999").mkdir(parents=True)  # no such pid
    (home.tmp / str(os.getpid())).mkdir()  # alive: kept
    assert home.sweep_tmp() == 1
    assert [p.name for p in home.tmp.iterdir()] == [str(os.getpid())]


def test_client_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    with pytest.raises(ServerError, match="curate argilla up"):
        resolve(tmp_path)
    monkeypatch.setenv("ARGILLA_API_URL", "http://argilla.example:6900/")
    with pytest.raises(ServerError, match="ARGILLA_API_KEY is not set"):
        resolve(tmp_path)
    monkeypatch.setenv("ARGILLA_API_KEY", "secret-key")
    conn = resolve(tmp_path)
    assert (conn.url, conn.source) == ("http://argilla.example:6900", "env") and "secret-key" not in repr(conn)


def test_wait_until_complete_polls_and_times_out() -> None:
    now = [0.0]
    seen = iter([{"total": 3, "completed": 0}, {"total": 3, "completed": 2}, {"total": 3, "completed": 3}])
    state = wait_until_complete(
        lambda: next(seen), poll_s=5, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0]
    )
    assert state["completed"] == 3 and now[0] == 10
    with pytest.raises(AnnotationTimeout) as e:
        wait_until_complete(
            lambda: {"total": 3, "completed": 1},
            min_completed=2,
            timeout_s=12,
            poll_s=5,
            sleep=lambda s: now.__setitem__(0, now[0] + s),
            clock=lambda: now[0],
        )
    assert e.value.progress["completed"] == 1 and "1 of 2" in str(e.value)


def test_read_source_from_run_folder_or_store(tmp_path: Path) -> None:
    import polars as pl

    from curate.annotate.push import PushError
    from curate.annotate.steps import read_source
    from curate.store import Store

    (tmp_path / "runs" / "p" / "latest" / "data").mkdir(parents=True)
    df = pl.DataFrame({"id": ["a"], "text": ["x"]})
    df.write_parquet(tmp_path / "runs" / "p" / "latest" / "data" / "part-00000.parquet")
    got, label = read_source(run_dir=tmp_path / "runs" / "p" / "latest")
    assert got.equals(df) and label.startswith("run:")
    Store(tmp_path / "store").publish("p", df.with_columns(pl.lit("train").alias("split")), {"kind": "text"})
    got, label = read_source(ref="p@latest", store=tmp_path / "store")
    assert label == "p@1" and got.height == 1
    with pytest.raises(PushError, match="exactly one source"):
        read_source()
    with pytest.raises(PushError, match="no Parquet files"):
        read_source(run_dir=tmp_path / "nowhere")


def test_cli_without_a_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    runner = CliRunner()
    home = str(tmp_path / "home")
    status = runner.invoke(app, ["argilla", "status", "--home", home])
    assert status.exit_code == 2 and "not running" in status.output
    assert runner.invoke(app, ["argilla", "password", "--home", home]).exit_code == 2
    creds = ArgillaHome(home).credentials(create=True)
    assert creds is not None
    shown = runner.invoke(app, ["argilla", "password", "--home", home])
    assert shown.exit_code == 0 and shown.output.strip() == creds.password
    assert runner.invoke(app, ["argilla", "password", "--api-key", "--home", home]).output.strip() == creds.api_key
    push = runner.invoke(app, ["annotate", "push", "--from", "x@1", "--store", str(tmp_path), "--home", home])
    assert push.exit_code == 2
    pull = runner.invoke(app, ["annotate", "pull", "--dataset", "x", "--rule", "vote", "--home", home])
    assert pull.exit_code == 2 and "aggregate.rule" in pull.output
    assert "curate argilla up" in runner.invoke(app, ["argilla", "--help"]).output
