"""Rank and world size from flags, torchrun/accelerate and Slurm; the split of work."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from mminstruct.errors import MminstructError
from mminstruct.launch import Launch, detect_launch
from mminstruct.resources import shipped_dir


@pytest.mark.parametrize(
    "env,expected",
    [
        ({}, Launch(0, 1, 0, "single")),
        ({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "3"}, Launch(3, 8, 3, "torchrun")),
        (
            {"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1"},
            Launch(5, 16, 1, "slurm"),
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "12",
                "SLURM_ARRAY_TASK_MIN": "10",
                "SLURM_ARRAY_TASK_COUNT": "4",
            },
            Launch(2, 4, 0, "slurm"),
        ),
        (
            {
                **{
                    "SLURM_ARRAY_TASK_ID": "1",
                    "SLURM_ARRAY_TASK_MIN": "0",
                    "SLURM_ARRAY_TASK_COUNT": "3",
                },
                **{"SLURM_PROCID": "1", "SLURM_NTASKS": "2"},
            },
            Launch(3, 6, 0, "slurm"),  # array task 1 of 3, task 1 of 2
        ),
        (  # torchrun inside a Slurm allocation: torchrun's ranks win
            {"RANK": "1", "WORLD_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"},
            Launch(1, 2, 0, "torchrun"),
        ),
    ],
)
def test_detect_from_environment(env, expected):
    assert detect_launch(env=env) == expected


def test_flags_win_over_environment():
    launch = detect_launch(1, 4, env={"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "2"})
    assert launch == Launch(1, 4, 2, "flags")


@pytest.mark.parametrize(
    "args,env,words",
    [
        ((2, 2), {}, "rank 2 is not within world size 2"),
        ((1, None), {}, "give both --rank and --world-size"),
        ((None, None), {"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x' is not an integer"),
        (
            (None, None),
            {"SLURM_PROCID": "4", "SLURM_NTASKS": "4"},
            "rank 4 is not within world size 4",
        ),
    ],
)
def test_bad_launches_are_clear(args, env, words):
    with pytest.raises(MminstructError, match=words):
        detect_launch(*args, env=env)


def test_units_go_round_robin():
    owners = [[u for u in range(10) if Launch(r, 3).owns(u)] for r in range(3)]
    assert owners == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert Launch(2, 3).prefix == "[rank 2/3] " and Launch().prefix == ""


def test_shipped_launch_files():
    folder = shipped_dir("configs") / "launch"
    accelerate = yaml.safe_load((folder / "accelerate.yaml").read_text())
    assert accelerate["num_processes"] >= 1 and accelerate["distributed_type"] == "MULTI_GPU"
    sbatch = (folder / "slurm.sbatch").read_text()
    for name in ("accelerate.yaml", "slurm.sbatch"):
        text = (folder / name).read_text()
        run_line = next(line for line in text.splitlines() if line.startswith("# Run: "))
        assert f"configs/launch/{name} " in run_line  # each file names its exact command
    assert "srun mminstruct build" in sbatch and "#SBATCH --signal=TERM" in sbatch
    assert subprocess.run(["bash", "-n", str(folder / "slurm.sbatch")]).returncode == 0
