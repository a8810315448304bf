"""Evaluation end to end through the real CLI: a model trained by `curate train` (with an `eval:`
section) scores lower held-out loss than its base on the eval split; a leaked eval row is found,
excluded and reported; reports land in the manifest, the card and evaluations/; errors exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from schemas.kinds import MESSAGES

pytestmark = pytest.mark.integration

CURATE = Path(sys.executable).with_name("curate")
WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "lemon",
    "piano",
    "candle",
    "garden",
    "rocket",
    "silver",
    "forest",
]
TRAIN_ASK = ["Repeat the word {w} three times.", "Say {w} three times, please.", "Write {w} thrice."]
EVAL_ASK = ["Could you echo {w} three times over?", "Three times in a row, type {w}."]


def cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    return subprocess.run([str(CURATE), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _row(i: str, ask: str, w: str, split: str) -> dict[str, object]:
    msgs = [{"role": "user", "content": ask.format(w=w)}, {"role": "assistant", "content": f"{w} {w} {w}."}]
    return {"id": i, "messages": msgs, "split": split}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A store with `echo`: 36 train rows, 8 eval rows worded differently, and 1 eval row copied from train."""
    from curate.store import Store

    rows = [_row(f"t{k}-{w}", a, w, "train") for w in WORDS for k, a in enumerate(TRAIN_ASK)]
    rows += [_row(f"e{k}-{w}", a, w, "eval") for w in WORDS[:4] for k, a in enumerate(EVAL_ASK)]
    rows.append(_row("leak", TRAIN_ASK[0], "apple", "eval"))  # the model trains on exactly this prompt
    df = pl.DataFrame(rows, schema={"id": pl.String, "messages": MESSAGES, "split": pl.String})
    Store(tmp_path / "store").publish("echo", df, {"kind": "sft"})
    return tmp_path


def test_trained_model_beats_its_base_and_leaks_are_excluded(workdir: Path, tiny_model: Path) -> None:
    (workdir / "sft.yaml").write_text(
        f"name: echo-sft\nmodel: {{base: {tiny_model}}}\n"
        "dataset: {ref: echo@latest, store: store}\nmethod: sft\n"
        "adapter: {type: lora, r: 8, alpha: 16, dropout: 0.0}\n"
        "training: {max_steps: 40, batch_size: 4, max_length: 64, learning_rate: 0.01, assistant_only_loss: true}\n"
        "output: {dir: models}\n"
        "eval: {metrics: [heldout_loss], bootstrap: 200}\n"
    )
    trained = cli("train", "sft.yaml", cwd=workdir)
    assert trained.returncode == 0, trained.stderr
    run = next((workdir / "models" / "echo-sft").glob("2*"))
    manifest = json.loads((run / "manifest.json").read_text())
    [ev] = manifest["evaluations"]  # the recipe's eval: ran after training
    assert ev["sets"][0]["leaked"] == 1 and ev["sets"][0]["scored"] == 8
    assert ev["sets"][0]["leaked_examples"][0]["id"] == "leak"
    assert "## Evaluation" in (run / "README.md").read_text()
    assert (run / "evaluations" / "loss_curve.png").is_file()

    r = cli(
        "eval",
        str(tiny_model),
        "echo-sft",
        "--on",
        "echo@latest",
        "--store",
        "store",
        "--metrics",
        "heldout_loss",
        "--runs-root",
        "models",
        "--chart",
        "chart.png",
        "--json",
        cwd=workdir,
    )
    assert r.returncode == 0, r.stderr
    base, tuned = json.loads(r.stdout)["reports"]
    loss = {rep["model"]: next(v for v in rep["metrics"] if v["metric"] == "heldout_loss") for rep in (base, tuned)}
    assert loss["echo-sft"]["value"] < loss[str(tiny_model)]["value"]
    assert loss["echo-sft"]["ci_high"] < loss[str(tiny_model)]["ci_low"]  # apart beyond their intervals
    assert base["sets"][0]["leaked"] == 0 and base["sets"][0]["checked_against"] is None  # base: data unknown
    assert tuned["sets"][0]["leaked"] == 1
    assert (workdir / "chart.png").is_file()
    assert len(list((run / "evaluations").glob("*.json"))) == 2


def test_errors_name_the_field(workdir: Path, tiny_model: Path) -> None:
    wrong_kind = cli(
        "eval", str(tiny_model), "--on", "echo@latest", "--store", "store", "--metrics", "logprob_win_rate", cwd=workdir
    )
    assert wrong_kind.returncode == 2 and "logprob_win_rate scores preference records, not sft" in wrong_kind.stderr
    no_set = cli("eval", str(tiny_model), "--metrics", "heldout_loss", cwd=workdir)
    assert no_set.returncode == 2 and "eval.on:" in no_set.stderr
    unknown = cli(
        "eval", str(tiny_model), "--on", "nope@1", "--store", "store", "--metrics", "heldout_loss", cwd=workdir
    )
    assert unknown.returncode == 2 and "eval.on:" in unknown.stderr
    (workdir / "bad.yaml").write_text("name: x\nmodels: [a]\neval: {metrics: [bleuu]}\n")
    bad = cli("eval", "bad.yaml", cwd=workdir)
    assert bad.returncode == 2 and "bad.yaml:3" in bad.stderr
