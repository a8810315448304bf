"""`curate models` registry commands through the real CLI app (typer's runner): exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from train.registry import read_alias

from .conftest import SAFE_FIGURES, save_eval

GATE_YAML = Path(__file__).resolve().parents[3] / "recipes" / "gates" / "default.yaml"


def curate(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["models", *args])
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def two_versions(root, make_run):
    """chat@1 (champion, loss 2.0) and chat@2 (loss 1.8, wins the judge against chat@1)."""
    r1, r2 = make_run("chat", "r1", register=False), make_run("chat", "r2", register=False)
    save_eval(r1, {**SAFE_FIGURES, "heldout_loss": (2.0, 1.9, 2.1, False)})
    save_eval(r2, {**SAFE_FIGURES, "heldout_loss": (1.8, 1.7, 1.9, False)})
    save_eval(r2, {"judge_win_rate": (0.7, 0.6, 0.8, True)}, against="chat@1")
    return r1, r2


def test_register_promote_gate_history_rollback(root, two_versions):
    code, out, _ = curate("list", "--root", str(root), "--json")
    assert code == 0 and [m["version"] for m in json.loads(out)] == [None, None]
    code, out, _ = curate("register", "--all", "--root", str(root), "--json")
    assert code == 0 and [d["version"] for d in json.loads(out)] == ["chat@1", "chat@2"]
    listed = json.loads(curate("list", "--root", str(root), "--json")[1])
    assert {m["run_id"]: m["version"] for m in listed} == {"r1": "chat@1", "r2": "chat@2"}

    code, out, _ = curate("promote", "chat@1", "--gate", str(GATE_YAML), "--root", str(root), "--why", "first")
    assert code == 0 and "no chat@champion yet: floors only" in out and "chat@champion -> chat@1" in out

    code, out, _ = curate("gate", str(GATE_YAML), "chat@2", "--root", str(root))
    assert code == 0 and "pass  win_rate_ci" in out
    assert read_alias(root, "chat", "champion") == 1  # `gate` moves nothing

    code, out, _ = curate("promote", "chat@2", "--gate", str(GATE_YAML), "--root", str(root), "--why", "better")
    assert code == 0 and "chat@champion -> chat@2 (was chat@1)" in out
    code, out, _ = curate("show", "chat@champion", "--root", str(root), "--json")
    assert json.loads(out)["version"] == "chat@2" and json.loads(out)["aliases"] == ["champion"]

    code, out, _ = curate("rollback", "chat", "--root", str(root), "--why", "regression")
    assert code == 0 and out.strip() == "chat@champion -> chat@1 (was chat@2)"
    code, out, _ = curate("history", "chat", "--root", str(root))
    assert code == 0
    assert "chat@1" in out and "[champion]" in out and "rollback" in out and ": regression" in out
    assert out.count("promoted") == 2
    hist = json.loads(curate("history", "chat", "--root", str(root), "--json")[1])
    assert [e["action"] for e in hist["log"]] == ["promote", "promote", "rollback"]


def test_refused_promotion_exits_2_and_is_recorded(root, two_versions, make_run):
    curate("register", "--all", "--root", str(root))
    curate("promote", "chat@2", "--root", str(root))  # no gate: moved on request
    code, out, err = curate("promote", "chat@1", "--gate", str(GATE_YAML), "--root", str(root))
    assert code == 2
    assert "FAIL  change:heldout_loss" in out and "FAIL  win_rate_ci" in out
    assert "not promoted: the gate refused chat@1" in err
    assert read_alias(root, "chat", "champion") == 2
    hist = json.loads(curate("history", "chat", "--root", str(root), "--json")[1])
    assert [d["promoted"] for d in hist["decisions"]] == [True, False]


def test_compare_side_by_side_with_win_rate(root, two_versions):
    curate("register", "--all", "--root", str(root))
    code, out, _ = curate("compare", "chat@1", "chat@2", "--root", str(root), "--json")
    c = json.loads(out)
    rows = {r["metric"]: r for r in c["rows"]}
    assert rows["heldout_loss"]["better"] == "B" and rows["refusal_rate"]["better"] == "tie"
    assert rows["heldout_loss"]["a"]["ci_low"] == 1.9 and rows["heldout_loss"]["sets"] == ["chat@1"]
    assert c["win_rate"]["value"] == pytest.approx(0.3) and c["win_rate"]["ci_low"] == pytest.approx(0.2)
    assert "flipped" in c["win_rate_from"]
    code, out, _ = curate("compare", "chat@2", "chat@1", "--root", str(root))
    assert code == 0 and "heldout_loss" in out and "paired judge_win_rate of A against B: 0.7 [0.6, 0.8]" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "chat@9"], "no version chat@9"),
        (["promote", "chat@1", "--alias", "latest"], "invalid alias 'latest'"),
        (["rollback", "chat"], "nothing to roll back to: chat@champion is not set"),
        (["history", "nope"], "no trained model named 'nope'"),
        (["show", "chat@challenger"], "no alias chat@challenger"),
        (["compare", "chat@1", "nope@1"], "no trained model named 'nope'"),
        (["register", "chat/none"], "no run 'chat/none'"),
        (["register"], "give run folders to register, or --all"),
    ],
)
def test_expected_failures_exit_2_with_a_message(root, make_run, args, message):
    make_run("chat", "r1")
    code, out, err = curate(*args, "--root", str(root))
    assert code == 2 and message in err, (out, err)


def test_invalid_gate_file_exits_2_with_lines(root, make_run, tmp_path):
    make_run("chat", "r1")
    bad = tmp_path / "gate.yaml"
    bad.write_text("gate:\n  floors: {bleu: {min: high}}\n")
    code, _, err = curate("promote", "chat@1", "--gate", str(bad), "--root", str(root))
    assert code == 2 and "gate file invalid: 1 problem(s)" in err and f"{bad}:2: gate.floors.bleu.min" in err
    assert read_alias(root, "chat", "champion") is None
    assert curate("gate", str(GATE_YAML))[0] == 0


def test_export_refuses_a_non_empty_folder(root, make_run, tmp_path):
    make_run("chat", "r1")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    code, _, err = curate("export", "chat@1", "--to", str(tmp_path / "full"), "--root", str(root))
    assert code == 2 and "exists and is not empty" in err
    assert (tmp_path / "full" / "x").read_text() == "keep me"


def test_curate_validate_checks_gate_files(tmp_path):
    ok = CliRunner().invoke(app, ["validate", str(GATE_YAML), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["gate"]["floors"]["refusal_rate"] == {"min": 0.8, "max": None}
    bad = tmp_path / "gate.yaml"
    bad.write_text("gate:\n  against_champion:\n    bleu: {min_change: lots}\n")
    r = CliRunner().invoke(app, ["validate", str(bad)])
    assert r.exit_code == 2 and f"{bad}:3: gate.against_champion.bleu.min_change" in r.stderr
