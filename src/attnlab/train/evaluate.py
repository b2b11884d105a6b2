"""Evaluation: accuracy, loss, per-class accuracy and the confusion matrix, summed over ranks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .batches import TensorSet, iterate_batches
from .distributed import DistInfo, all_reduce_sum

__all__ = ["EvalResult", "evaluate"]


@dataclass
class EvalResult:
    """Metrics of a model on a dataset."""

    accuracy: float
    loss: float
    count: int
    per_class_accuracy: list[float]
    confusion: list[list[int]]  # rows: true class, columns: predicted class

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "loss": self.loss, "count": self.count,
                "per_class_accuracy": self.per_class_accuracy, "confusion": self.confusion}


@torch.no_grad()
def evaluate(model: nn.Module, ts: TensorSet, num_classes: int, *, batch_size: int = 256,
             transform=None, device: torch.device | str = "cpu",
             info: DistInfo | None = None, channels_last: bool = False,
             autocast_dtype: torch.dtype | None = None) -> EvalResult:
    """Evaluate ``model`` on every sample of ``ts`` exactly once (ranks take disjoint shards).

    ``transform`` is the evaluation pipeline (normalisation) applied to each float batch in [0, 1].

    The model's train/eval mode is restored afterwards.
    """
    info = info or DistInfo(device=torch.device(device))
    was_training = model.training
    model.eval()
    device = torch.device(device)
    conf = torch.zeros(num_classes * num_classes, dtype=torch.float64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    try:
        # Disjoint shards without padding: every sample counted once.
        shard = TensorSet(ts.images[info.rank::info.world_size], ts.labels[info.rank::info.world_size])
        for x, y in iterate_batches(shard, batch_size, epoch=0, seed=0, shuffle=False, transform=transform,
                                    device=device, channels_last=channels_last):
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = model(x)
            logits = logits.float()
            if not torch.isfinite(logits).all():
                raise FloatingPointError("the model produced NaN/inf logits during evaluation; the weights are "
                                         "corrupt or training diverged (try a lower --lr)")
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
            conf += torch.bincount(y * num_classes + logits.argmax(1), minlength=num_classes**2).double()
    finally:
        model.train(was_training)
    all_reduce_sum(conf, info)
    all_reduce_sum(loss_sum, info)
    cm = conf.view(num_classes, num_classes).round().long().cpu()
    count = int(cm.sum())
    if count == 0:
        raise ValueError("no samples to evaluate on")
    per_class = (cm.diag().double() / cm.sum(1).clamp_min(1).double()).tolist()
    return EvalResult(accuracy=float(cm.diag().sum()) / count, loss=float(loss_sum) / count, count=count,
                      per_class_accuracy=per_class, confusion=cm.tolist())
