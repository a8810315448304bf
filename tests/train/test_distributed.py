"""`distributed:` recipes: accelerate configs from TRL's presets, launch commands, and a real 2-process
CPU (gloo) SFT run through the launcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.train_recipe import DistributedSpec
from train.distributed import accelerate_config, launch_command, write_config
from train.run import train_recipe


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"strategy": "ddp", "num_processes": 8}, {"distributed_type": "MULTI_GPU", "num_processes": 8}),
        ({"strategy": "fsdp"}, {"distributed_type": "FSDP"}),
        ({"strategy": "fsdp", "preset": "fsdp1"}, {"distributed_type": "FSDP"}),
        ({"strategy": "deepspeed", "preset": "zero1"}, {"distributed_type": "DEEPSPEED"}),
        (
            {
                "strategy": "deepspeed",
                "num_processes": 16,
                "num_machines": 2,
                "machine_rank": 1,
                "main_process_ip": "10.1.2.3",
                "mixed_precision": "bf16",
            },
            {
                "distributed_type": "DEEPSPEED",
                "num_processes": 16,
                "num_machines": 2,
                "machine_rank": 1,
                "main_process_ip": "10.1.2.3",
                "mixed_precision": "bf16",
            },
        ),
        ({"cpu": True}, {"distributed_type": "MULTI_CPU", "use_cpu": True, "mixed_precision": "no"}),
    ],
)
def test_accelerate_config(spec, expected):
    cfg = accelerate_config(DistributedSpec(**spec))
    assert {k: cfg[k] for k in expected} == expected
    if spec.get("strategy") == "fsdp":
        assert cfg["fsdp_config"]["fsdp_version"] == (1 if spec.get("preset") == "fsdp1" else 2)
    if spec.get("strategy") == "deepspeed":
        assert cfg["deepspeed_config"]["zero_stage"] == (1 if spec.get("preset") == "zero1" else 2)


def test_config_file_and_commands(tmp_path: Path):
    spec = DistributedSpec(strategy="fsdp", num_processes=4)
    path = write_config(spec, tmp_path / "acc.json")
    assert json.loads(path.read_text())["mixed_precision"] == "no"  # a string, not YAML 1.1's boolean
    cmd = launch_command(spec, path, "r.yaml", tmp_path)
    assert cmd[1:4] == ["launch", "--config_file", str(path)] and cmd[-4:] == [
        "-m",
        "train.worker",
        "r.yaml",
        str(tmp_path),
    ]
    cpu = launch_command(DistributedSpec(cpu=True, num_processes=2), path, "r.yaml", tmp_path)
    assert "torch.distributed.run" in cpu and "--nproc_per_node=2" in cpu


@pytest.mark.integration
def test_two_process_cpu_sft(train_doc, tmp_path):
    dist = "distributed: {strategy: ddp, num_processes: 2, cpu: true, main_process_port: 29517}\n"
    doc = train_doc("sft", extra=dist)
    outcome = train_recipe(doc, run_dir=tmp_path / "run")
    m = outcome.manifest
    assert m["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").exists()
    # 10 train rows split over 2 processes = 3 batches of 2 each per epoch, so 3 steps make one epoch
    # (one process would need 5 steps per epoch: 0.6)
    assert m["metrics"]["epoch"] == pytest.approx(1.0)
