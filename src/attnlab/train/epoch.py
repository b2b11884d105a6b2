"""One training epoch and one training step: what :func:`attnlab.train.train` repeats, and what the loop
benchmark (``attnlab bench loop``) times against the bare step.

The epoch takes its batches from the run's :class:`~attnlab.train.batches.BatchSource` (the host pipeline, or the
set kept on the device) and keeps its statistics in an :class:`~attnlab.train.tally.EpochTally`: on a GPU nothing
in the epoch waits for the device but the few reads a second of that tally.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .batches import BatchSource
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum, average_buffers
from .progress import Progress
from .tally import EpochTally, Reading, read_interval

__all__ = ["TrainState", "train_epoch", "train_step"]


@dataclass
class TrainState:
    """What the training steps of a run use (built by :func:`attnlab.train.loop.build_train_state`)."""

    config: TrainConfig
    info: DistInfo
    model: nn.Module
    model_cfg: dict
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None  # autocast dtype, None: full precision
    scale: bool  # whether the loss is scaled (fp16)
    per_rank: int  # batch size of each rank
    steps_per_epoch: int
    batches: BatchSource

    @property
    def device(self) -> torch.device:
        return self.info.device


def train_step(state: TrainState, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
    """One optimiser step on a batch x (N, C, H, W), y (N,) already on the device; returns (loss (), logits (N,
    classes)). Nothing here waits for the device (but the fp16 loss scaler's check of the gradients); a NaN or
    infinite loss is the caller's to notice (:class:`~attnlab.train.tally.EpochTally`).

    Args:
        state: the run's model, optimiser, schedule, scaler and precision.
        net: the module to call: ``state.model``, or it compiled or wrapped for DDP.
    """
    with torch.autocast(state.device.type, dtype=state.amp_dtype, enabled=state.amp_dtype is not None):
        logits = net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=state.config.label_smoothing)
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.scheduler.step()
    return loss, logits


def _show(bar: Progress, reading: Reading, world: int) -> None:
    """Put a reading on the progress bar (images/s over every rank, as this rank sees them)."""
    bar.update(0, loss=reading.loss, acc=reading.acc, img_s=reading.images * world / max(reading.seconds, 1e-9))


def train_epoch(state: TrainState, net: nn.Module, epoch: int, progress: bool = False) -> tuple[torch.Tensor, float]:
    """One pass over this rank's shard of the training set for ``epoch`` (from 0).

    BatchNorm running statistics are averaged over the ranks at the end (they are per-rank buffers under DDP).

    Returns:
        (totals summed over the ranks: loss sum, correct, images, not-finite, float64 (4,) on the device; seconds).

    Raises:
        FloatingPointError: a loss of the epoch was NaN or infinite (on any rank), naming the steps where it was
            found; raised before the epoch returns, so nothing of it is saved.
    """
    config, info = state.config, state.info
    net.train()
    tally = EpochTally(state.device, epoch, read_interval(state.device),
                       fix=f"Lower --lr (now {config.lr}) or check the data.")
    bar = Progress(state.steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}", enabled=progress and info.is_main)
    try:
        for x, y in state.batches.epoch(state.per_rank, epoch=epoch, seed=config.seed, rank=info.rank,
                                        world=info.world_size):
            loss, logits = train_step(state, net, x, y)
            tally.add(loss, logits, y)
            bar.update(1)
            if tally.due():
                _show(bar, tally.read(), info.world_size)
        _show(bar, tally.read(), info.world_size)
    finally:
        bar.close()
    totals = tally.totals()
    all_reduce_sum(totals, info)
    tally.check_totals(totals)
    average_buffers(state.model, info)
    return totals, time.perf_counter() - tally.start
