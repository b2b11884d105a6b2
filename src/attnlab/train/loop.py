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
        tmp = run_dir / f".{name}.tmp"
        with open(tmp, "w", newline="") as f:
            writer(f, history)
        os.replace(tmp, run_dir / name)


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


def _train(config: TrainConfig, run_dir: Path, info: DistInfo, resume: bool, progress: bool,
           data: DataBundle | None) -> TrainResult:
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    existing = latest_checkpoint(run_dir) if run_dir.exists() else None
    if existing is not None and not resume:
        raise FileExistsError(f"{run_dir} already holds a checkpoint ({existing.name}); pass --resume to continue "
                              "it, or choose another --out")
    device = info.device
    torch.manual_seed(config.seed)
    data = data or build_data(config)
    in_chans = int(data.train.images.shape[1])
    model_cfg = config.model_config(data.num_classes, in_chans)
    model = create_model(model_cfg["name"], num_classes=model_cfg["num_classes"], attention=model_cfg["attention"],
                         attention_kwargs=model_cfg["attention_kwargs"] or None, in_chans=in_chans).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if info.distributed and config.sync_bn:
        # a group of its own on CPU, so its collectives never interleave with DDP's gradient buckets
        model = convert_sync_batchnorm(model, None if device.type == "cuda" else torch.distributed.new_group())
    per_rank = max(1, config.batch_size // info.world_size)
    steps_per_epoch = -(-len(data.train) // info.world_size // per_rank)
    optimizer = create_optimizer(model, config.optimizer, config.lr, config.momentum, config.weight_decay)
    scheduler = warmup_cosine(optimizer, config.epochs * steps_per_epoch, round(config.warmup_epochs * steps_per_epoch))
    amp_dtype, scale = autocast_settings(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=scale)
    aug_gen = torch.Generator()  # re-seeded from (seed, rank, epoch) every epoch: resumes replay it exactly
    start_epoch, history = 0, []

    if resume and existing is not None:
        ckpt = load_checkpoint(run_dir)
        if ckpt.model_config != model_cfg:
            raise CheckpointError(f"{ckpt.path} is a checkpoint of {ckpt.model_config}, not of {model_cfg}; "
                                  "resume with the same --model/--attention/--dataset, or choose another --out")
        model.load_state_dict(ckpt.model_state)
        restore_optimizer(optimizer, ckpt)
        scheduler.load_state_dict(ckpt.state["scheduler"])
        if "scaler" in ckpt.state and scale:
            scaler.load_state_dict(ckpt.state["scaler"])
        restore_rng(ckpt.state["rng"], ckpt.optimizer_tensors)
        start_epoch = ckpt.epoch
        history = [h for h in ckpt.state["extra"].get("history", []) if h["epoch"] <= start_epoch]
        _log(info, f"resuming {run_dir} after epoch {start_epoch}")

    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps({"train": config.to_dict(), "model": model_cfg}, indent=1))
    net: nn.Module = model
    if config.compile:
        net = torch.compile(net)
    if info.distributed:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    last_eval: EvalResult | None = None
    for epoch in range(start_epoch, config.epochs):
        net.train()
        aug_gen.manual_seed((config.seed * 1_000_003 + epoch) * 4099 + info.rank)
        t0 = time.perf_counter()
        sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
        bar = Progress(steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}", enabled=progress and info.is_main)
        for step, (x, y) in enumerate(iterate_batches(
                data.train, per_rank, epoch=epoch, seed=config.seed, rank=info.rank, world=info.world_size,
                transform=data.train_transform, generator=aug_gen, device=device,
                channels_last=config.channels_last)):
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = net(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; nothing "
                                         f"was saved for this epoch. Lower --lr (now {config.lr}) or check the data.")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            with torch.no_grad():
                sums += torch.stack([loss.detach().double() * len(y), (logits.argmax(1) == y).sum().double(),
                                     torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
            elapsed = time.perf_counter() - t0
            bar.update(1, loss=float(sums[0] / sums[2]), acc=float(sums[1] / sums[2]),
                       img_s=float(sums[2]) * info.world_size / max(elapsed, 1e-9))
        bar.close()
        all_reduce_sum(sums, info)
        average_buffers(model, info)
        train_time = time.perf_counter() - t0
        ev = last_eval = evaluate(model, data.test, data.num_classes, transform=data.eval_transform, device=device,
                                  info=info, channels_last=config.channels_last, autocast_dtype=amp_dtype)
        row = {"epoch": epoch + 1, "train_loss": float(sums[0] / sums[2]), "train_acc": float(sums[1] / sums[2]),
               "test_loss": ev.loss, "test_acc": ev.accuracy, "lr": optimizer.param_groups[0]["lr"],
               "epoch_seconds": train_time, "images_per_s": float(sums[2]) / train_time}
        history.append(row)
        _log(info, f"epoch {epoch + 1}/{config.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} "
                   f"| test loss {ev.loss:.4f} acc {ev.accuracy:.4f} | {train_time:.1f}s, "
                   f"{row['images_per_s']:.0f} img/s")
        if info.is_main:
            save_checkpoint(run_dir, model=model, model_config=model_cfg, epoch=epoch + 1, optimizer=optimizer,
                            scheduler=scheduler, scaler=scaler if scale else None,
                            extra={"history": history, "data": {"classes": data.classes},
                                   "train": config.to_dict()})
            _write_metrics(run_dir, history)
        barrier(info)

    if last_eval is None:  # resumed a run that had already finished
        last_eval = evaluate(model, data.test, data.num_classes, transform=data.eval_transform, device=device,
                             info=info, channels_last=config.channels_last, autocast_dtype=amp_dtype)
    final = _final_summary(config, model_cfg, history, data, last_eval, info, device)
    if info.is_main:
        tmp = run_dir / ".summary.json.tmp"
        tmp.write_text(json.dumps(final, indent=1))
        os.replace(tmp, run_dir / "summary.json")
        _log(info, f"done: test accuracy {final['test_acc']:.4f} after {final['epochs']} epochs "
                   f"({final['train_seconds']:.0f}s of training); run in {run_dir}")
    return TrainResult(run_dir, model, history, final)


def _final_summary(config: TrainConfig, model_cfg: dict, history: list[dict], data: DataBundle, ev: EvalResult,
                   info: DistInfo, device: torch.device) -> dict[str, Any]:
    return {"model": model_cfg, "dataset": config.dataset, "epochs": len(history),
            "test_acc": ev.accuracy, "test_loss": ev.loss, "per_class_accuracy": ev.per_class_accuracy,
            "confusion": ev.confusion, "classes": data.classes,
            "train_seconds": sum(h["epoch_seconds"] for h in history),
            "seconds_per_epoch": (sum(h["epoch_seconds"] for h in history) / len(history)) if history else 0.0,
            "world_size": info.world_size, "device": str(device)}
