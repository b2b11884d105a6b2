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

    Returns:
        (EvalResult, class names, the checkpoint).
    """
    import torch

    from ..data import create_dataset, default_transforms
    from .batches import TensorSet, as_tensor_set
    from .distributed import pick_device
    from .evaluate import evaluate

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
    if limit:
        ts = TensorSet(ts.images[:limit], ts.labels[:limit])
    dev = pick_device(device)
    model = model_from_checkpoint(ckpt).to(dev)
    with torch.no_grad():
        result = evaluate(model, ts, ds.num_classes, batch_size=batch_size, transform=default_transforms(name, False),
                          device=dev)
    return result, list(ds.classes), ckpt
