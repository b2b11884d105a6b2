"""torch.distributed set-up for ``torchrun``: gloo on CPU, NCCL on GPUs; only rank 0 writes.

A plain ``python``/``attnlab train`` run is a world of one and touches no process group.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DEVICE_NAMES", "DistInfo", "check_device", "init_distributed", "pick_device", "shard_permutation",
           "all_reduce_sum", "average_buffers", "barrier", "cleanup"]


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


#: The device names ``--device`` takes, for messages.
DEVICE_NAMES = "auto, cpu, cuda, cuda:N (N: the GPU index) or mps"
_DEVICE = re.compile(r"(?P<kind>auto|cpu|cuda|mps)(?::(?P<index>\d+))?")


def check_device(name: str | None) -> str:
    """The device name ``name`` in canonical form (stripped, lower case; None and "" are ``"auto"``) if it is
    one ``--device`` takes: auto, cpu, cuda, cuda:N or mps. Whether that device is present is
    :func:`pick_device`'s question.

    Raises:
        ValueError: for anything else (``"gpu"``, ``"cuda:x"``, ``"cpu:1"``), listing the valid names.
    """
    if name is None:
        return "auto"
    if not isinstance(name, str):
        raise ValueError(f"a device is a name ({DEVICE_NAMES}), got {type(name).__name__} {name!r}")
    text = name.strip().lower() or "auto"
    m = _DEVICE.fullmatch(text)
    if m is None or (m["index"] is not None and m["kind"] != "cuda"):
        hint = "; for an NVIDIA GPU use cuda" if text.startswith("gpu") else ""
        raise ValueError(f"unknown device {name!r}: use {DEVICE_NAMES}{hint}")
    return text


def pick_device(name: str | None = None) -> torch.device:
    """The device ``name`` names (see :func:`check_device`), after checking it is present; ``auto`` (or None)
    is CUDA when available, else CPU.

    Raises:
        ValueError: an unknown device name, or a device this machine does not have (CUDA, GPU N, MPS).
    """
    text = check_device(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(text)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available on this machine; use --device "
                             "cpu (or auto)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {name!r} requested but this machine has {count} CUDA device(s), "
                             f"cuda:0 to cuda:{count - 1}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS (Apple GPU) is not available here; use --device cpu "
                         "(or auto)")
    return dev


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
