"""The training loop: one function from a laptop CPU to many GPUs under torchrun.

``train(config, out)`` builds the data and model, trains with per-epoch atomic checkpoints, metrics
(JSONL and CSV) and a summary, and resumes exactly (same batches, same RNG streams, same schedule)
with ``resume=True``.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import create_dataset, default_transforms
from ..fileio import atomic_open, atomic_write_json
from ..models import create_model
from .batches import TensorSet, as_tensor_set, iterate_batches
from .checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    restore_optimizer,
    restore_rng,
    save_checkpoint,
)
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum, average_buffers, barrier, cleanup, init_distributed
from .evaluate import EvalResult, evaluate
from .optim import create_optimizer, warmup_cosine
from .progress import Progress
from .sync_batchnorm import convert_sync_batchnorm

__all__ = ["TrainResult", "train", "build_data", "autocast_settings"]


@dataclass
class TrainResult:
    """What a finished (or resumed-and-finished) run returns."""

    run_dir: Path
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataBundle:
    train: TensorSet
    test: TensorSet
    num_classes: int
    classes: list[str]
    train_transform: Any
    eval_transform: Any


def build_data(config: TrainConfig) -> DataBundle:
    """Load the train and test splits as tensors, with the dataset's train and eval transforms.

    The test split also carries the dataset's object boxes and masks where it has them (``TensorSet.boxes``,
    ``TensorSet.masks``), for scoring where models look.
    """
    kw = dict(config.dataset_kwargs)
    train_ds = create_dataset(config.dataset, "train", root=config.data_root, **kw)
    test_ds = create_dataset(config.dataset, "test", root=config.data_root, **kw)
    train = as_tensor_set(train_ds).head(config.limit_train)
    test = as_tensor_set(test_ds, localisation=True).head(config.limit_test)
    eval_transform = default_transforms(config.dataset, train=False)
    train_transform = default_transforms(config.dataset, train=True) if config.augment else eval_transform
    classes = list(getattr(train_ds, "classes", [])) or [str(i) for i in range(train_ds.num_classes)]
    return DataBundle(train, test, int(train_ds.num_classes), classes, train_transform, eval_transform)


def autocast_settings(amp: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether to scale the loss) for an ``amp`` setting on ``device``."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None, False
    if amp == "auto":
        return (torch.bfloat16, False) if torch.cuda.is_bf16_supported() else (torch.float16, True)
    if amp == "bf16":
        return torch.bfloat16, False
    if device.type != "cuda":
        raise ValueError("fp16 mixed precision needs CUDA; use --amp bf16 or --amp off on CPU")
    return torch.float16, True


def _write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl and metrics.csv from the history (atomic replace of each)."""
    for name, writer in (("metrics.jsonl", _jsonl), ("metrics.csv", _csv)):
        with atomic_open(run_dir / name, "w", newline="") as f:
            writer(f, history)


def _jsonl(f, history):
    for row in history:
        f.write(json.dumps(row) + "\n")


def _csv(f, history):
    if not history:
        return
    keys = [k for k in history[0] if not isinstance(history[0][k], list | dict)]
    w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
    w.writeheader()
    w.writerows(history)


def _log(info: DistInfo, msg: str) -> None:
    if info.is_main:
        print(msg, flush=True)


def train(config: TrainConfig, out: str | os.PathLike, *, resume: bool = False, progress: bool = True,
          data: DataBundle | None = None) -> TrainResult:
    """Train ``config`` into the run directory ``out``.

    Args:
        config: the run's settings.
        out: run directory (checkpoints, metrics.jsonl/csv, summary.json, config.json).
        resume: continue from the latest checkpoint in ``out`` (the config must describe the same model).
        progress: show a progress bar / log lines.
        data: pre-built data (the study shares one copy between runs); built from ``config`` if None.

    Raises:
        FileExistsError: ``out`` already holds a checkpoint and ``resume`` is False.
        CheckpointError: the checkpoint is corrupt or for another model.
        FloatingPointError: the loss became NaN/inf (nothing is saved for that epoch).
    """
    run_dir = Path(out)
    info = init_distributed(config.device)
    try:
        return _train(config, run_dir, info, resume, progress, data)
    finally:
        cleanup(info)


@dataclass
class _Run:
    """The state one training run carries from epoch to epoch (built by :func:`_set_up`)."""

    config: TrainConfig
    run_dir: Path
    info: DistInfo
    data: DataBundle
    model: nn.Module
    model_cfg: dict[str, Any]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    scale: bool
    per_rank: int
    steps_per_epoch: int
    aug_gen: torch.Generator
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return self.info.device


def _train(config: TrainConfig, run_dir: Path, info: DistInfo, resume: bool, progress: bool,
           data: DataBundle | None) -> TrainResult:
    """The steps of :func:`train`: set up, resume, wrap for DDP, run the epochs, write the summary."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    existing = _refuse_overwrite(run_dir, resume)
    torch.manual_seed(config.seed)
    run = _set_up(config, run_dir, info, data or build_data(config))
    if resume and existing is not None:
        _resume(run)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps({"train": config.to_dict(), "model": run.model_cfg}, indent=1))
    net = _wrap_for_training(run.model, config, info)
    last_eval: EvalResult | None = None
    for epoch in range(run.start_epoch, config.epochs):
        last_eval = _run_epoch(run, net, epoch, progress)
    if last_eval is None:  # resumed a run that had already finished
        last_eval = _evaluate(run)
    return _finish(run, last_eval)


def _refuse_overwrite(run_dir: Path, resume: bool) -> Path | None:
    """The latest checkpoint in ``run_dir`` (None if there is none); raises if there is one and not ``resume``."""
    existing = latest_checkpoint(run_dir) if run_dir.exists() else None
    if existing is not None and not resume:
        raise FileExistsError(f"{run_dir} already holds a checkpoint ({existing.name}); pass --resume to continue "
                              "it, or choose another --out")
    return existing


def _build_model(config: TrainConfig, data: DataBundle, info: DistInfo) -> tuple[nn.Module, dict[str, Any]]:
    """The model (on the device, in its memory format, with SyncBatchNorm under DDP) and its config."""
    device = info.device
    in_chans = int(data.train.images.shape[1])
    model_cfg = config.model_config(data.num_classes, in_chans)
    model = create_model(model_cfg["name"], num_classes=model_cfg["num_classes"], attention=model_cfg["attention"],
                         attention_kwargs=model_cfg["attention_kwargs"] or None, in_chans=in_chans).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if info.distributed and config.sync_bn:
        # a group of its own on CPU, so its collectives never interleave with DDP's gradient buckets
        model = convert_sync_batchnorm(model, None if device.type == "cuda" else torch.distributed.new_group())
    return model, model_cfg


def _set_up(config: TrainConfig, run_dir: Path, info: DistInfo, data: DataBundle) -> _Run:
    """Build the model, optimiser, schedule and loss scaler of a fresh run (epoch 0, empty history)."""
    model, model_cfg = _build_model(config, data, info)
    per_rank = max(1, config.batch_size // info.world_size)
    steps_per_epoch = -(-len(data.train) // info.world_size // per_rank)
    optimizer = create_optimizer(model, config.optimizer, config.lr, config.momentum, config.weight_decay)
    scheduler = warmup_cosine(optimizer, config.epochs * steps_per_epoch, round(config.warmup_epochs * steps_per_epoch))
    amp_dtype, scale = autocast_settings(config.amp, info.device)
    scaler = torch.amp.GradScaler(info.device.type, enabled=scale)
    aug_gen = torch.Generator()  # re-seeded from (seed, rank, epoch) every epoch: resumes replay it exactly
    return _Run(config, run_dir, info, data, model, model_cfg, optimizer, scheduler, scaler, amp_dtype, scale,
                per_rank, steps_per_epoch, aug_gen)


def _resume(run: _Run) -> None:
    """Restore weights, optimiser, schedule, scaler, RNG streams and history from the run's latest checkpoint."""
    ckpt = load_checkpoint(run.run_dir)
    if ckpt.model_config != run.model_cfg:
        raise CheckpointError(f"{ckpt.path} is a checkpoint of {ckpt.model_config}, not of {run.model_cfg}; "
                              "resume with the same --model/--attention/--dataset, or choose another --out")
    run.model.load_state_dict(ckpt.model_state)
    restore_optimizer(run.optimizer, ckpt)
    run.scheduler.load_state_dict(ckpt.state["scheduler"])
    if "scaler" in ckpt.state and run.scale:
        run.scaler.load_state_dict(ckpt.state["scaler"])
    restore_rng(ckpt.state["rng"], ckpt.optimizer_tensors)
    run.start_epoch = ckpt.epoch
    run.history = [h for h in ckpt.state["extra"].get("history", []) if h["epoch"] <= run.start_epoch]
    _log(run.info, f"resuming {run.run_dir} after epoch {run.start_epoch}")


def _wrap_for_training(model: nn.Module, config: TrainConfig, info: DistInfo) -> nn.Module:
    """The module the epochs call: ``model``, compiled if asked, inside DistributedDataParallel under torchrun."""
    net: nn.Module = model
    if config.compile:
        net = torch.compile(net)
    if info.distributed:
        device = info.device
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return net


def _run_epoch(run: _Run, net: nn.Module, epoch: int, progress: bool) -> EvalResult:
    """Train one epoch, evaluate, log, and (on the main rank) checkpoint it and rewrite the metrics."""
    config, info = run.config, run.info
    sums, train_time = _train_epoch(run, net, epoch, progress)
    ev = _evaluate(run)
    row = {"epoch": epoch + 1, "train_loss": float(sums[0] / sums[2]), "train_acc": float(sums[1] / sums[2]),
           "test_loss": ev.loss, "test_acc": ev.accuracy, "lr": run.optimizer.param_groups[0]["lr"],
           "epoch_seconds": train_time, "images_per_s": float(sums[2]) / train_time}
    run.history.append(row)
    _log(info, f"epoch {epoch + 1}/{config.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} "
               f"| test loss {ev.loss:.4f} acc {ev.accuracy:.4f} | {train_time:.1f}s, "
               f"{row['images_per_s']:.0f} img/s")
    if info.is_main:
        save_checkpoint(run.run_dir, model=run.model, model_config=run.model_cfg, epoch=epoch + 1,
                        optimizer=run.optimizer, scheduler=run.scheduler, scaler=run.scaler if run.scale else None,
                        extra={"history": run.history, "data": {"classes": run.data.classes},
                               "train": config.to_dict()})
        _write_metrics(run.run_dir, run.history)
    barrier(info)
    return ev


def _train_epoch(run: _Run, net: nn.Module, epoch: int, progress: bool) -> tuple[torch.Tensor, float]:
    """One pass over every rank's shard: (summed over ranks: loss sum, correct, count as float64 (3,), seconds).

    BatchNorm running statistics are averaged over the ranks at the end (they are per-rank buffers under DDP).
    """
    config, info, device = run.config, run.info, run.device
    net.train()
    run.aug_gen.manual_seed((config.seed * 1_000_003 + epoch) * 4099 + info.rank)
    t0 = time.perf_counter()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    bar = Progress(run.steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}", enabled=progress and info.is_main)
    for step, (x, y) in enumerate(iterate_batches(
            run.data.train, run.per_rank, epoch=epoch, seed=config.seed, rank=info.rank, world=info.world_size,
            transform=run.data.train_transform, generator=run.aug_gen, device=device,
            channels_last=config.channels_last)):
        loss, logits = _train_step(run, net, x, y, epoch, step)
        with torch.no_grad():
            sums += torch.stack([loss.detach().double() * len(y), (logits.argmax(1) == y).sum().double(),
                                 torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
        elapsed = time.perf_counter() - t0
        bar.update(1, loss=float(sums[0] / sums[2]), acc=float(sums[1] / sums[2]),
                   img_s=float(sums[2]) * info.world_size / max(elapsed, 1e-9))
    bar.close()
    all_reduce_sum(sums, info)
    average_buffers(run.model, info)
    return sums, time.perf_counter() - t0


def _train_step(run: _Run, net: nn.Module, x: torch.Tensor, y: torch.Tensor, epoch: int,
                step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch x (N, C, H, W), y (N,): returns (loss (), logits (N, classes)).

    Raises:
        FloatingPointError: the loss is NaN or inf (before any weight changes).
    """
    config = run.config
    with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None):
        logits = net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; nothing "
                                 f"was saved for this epoch. Lower --lr (now {config.lr}) or check the data.")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return loss, logits


def _evaluate(run: _Run) -> EvalResult:
    """Accuracy and loss of the model on the test split, under the run's precision and memory format."""
    return evaluate(run.model, run.data.test, run.data.num_classes, transform=run.data.eval_transform,
                    device=run.device, info=run.info, channels_last=run.config.channels_last,
                    autocast_dtype=run.amp_dtype)


def _finish(run: _Run, last_eval: EvalResult) -> TrainResult:
    """Write summary.json (main rank), log the result and return it."""
    info, run_dir = run.info, run.run_dir
    final = _final_summary(run.config, run.model_cfg, run.history, run.data, last_eval, info, run.device)
    if info.is_main:
        atomic_write_json(run_dir / "summary.json", final, indent=1)
        _log(info, f"done: test accuracy {final['test_acc']:.4f} after {final['epochs']} epochs "
                   f"({final['train_seconds']:.0f}s of training); run in {run_dir}")
    return TrainResult(run_dir, run.model, run.history, final)


def _final_summary(config: TrainConfig, model_cfg: dict, history: list[dict], data: DataBundle, ev: EvalResult,
                   info: DistInfo, device: torch.device) -> dict[str, Any]:
    return {"model": model_cfg, "dataset": config.dataset, "epochs": len(history),
            "test_acc": ev.accuracy, "test_loss": ev.loss, "per_class_accuracy": ev.per_class_accuracy,
            "confusion": ev.confusion, "classes": data.classes,
            "train_seconds": sum(h["epoch_seconds"] for h in history),
            "seconds_per_epoch": (sum(h["epoch_seconds"] for h in history) / len(history)) if history else 0.0,
            "world_size": info.world_size, "device": str(device)}
