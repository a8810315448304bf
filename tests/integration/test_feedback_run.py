"""AI feedback recipes through the real CLI on a real tiny model: publish, rerun free, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from curate.store import Store

pytestmark = pytest.mark.integration

CURATE = [sys.executable, "-m", "curate.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}

RECIPE = """
name: judged
output: {{kind: {kind}, dir: {tmp}/runs}}
sources:
  - {{name: prompts, path: prompts.jsonl, convert: text}}
stages:
  - {{type: exact_dedup}}
feedback:
  input_kind: text
  generators:
    - {{name: tiny, model: {model}, n: 2, max_new_tokens: {tokens}, temperature: 1.0, batch_size: 4}}
  judge: {{kind: rating, model: {model}, max_new_tokens: 2, aspects: {{helpfulness: "fully helpful"}}}}
publish: {{store: {tmp}/store, splits: {{eval: 0.0}}}}
"""


def curate(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CURATE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)


def _project(tmp: Path, model: Path, n: int, kind: str = "preference", tokens: int = 8) -> Path:
    lines = [json.dumps({"text": f"Question number {i}: name a thing."}) for i in range(n)]
    lines += [lines[0], json.dumps({"text": ""}), "{broken"]  # a duplicate, an empty prompt, a bad row
    (tmp / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    recipe = tmp / "recipe.yaml"
    recipe.write_text(RECIPE.format(tmp=tmp, model=model, kind=kind, tokens=tokens))
    return recipe


def test_feedback_recipe_publishes_judged_pairs_and_reruns_without_model_calls(tiny_lm: Path, tmp_path: Path) -> None:
    _project(tmp_path, tiny_lm, 8)
    res = curate("run", "recipe.yaml", "--local", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads(res.stdout)
    assert s["balanced"] and (s["input_rows"], s["duplicates"], s["quarantined"]) == (11, 1, 2)
    fb = s["feedback"]
    # the empty prompt and the broken row were quarantined at ingest; the duplicate removed by the stage
    assert fb["balanced"] and fb["prompts_in"] == s["output_records"] == 8
    assert fb["model_calls"] > 0 and fb["cache_hit_rate"] == 0.0
    assert fb["records_out"] == fb["outcomes"]["pairs"] >= 1
    run_dir = Path(s["outputs"]["dir"])
    assert "## AI feedback" in (run_dir / "report.md").read_text() and (run_dir / "feedback.png").exists()
    assert pl.read_parquet(run_dir / "judgements.parquet").height == 8
    store = Store(tmp_path / "store")
    m = store.manifest("judged@1")
    assert m["feedback"]["judge"]["kind"] == "rating" and m["feedback"]["generators"][0]["name"] == "tiny"
    assert m["feedback"]["judge"]["model"].startswith(f"{tiny_lm} prompt:")
    df = store.read("judged@1")
    assert df.height == fb["records_out"]
    assert set(df["judge"].struct.field("kind")) == {"ai"} and df["source"].struct.field("uri").is_not_null().all()

    # the same recipe again: the feedback step is cached, no model is called, nothing new is published
    again = json.loads(curate("run", "recipe.yaml", "--local", "--json", cwd=tmp_path).stdout)
    assert again["feedback"]["model_calls"] == 0 and again["feedback"]["parts_reused"] == again["feedback"]["parts"]
    assert again["published"]["created"] is False

    # a changed judge rubric: generation comes from the request cache, only judging runs again
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace('"fully helpful"', '"fully correct"'))
    third = json.loads(curate("run", "recipe.yaml", "--local", "--json", cwd=tmp_path).stdout)["feedback"]
    assert third["cache_hits"] == 8 * 2  # every candidate; each rating request is new
    assert third["model_calls"] == third["candidates"] - third["candidate_failures"]


def test_kto_output(tiny_lm: Path, tmp_path: Path) -> None:
    _project(tmp_path, tiny_lm, 4, kind="kto")
    res = curate("run", "recipe.yaml", "--local", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads(res.stdout)
    df = pl.read_parquet(Path(s["outputs"]["dir"]) / "data")
    assert s["kind"] == "kto" and df.height == s["feedback"]["records_out"]
    assert df["label"].sum() == s["feedback"]["outcomes"]["pairs"]


def test_validate_names_the_kind_problems(tiny_lm: Path, tmp_path: Path) -> None:
    recipe = _project(tmp_path, tiny_lm, 2)
    recipe.write_text(recipe.read_text().replace("kind: preference", "kind: sft"))
    res = curate("validate", "recipe.yaml", cwd=tmp_path)
    assert res.returncode == 2 and "needs output.kind: preference or kto" in res.stderr
    recipe.write_text(
        recipe.read_text().replace("kind: sft", "kind: preference").replace("input_kind: text", "input_kind: sft")
    )
    res = curate("validate", "recipe.yaml", cwd=tmp_path)
    assert res.returncode == 2 and "produces text records, but feedback.input_kind is sft" in res.stderr
    recipe.write_text(recipe.read_text().replace("input_kind: sft", "input_kind: text").replace(str(tiny_lm), "./nope"))
    res = curate("validate", "recipe.yaml", cwd=tmp_path)
    assert res.returncode == 2 and "feedback.generators[0].model: ./nope does not exist" in res.stderr
    assert "feedback.judge.model: ./nope does not exist" in res.stderr


def _cached(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as c:
            return int(c.execute("SELECT COUNT(*) FROM completions").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_killed_run_resumes_from_the_request_cache(tiny_lm: Path, tmp_path: Path) -> None:
    # enough prompts that the run is still generating when the first chunk of answers is committed
    _project(tmp_path, tiny_lm, 48, tokens=16)
    db = tmp_path / "runs" / ".work" / "feedback-cache.sqlite"
    proc = subprocess.Popen(
        [*CURATE, "run", "recipe.yaml", "--local", "--json"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while _cached(db) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    paid = _cached(db)
    assert paid > 0
    assert not (tmp_path / "store" / "judged").exists() or not Store(tmp_path / "store").versions("judged")

    res = curate("run", "recipe.yaml", "--local", "--json", cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    fb = json.loads(res.stdout)["feedback"]
    # everything answered before the kill came from the cache; the model saw only the rest
    assert fb["cache_hits"] >= paid and fb["model_calls"] == fb["cache_misses"]
    assert fb["balanced"] and fb["prompts_in"] == 48


def test_calibration_gate_runs_before_generation(tiny_lm: Path, tmp_path: Path) -> None:
    recipe = _project(tmp_path, tiny_lm, 4)
    pairs = [
        {"prompt": f"Question {i}?", "chosen": f"A careful answer to question {i}.", "rejected": "No."}
        for i in range(5)
    ]
    # the same text on both sides: any judge scores it a tie, so agreement cannot reach 1.0
    pairs.append({"prompt": "Question 5?", "chosen": "Same.", "rejected": "Same."})
    (tmp_path / "human.jsonl").write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    text = recipe.read_text().replace(
        "publish:", "  calibration: {data: human.jsonl, limit: 6, min_agreement: BAR}\npublish:"
    )
    recipe.write_text(text.replace("BAR", "1.0"))
    res = curate("run", "recipe.yaml", "--local", "--json", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "judge calibration" in res.stderr and "below calibration.min_agreement 1.0" in res.stderr
    # only the judge's requests were made: nothing was generated, nothing published
    assert _cached(tmp_path / "runs" / ".work" / "feedback-cache.sqlite") <= 12
    assert not (tmp_path / "runs" / "judged").exists() and not (tmp_path / "store").exists()

    recipe.write_text(text.replace("BAR", "0.0"))
    res = curate("run", "recipe.yaml", "--local", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    s = json.loads(res.stdout)
    cal = s["feedback"]["calibration"]
    assert cal["passed"] is True and cal["n"] == 6 and cal["agreement"]["value"] < 1.0
    assert cal["agreement"]["ci95"] is not None and cal["length_baseline"]["agreement"]["value"] > 0.5
    assert (Path(s["outputs"]["dir"]) / "calibration.md").exists()
    assert Store(tmp_path / "store").manifest("judged@1")["feedback"]["calibration"]["n"] == 6


def test_prompts_from_a_published_version(tiny_lm: Path, tmp_path: Path) -> None:
    """`dataset: chat@1` reads a published version's files; its pairs trace back to them."""
    from schemas.kinds import MESSAGES

    msgs = [
        [{"role": "user", "content": f"Name thing {i}."}, {"role": "assistant", "content": f"Thing {i}."}]
        for i in range(3)
    ]
    Store(tmp_path / "store").publish(
        "chat",
        pl.DataFrame(
            {"id": ["a", "b", "c"], "messages": msgs, "split": ["train"] * 3},
            schema={"id": pl.String, "messages": MESSAGES, "split": pl.String},
        ),
        {"kind": "sft"},
    )
    recipe = _project(tmp_path, tiny_lm, 1)
    text = recipe.read_text().replace(
        "- {name: prompts, path: prompts.jsonl, convert: text}",
        f"- {{name: chat, dataset: chat@1, store: {tmp_path}/store, convert: openai_messages}}",
    )
    recipe.write_text(text.replace("input_kind: text", "input_kind: sft"))
    res = curate("run", "recipe.yaml", "--local", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads(res.stdout)
    # each prompt's own reply competes with the two generated candidates
    assert s["feedback"]["prompts_in"] == 3 and s["feedback"]["candidates"] == 9
    pairs = Store(tmp_path / "store").read("judged@1")
    assert pairs["source"].struct.field("uri").str.contains("/store/chat/table/").all()
    missing = curate("validate", "recipe.yaml", cwd=tmp_path, timeout=120)
    assert missing.returncode == 0
    recipe.write_text(recipe.read_text().replace("chat@1", "chat@7"))
    missing = curate("validate", "recipe.yaml", cwd=tmp_path, timeout=120)
    assert missing.returncode == 2 and "sources[0].dataset: chat has no version 7" in missing.stderr


def test_a_published_preference_version_is_rejudged(tiny_lm: Path, tmp_path: Path) -> None:
    """`dataset: prefs@1, convert: preference`: the pairs of a published version, re-judged by AI."""
    from schemas.kinds import MESSAGES

    def m(role: str, text: str) -> list[dict[str, str]]:
        return [{"role": role, "content": text}]

    prefs = pl.DataFrame(
        {
            "id": ["p0", "p1"],
            "prompt": [m("user", "Name a colour."), m("user", "Name a fruit.")],
            "chosen": [m("assistant", "Blue."), m("assistant", "Apple.")],
            "rejected": [m("assistant", "A long story about nothing."), m("assistant", "Car.")],
            "split": ["train", "train"],
        },
        schema={"id": pl.String, "prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "split": pl.String},
    )
    Store(tmp_path / "store").publish("prefs", prefs, {"kind": "preference"})
    recipe = _project(tmp_path, tiny_lm, 1)
    text = recipe.read_text().replace(
        "- {name: prompts, path: prompts.jsonl, convert: text}",
        f"- {{name: prefs, dataset: prefs@1, store: {tmp_path}/store, convert: preference}}",
    )
    recipe.write_text(
        text.replace("input_kind: text", "input_kind: preference").replace("  generators:\n", "  generators: []\n#")
    )
    res = curate("run", "recipe.yaml", "--local", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    fb = json.loads(res.stdout)["feedback"]
    # no generators: each pair's own two answers are the candidates, judged again
    assert fb["prompts_in"] == 2 and fb["candidates"] == 4 and fb["balanced"]
