"""Which process am I? Rank and world size from the launcher, or from flags.

Precedence: `--rank/--world-size` flags, then torchrun / accelerate (`RANK`, `WORLD_SIZE`,
`LOCAL_RANK`), then Slurm tasks (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`) combined
with Slurm array jobs (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, `SLURM_ARRAY_TASK_MIN`):
array task a of A, each with task p of P, is rank a * P + p of A * P.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mminstruct.errors import MminstructError


@dataclass(frozen=True)
class Launch:
    """This process's place in the job."""

    rank: int = 0  # which share of the work this process does
    world_size: int = 1  # how many processes share it
    local_rank: int = 0  # index on this node: a model backend takes GPU `cuda:<local_rank>`
    launcher: str = "single"  # "flags", "torchrun", "slurm" or "single"

    @property
    def prefix(self) -> str:
        """`[rank 3/8] ` for log lines of a multi-process job, empty for a single process."""
        return f"[rank {self.rank}/{self.world_size}] " if self.world_size > 1 else ""

    def owns(self, unit: int) -> bool:
        """Unit (shard) i goes to rank i mod world_size."""
        return unit % self.world_size == self.rank


def detect_launch(
    rank: int | None = None, world_size: int | None = None, env: Mapping[str, str] = os.environ
) -> Launch:
    """The launch from explicit flags, else from the launcher's environment variables."""
    if rank is not None or world_size is not None:
        if rank is None or world_size is None:
            raise MminstructError("give both --rank and --world-size, or neither")
        local = _int(env, "LOCAL_RANK", 0)
        return _checked(Launch(rank, world_size, local, "flags"))
    if "WORLD_SIZE" in env or "RANK" in env:
        launch = Launch(
            _int(env, "RANK", 0), _int(env, "WORLD_SIZE", 1), _int(env, "LOCAL_RANK", 0)
        )
        return _checked(Launch(launch.rank, launch.world_size, launch.local_rank, "torchrun"))
    if "SLURM_PROCID" in env or "SLURM_ARRAY_TASK_ID" in env:
        return _checked(_slurm_launch(env))
    return Launch()


def _slurm_launch(env: Mapping[str, str]) -> Launch:
    tasks, task = _int(env, "SLURM_NTASKS", 1), _int(env, "SLURM_PROCID", 0)
    arrays, array = 1, 0
    if "SLURM_ARRAY_TASK_ID" in env:
        arrays = _int(env, "SLURM_ARRAY_TASK_COUNT", 1)
        array = _int(env, "SLURM_ARRAY_TASK_ID", 0) - _int(env, "SLURM_ARRAY_TASK_MIN", 0)
    return Launch(array * tasks + task, arrays * tasks, _int(env, "SLURM_LOCALID", 0), "slurm")


def _checked(launch: Launch) -> Launch:
    if launch.world_size < 1 or not 0 <= launch.rank < launch.world_size:
        raise MminstructError(
            f"rank {launch.rank} is not within world size {launch.world_size} "
            f"(from {launch.launcher}); ranks run from 0 to world size - 1"
        )
    return launch


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise MminstructError(f"environment variable {name}={value!r} is not an integer") from None
