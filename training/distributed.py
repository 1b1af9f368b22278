"""torch.distributed in four verbs, each a no-op on a single process (started without torchrun)."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def setup() -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment -> ``(rank, world_size)``.

    NCCL when CUDA is available, else gloo (CPU runs and tests).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if active():
        dist.barrier()


def mean(value: float) -> float:
    """The mean of ``value`` over all ranks."""
    if not active():
        return value
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return sum(gathered) / len(gathered)


def merge_dicts(part: dict) -> dict:
    """Every rank's dict merged into one, on every rank (later ranks win on equal keys)."""
    if not active():
        return part
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, part)
    merged: dict = {}
    for piece in gathered:
        merged.update(piece)
    return merged


def cleanup() -> None:
    if active():
        dist.destroy_process_group()
