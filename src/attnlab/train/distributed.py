"""torch.distributed set-up for ``torchrun``: gloo on CPU, NCCL on GPUs; only rank 0 writes.

A plain ``python``/``attnlab train`` run is a world of one and touches no process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "shard_permutation", "all_reduce_sum", "average_buffers", "barrier",
           "cleanup"]


@dataclass
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str | None = None) -> torch.device:
    """``name`` if given ("cpu", "cuda", "cuda:1"), else CUDA when available, else CPU."""
    if name and name != "auto":
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = pick_device(device)
    if world <= 1:
        return DistInfo(device=dev)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def shard_permutation(n: int, epoch: int, seed: int, rank: int, world: int, shuffle: bool = True) -> torch.Tensor:
    """This rank's sample indices for ``epoch``, as ``DistributedSampler`` deals them.

    Every rank draws the same permutation from (seed, epoch); it is padded by wrapping to a multiple of
    ``world`` and rank r takes positions r, r + world, ...
    """
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g)
    else:
        perm = torch.arange(n)
    total = -(-n // world) * world
    if total > n:
        perm = torch.cat([perm, perm[: total - n]])
    return perm[rank::world]


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over ranks in place (no-op in a world of one)."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def average_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks, so every rank, and the
    checkpoint rank 0 writes, holds the same model. DDP syncs parameters, not these."""
    if not info.distributed:
        return
    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b, op=dist.ReduceOp.SUM)
            b.div_(info.world_size)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
