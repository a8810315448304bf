"""Beyond one GPU: launch the same entry point through ``accelerate launch`` with DDP, FSDP or DeepSpeed.

A recipe's ``distributed:`` section becomes an accelerate config file (starting from TRL's shipped
presets in ``trl/accelerate_configs``: fsdp1/fsdp2, zero1/zero2/zero3, multi_gpu) with the process
counts, rendezvous address and mixed precision filled in; ``curate train`` then runs
``accelerate launch --config_file CONFIG -m train.worker RECIPE RUN_DIR`` and every worker trains
the recipe with the distributed section ignored. ``cpu: true`` runs the processes on CPU with the
gloo backend (how this is tested without GPUs).

Multi-node: run the same ``curate train`` on every machine with ``machine_rank`` set per machine;
the command it runs is printed first (``[train] accelerate launch ...``) and kept in the run folder
(``launch.sh``, beside ``accelerate_config.json``) to adapt to a scheduler.

Example:
    >>> from schemas.train_recipe import DistributedSpec
    >>> cfg = accelerate_config(DistributedSpec(strategy="deepspeed", preset="zero3", num_processes=16,
    ...                                         num_machines=2, main_process_ip="10.0.0.1", mixed_precision="bf16"))
    >>> cfg["distributed_type"], cfg["deepspeed_config"]["zero_stage"], cfg["num_processes"], cfg["num_machines"]
    ('DEEPSPEED', 3, 16, 2)
    >>> accelerate_config(DistributedSpec(cpu=True))["distributed_type"]
    'MULTI_CPU'
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from schemas.train_recipe import DistributedSpec
from schemas.train_recipe_loader import LoadedTrainRecipe

DEFAULT_PRESET = {"ddp": "multi_gpu", "fsdp": "fsdp2", "deepspeed": "zero2"}


def preset_path(name: str) -> Path:
    """The TRL accelerate preset file ``name`` (multi_gpu, fsdp1, fsdp2, zero1, zero2, zero3)."""
    import importlib.util

    spec = importlib.util.find_spec("trl")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "accelerate_configs" / f"{name}.yaml"


def accelerate_config(d: DistributedSpec) -> dict[str, Any]:
    """The accelerate config (as a dict) for a recipe's ``distributed:`` section."""
    from ruamel.yaml import YAML

    name = DEFAULT_PRESET[d.strategy] if d.preset == "default" else d.preset
    cfg: dict[str, Any] = dict(YAML(typ="safe").load(preset_path(name).read_text(encoding="utf-8")))
    cfg.update(
        num_processes=d.num_processes,
        num_machines=d.num_machines,
        machine_rank=d.machine_rank,
        main_process_port=d.main_process_port,
        mixed_precision=d.mixed_precision,
    )
    if d.main_process_ip:
        cfg["main_process_ip"] = d.main_process_ip
    if d.cpu:
        # torch.distributed with gloo on CPU processes
        cfg.update(distributed_type="MULTI_CPU", use_cpu=True, mixed_precision="no")
        cfg.pop("gpu_ids", None)
    return cfg


def write_config(d: DistributedSpec, path: Path) -> Path:
    """Write the accelerate config for ``d`` to ``path`` (JSON: accelerate reads YAML 1.1, where a bare
    ``no`` is a boolean, so JSON keeps 'no' a string)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(accelerate_config(d), indent=2), encoding="utf-8")
    return path


def launch_command(d: DistributedSpec, config: Path, recipe_file: str, run_dir: Path) -> list[str]:
    """The command line that runs the recipe in every process.

    GPUs: ``accelerate launch --config_file CONFIG``. CPU (gloo): accelerate hands multi-process CPU
    runs to ``mpirun``, which is rarely installed, so they go through ``torchrun`` (what accelerate's
    GPU launcher uses underneath); the workers' accelerate state then picks gloo from the environment.
    """
    worker = ["-m", "train.worker", recipe_file, str(run_dir)]
    if d.cpu:
        per_node = max(d.num_processes // d.num_machines, 1)
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={per_node}",
            f"--nnodes={d.num_machines}",
            f"--node_rank={d.machine_rank}",
            f"--master_addr={d.main_process_ip or '127.0.0.1'}",
            f"--master_port={d.main_process_port}",
        ]
        return cmd + worker
    accelerate = Path(sys.executable).with_name("accelerate")
    return [str(accelerate), "launch", "--config_file", str(config), *worker]


def launch_recipe(
    doc: LoadedTrainRecipe, run_dir: Path | None = None, lifecycle: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Path]:
    """Launch ``doc`` through accelerate and wait; returns the manifest the workers wrote, and the run folder.

    ``lifecycle``: the lifecycle run's lineage, handed to the workers (they record it in the manifest).
    """
    import json

    from train.common import LINEAGE_ENV, WORKER_ENV, new_run_dir

    assert doc.recipe.distributed is not None
    run_dir = run_dir or new_run_dir(doc.recipe)
    cfg = write_config(doc.recipe.distributed, run_dir / "accelerate_config.json")
    recipe_copy = run_dir / "recipe.yaml"  # the workers read the recipe exactly as launched
    recipe_copy.write_text(doc.text, encoding="utf-8")
    cmd = launch_command(doc.recipe.distributed, cfg, str(recipe_copy), run_dir)
    print("[train] " + shlex.join(cmd), file=sys.stderr, flush=True)
    (run_dir / "launch.sh").write_text(shlex.join(cmd) + "\n", encoding="utf-8")
    env = {**os.environ, WORKER_ENV: "1", **({LINEAGE_ENV: json.dumps(lifecycle)} if lifecycle else {})}
    proc = subprocess.run(cmd, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"accelerate launch exited with {proc.returncode} (see the worker output above)")
    return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8")), run_dir
