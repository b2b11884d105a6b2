"""Rebuild a trained model from a checkpoint, with no code from the user."""

from __future__ import annotations

import os

from torch import nn

from ..models import create_model
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint

__all__ = ["evaluate_checkpoint", "load_model", "model_from_checkpoint"]


def model_from_checkpoint(ckpt: Checkpoint) -> nn.Module:
    """Build the checkpoint's model from its stored config and load its weights (strictly)."""
    cfg = ckpt.model_config
    try:
        model = create_model(cfg["name"], num_classes=cfg["num_classes"], attention=cfg.get("attention"),
                             attention_kwargs=cfg.get("attention_kwargs") or None, in_chans=cfg.get("in_chans", 3))
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{ckpt.path}: model config {cfg!r} cannot be built ({err})") from err
    try:
        model.load_state_dict(ckpt.model_state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{ckpt.path}: weights do not fit {cfg['name']} "
                              f"(attention={cfg.get('attention')}): {str(err)[:400]}") from err
    return model.eval()


def load_model(path: str | os.PathLike) -> nn.Module:
    """The trained model of a run directory or checkpoint, in eval mode.

    Example:
        >>> model = attnlab.load_model("runs/cbam")
    """
    return model_from_checkpoint(load_checkpoint(path))


def evaluate_checkpoint(path: str | os.PathLike, *, dataset: str | None = None, split: str = "test",
                        root: str | None = None, batch_size: int = 256, device: str | None = None,
                        limit: int | None = None):
    """Evaluate a checkpoint's model on a dataset split (default: the dataset it was trained on).

    Args:
        path: a run folder or one of its checkpoints.
        dataset: the dataset name (default: the one the model was trained on).
        split: ``"train"`` or ``"test"``.
        root: the dataset's folder (default: the one the run used, else the dataset's default).
        batch_size: images per forward pass, >= 1.
        device: auto, cpu, cuda, cuda:N or mps (see :func:`attnlab.train.distributed.pick_device`).
        limit: evaluate only the first ``limit`` samples (>= 1); None for all.

    Returns:
        (EvalResult, class names, the checkpoint).

    Raises:
        ValueError: a limit or batch size below 1, an unknown split or device (before anything is loaded).
    """
    import torch

    from ..data import create_dataset, default_transforms
    from .batches import TensorSet, as_tensor_set
    from .distributed import pick_device
    from .evaluate import evaluate

    _check_eval_args(split, batch_size, limit)
    dev = pick_device(device)
    ckpt = load_checkpoint(path)
    train_cfg = ckpt.state.get("extra", {}).get("train", {})
    name = dataset or train_cfg.get("dataset")
    if not name:
        raise CheckpointError(f"{ckpt.path} does not say which dataset it was trained on; pass --dataset")
    kwargs = train_cfg.get("dataset_kwargs", {}) if name == train_cfg.get("dataset") else {}
    ds = create_dataset(name, split, root=root or train_cfg.get("data_root"), **kwargs)
    if ds.num_classes != ckpt.model_config["num_classes"]:
        raise ValueError(f"{name} has {ds.num_classes} classes but the checkpoint's model predicts "
                         f"{ckpt.model_config['num_classes']}; evaluate it on the dataset it was trained for")
    ts = as_tensor_set(ds)
    if limit is not None:
        ts = TensorSet(ts.images[:limit], ts.labels[:limit])
    model = model_from_checkpoint(ckpt).to(dev)
    with torch.no_grad():
        result = evaluate(model, ts, ds.num_classes, batch_size=batch_size, transform=default_transforms(name, False),
                          device=dev)
    return result, list(ds.classes), ckpt


def _check_eval_args(split: str, batch_size: int, limit: int | None) -> None:
    """The numbers and split :func:`evaluate_checkpoint` takes, refused before anything is loaded."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size must be a whole number >= 1, got {batch_size!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"--limit must be a whole number >= 1 (leave it out for all samples), got {limit!r}")
