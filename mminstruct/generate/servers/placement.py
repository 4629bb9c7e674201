"""Which GPUs a server gets: all of the node's (placement node) or its process's share
(placement gpu: `CUDA_VISIBLE_DEVICES` from the local rank)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from mminstruct.errors import MminstructError


def node_gpus(env: Mapping[str, str]) -> list[str]:
    """The GPUs this process may use: `CUDA_VISIBLE_DEVICES` when set, else what
    `nvidia-smi -L` lists (none on a machine without it)."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu.strip() for gpu in visible.split(",") if gpu.strip()]
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def tensor_parallel(placement: str, configured: int | None, gpus: list[str]) -> int:
    """GPUs per server: as configured, else all the node's (node) or one (gpu)."""
    if configured:
        return configured
    return max(len(gpus), 1) if placement == "node" else 1


def server_env(
    placement: str, size: int, local_rank: int, gpus: list[str], env: Mapping[str, str]
) -> dict[str, str]:
    """The server's environment: this process's, with `CUDA_VISIBLE_DEVICES` narrowed to
    GPUs local_rank*size .. +size-1 for placement gpu. Placement node is one server per
    node, so only local rank 0 may start one."""
    child = dict(env)
    if placement == "node":
        if local_rank != 0:
            raise MminstructError(
                f"generator.server.placement: 'node' starts one server per node on all its "
                f"GPUs, but this is local rank {local_rank}: launch one task per node "
                "(srun --ntasks-per-node=1) or set generator.server.placement: gpu"
            )
        return child
    if not gpus:
        return child  # no GPU here: the server runs on the CPU
    if len(gpus) == size:
        return child  # the launcher bound this task's GPUs already (--gpus-per-task)
    mine = gpus[local_rank * size : (local_rank + 1) * size]
    if len(mine) < size:
        raise MminstructError(
            f"generator.server.placement: 'gpu' with tensor_parallel {size} gives local rank "
            f"{local_rank} GPUs {local_rank * size}-{(local_rank + 1) * size - 1}, but this "
            f"node has {len(gpus)}; launch fewer processes per node"
        )
    child["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
    return child
