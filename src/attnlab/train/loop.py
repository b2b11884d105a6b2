"""The training loop: one function from a laptop CPU to many GPUs under torchrun.

``train(config, out)`` builds the data and model, trains with per-epoch atomic checkpoints, metrics
(JSONL and CSV, columns :data:`METRIC_COLUMNS`) and a summary, and resumes exactly (same batches, same RNG
streams, same schedule) with ``resume=True``. A resume refuses, before it writes anything, any change of a
setting that changes what the run computes (:func:`attnlab.train.config.result_changes`); Ctrl-C ends a run
with :class:`TrainingInterrupted`, which says how to continue it.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import create_dataset, default_transforms
from ..fileio import atomic_open, atomic_write_json
from ..models import create_model
from .batches import TensorSet, as_tensor_set
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    _epoch_number,
    checkpoint_dirs,
    checkpoint_problem,
    latest_checkpoint,
    load_checkpoint,
    pointer_target,
    remove_stale_temporaries,
    restore_optimizer,
    restore_rng,
    save_checkpoint,
)
from .config import TrainConfig, flag_text, result_changes
from .distributed import DistInfo, barrier, cleanup, init_distributed, pick_device
from .epoch import TrainState, train_epoch
from .evaluate import EvalResult, evaluate
from .optim import create_optimizer, warmup_cosine
from .pipeline import batch_source
from .sync_batchnorm import convert_sync_batchnorm

__all__ = ["METRIC_COLUMNS", "TrainResult", "TrainingInterrupted", "train", "build_data", "autocast_settings",
           "build_train_state"]

#: The columns of metrics.csv and the keys of each metrics.jsonl row (and of ``TrainResult.history``), in order.
METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds", "images_per_s")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during :func:`train`: where the run stopped and how to continue it, in its message.

    Attributes:
        run_dir: the run directory.
        epoch: the epoch in progress (from 1), or None when training had not started.
        finished: the last epoch whose checkpoint was written (0: none), which ``--resume`` continues from.
    """

    def __init__(self, run_dir: Path, epoch: int | None, finished: int) -> None:
        self.run_dir, self.epoch, self.finished = run_dir, epoch, finished
        if epoch is None:
            where = f"before epoch {finished + 1} started"
        else:
            where = f"in epoch {epoch}" if epoch > finished else f"after epoch {finished}"
        command = f"`attnlab train --resume --out {shlex.quote(str(run_dir))}` (same options)"
        if finished:
            then = f"{command} continues from the last finished epoch ({finished})"
        else:
            then = f"no epoch finished yet: {command} starts the run afresh"
        super().__init__(f"interrupted {where}; {then}")

    def __reduce__(self) -> tuple[type, tuple[Path, int | None, int]]:
        return type(self), (self.run_dir, self.epoch, self.finished)


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
    w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(history)


def _metric_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its keys in :data:`METRIC_COLUMNS` order (a checkpoint stores them sorted)."""
    return {**{k: row[k] for k in METRIC_COLUMNS if k in row}, **row}


def _log(info: DistInfo, msg: str) -> None:
    if info.is_main:
        print(msg, flush=True)


def train(config: TrainConfig, out: str | os.PathLike, *, resume: bool = False, progress: bool = True,
          data: DataBundle | None = None) -> TrainResult:
    """Train ``config`` into the run directory ``out``.

    Args:
        config: the run's settings.
        out: run directory (checkpoints, metrics.jsonl/csv, summary.json, config.json).
        resume: continue from the latest checkpoint in ``out`` (the newest complete one when ``latest.json`` is
            gone), with the settings the run was trained with (device and threads may differ); with nothing to
            resume, a new run starts (and says so).
        progress: show a progress bar / log lines.
        data: pre-built data (the study shares one copy between runs); built from ``config`` if None.

    Raises:
        FileExistsError: ``out`` already holds a checkpoint and ``resume`` is False, or ``out`` is a file.
        CheckpointError: the checkpoint is corrupt or for another model, ``config`` changes a setting the run was
            trained with (every such field named with both values), or an incomplete checkpoint directory would
            be overwritten. Nothing is written in ``out`` before these checks pass.
        FloatingPointError: the loss became NaN/inf (nothing is saved for that epoch).
        TrainingInterrupted: Ctrl-C (a KeyboardInterrupt), with where it stopped and how to continue.
    """
    run_dir = Path(out)
    info = init_distributed(config.device)
    where: list[int] = []  # the epoch in progress (from 1), once training has started
    try:
        return _train(config, run_dir, info, resume, progress, data, where)
    except KeyboardInterrupt as err:
        if isinstance(err, TrainingInterrupted):
            raise
        raise TrainingInterrupted(run_dir, where[-1] if where else None, _finished_epoch(run_dir)) from None
    finally:
        cleanup(info)


def _finished_epoch(run_dir: Path) -> int:
    """The epoch a resume of ``run_dir`` would continue from (0: none), as the checkpoints on disk say."""
    try:
        latest = latest_checkpoint(run_dir) if run_dir.is_dir() else None
        return int(json.loads((latest / "state.json").read_text())["epoch"]) if latest is not None else 0
    except (OSError, ValueError, KeyError, TypeError):
        return 0


@dataclass
class _Run(TrainState):
    """The state one training run carries from epoch to epoch (built by :func:`_set_up`)."""

    run_dir: Path = Path()
    data: DataBundle | None = None
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def _train(config: TrainConfig, run_dir: Path, info: DistInfo, resume: bool, progress: bool,
           data: DataBundle | None, where: list[int]) -> TrainResult:
    """The steps of :func:`train`: check, set up, resume, wrap for DDP, run the epochs, write the summary
    (appending each epoch to ``where`` as it starts)."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    ckpt = _resume_point(config, run_dir, info, resume)
    torch.manual_seed(config.seed)
    run = _set_up(config, run_dir, info, data or build_data(config))
    if ckpt is not None:
        _resume(run, ckpt)
    if info.is_main:
        _start_writing(run)
    _log(info, _start_line(run))
    net = _wrap_for_training(run.model, config, info)
    last_eval: EvalResult | None = None
    for epoch in range(run.start_epoch, config.epochs):
        where.append(epoch + 1)
        last_eval = _run_epoch(run, net, epoch, progress)
    if last_eval is None:  # resumed a run that had already finished
        last_eval = _evaluate(run)
    return _finish(run, last_eval)


def _resume_point(config: TrainConfig, run_dir: Path, info: DistInfo, resume: bool) -> Checkpoint | None:
    """The checkpoint to continue from, or None for a new run; reads only, so a refusal leaves ``run_dir`` as it
    was.

    Raises:
        FileExistsError: ``run_dir`` holds checkpoints and ``resume`` is False, or it (or a folder above it) is
            a file.
        CheckpointError: what :func:`train` lists for a refused resume.
    """
    blocking = next((p for p in (run_dir, *run_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise FileExistsError(f"{blocking} is a file, not a folder: --out names the folder of the run; choose "
                              "another --out")
    present = run_dir.is_dir()
    latest = latest_checkpoint(run_dir) if present else None
    dirs = checkpoint_dirs(run_dir) if present else []
    if not resume:
        if latest is not None or dirs:
            raise FileExistsError(f"{run_dir} already holds a checkpoint ({(latest or dirs[-1]).name}); pass --resume "
                                  "to continue it, or choose another --out")
        return None
    if latest is None:
        if dirs:
            raise CheckpointError(f"nothing to resume in {run_dir}: {dirs[-1]} is incomplete "
                                  f"({checkpoint_problem(dirs[-1])}) and a new run would overwrite it; delete the "
                                  "incomplete checkpoint directories, or choose another --out")
        _log(info, f"nothing to resume in {run_dir}: starting a new run")
        return None
    _refuse_broken_pointer(run_dir, latest, dirs)
    ckpt = load_checkpoint(latest)
    _refuse_overwriting(ckpt, dirs)
    _refuse_changes(config, run_dir, ckpt)
    pointed = pointer_target(run_dir)
    if pointed != latest:  # latest.json gone, or a run killed before it pointed at its newest checkpoint
        why = "is missing" if pointed is None else f"points at the older {pointed.name}"
        _log(info, f"{run_dir}: latest.json {why}; resuming from the newest complete checkpoint, {latest.name}")
    return ckpt


def _refuse_broken_pointer(run_dir: Path, latest: Path, dirs: list[Path]) -> None:
    """Raise when ``latest.json`` points at something that is not a complete checkpoint."""
    problem = checkpoint_problem(latest) if latest.is_dir() else "missing"
    if problem is None:
        return
    complete = [d for d in dirs if checkpoint_problem(d) is None]
    fix = (f"delete {latest.parent / 'latest.json'} to resume from the newest complete one ({complete[-1].name})"
           if complete else "choose another --out")
    raise CheckpointError(f"cannot resume {run_dir}: latest.json points at {latest}, which is not a complete "
                          f"checkpoint ({problem}); {fix}")


def _refuse_overwriting(ckpt: Checkpoint, dirs: list[Path]) -> None:
    """Raise when a checkpoint directory newer than ``ckpt`` exists: resuming would overwrite it."""
    newer = [d for d in dirs if _epoch_number(d) > ckpt.epoch]
    if newer:
        raise CheckpointError(f"cannot resume from {ckpt.path}: the newer {newer[-1]} is incomplete "
                              f"({checkpoint_problem(newer[-1])}) and resuming would overwrite it; delete it (or "
                              "move it away), then resume")


def _refuse_changes(config: TrainConfig, run_dir: Path, ckpt: Checkpoint) -> None:
    """Raise when ``config`` changes a setting the checkpoint's run was trained with (see ``result_changes``)."""
    stored = ckpt.state.get("extra", {}).get("train")
    if stored is None and (run_dir / "config.json").is_file():  # a checkpoint saved by other code than train()
        try:
            stored = json.loads((run_dir / "config.json").read_text()).get("train")
        except (json.JSONDecodeError, AttributeError):
            stored = None
    changes = result_changes(stored, config) if isinstance(stored, dict) else {}
    if changes:
        differ = ", ".join(f"{k} {s!r} (stored) vs {g!r} (given)" for k, (s, g) in changes.items())
        own = " ".join(flag_text(k, s) for k, (s, _) in changes.items())
        raise CheckpointError(f"cannot resume {run_dir} with other settings than it was trained with: {differ}; "
                              f"resume it with its own ({own}), or train into another --out")


def _start_writing(run: _Run) -> None:
    """The run's first writes, once every check has passed: clear what killed writes left, write config.json."""
    stale = remove_stale_temporaries(run.run_dir) if run.run_dir.is_dir() else []
    if stale:
        _log(run.info, f"removed {len(stale)} temporary file(s) an interrupted write left in {run.run_dir}: "
                       f"{', '.join(p.name for p in stale)}")
    atomic_write_json(run.run_dir / "config.json", {"train": run.config.to_dict(), "model": run.model_cfg}, indent=1)


def _start_line(run: _Run) -> str:
    """One line of what is about to train, on what and how (printed before the first epoch)."""
    config, info, data = run.config, run.info, run.data
    params = sum(p.numel() for p in run.model.parameters())
    amp = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16 (loss scaling)"}.get(run.amp_dtype)
    procs = f" over {info.world_size} processes" if info.world_size > 1 else ""
    epochs = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    if run.start_epoch >= config.epochs:
        epochs = f"all {epochs} already done"
    elif run.start_epoch:
        epochs = f"epochs {run.start_epoch + 1}-{config.epochs} of {config.epochs}"
    model = f"{config.model} + {config.attention}" if config.attention else f"{config.model} (no attention)"
    return (f"training {model}, {params:,} parameters, on {config.dataset}: {len(data.train):,} train / "
            f"{len(data.test):,} test images; device {run.device}, AMP {amp}, batch {config.batch_size}{procs}, "
            f"{epochs}, channels_last {'on' if config.channels_last else 'off'}, batches made on the "
            f"{run.batches.where}, threads {torch.get_num_threads()}")


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


def build_train_state(config: TrainConfig, data: DataBundle, info: DistInfo | None = None) -> TrainState:
    """The model (on the device, in its memory format, with SyncBatchNorm under DDP), optimiser, schedule, loss
    scaler and batch pipeline (``config.data_on_device``) of a fresh run of ``config`` on ``data``.

    Args:
        config: the run's settings.
        data: the train and test sets and their transforms.
        info: where this process sits in the job (default: one process on ``config.device``).
    """
    info = info or DistInfo(device=pick_device(config.device))
    model, model_cfg = _build_model(config, data, info)
    per_rank = max(1, config.batch_size // info.world_size)
    steps_per_epoch = -(-len(data.train) // info.world_size // per_rank)
    optimizer = create_optimizer(model, config.optimizer, config.lr, config.momentum, config.weight_decay)
    scheduler = warmup_cosine(optimizer, config.epochs * steps_per_epoch, round(config.warmup_epochs * steps_per_epoch))
    amp_dtype, scale = autocast_settings(config.amp, info.device)
    scaler = torch.amp.GradScaler(info.device.type, enabled=scale)
    batches = batch_source(config.data_on_device, data.train, data.train_transform, info.device,
                           config.channels_last)
    return TrainState(config, info, model, model_cfg, optimizer, scheduler, scaler, amp_dtype, scale, per_rank,
                      steps_per_epoch, batches)


def _set_up(config: TrainConfig, run_dir: Path, info: DistInfo, data: DataBundle) -> _Run:
    """A fresh run (epoch 0, empty history): :func:`build_train_state` and where it writes."""
    return _Run(**vars(build_train_state(config, data, info)), run_dir=run_dir, data=data)


def _resume(run: _Run, ckpt: Checkpoint) -> None:
    """Restore weights, optimiser, schedule, scaler, RNG streams and history from the checkpoint ``ckpt``."""
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
    run.history = [_metric_row(h) for h in ckpt.state["extra"].get("history", []) if h["epoch"] <= run.start_epoch]
    _log(run.info, f"resuming {run.run_dir} after epoch {run.start_epoch} ({ckpt.path.name})")


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
    sums, train_time = train_epoch(run, net, epoch, progress)
    ev = _evaluate(run)
    row = dict(zip(METRIC_COLUMNS, (epoch + 1, float(sums[0] / sums[2]), float(sums[1] / sums[2]), ev.loss,
                                    ev.accuracy, run.optimizer.param_groups[0]["lr"], train_time,
                                    float(sums[2]) / train_time), strict=True))
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
