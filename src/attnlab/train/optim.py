"""Optimiser, learning-rate schedule and loss as the training loop uses them."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["param_groups", "create_optimizer", "describe_optimizer", "describe_schedule", "warmup_cosine",
           "OPTIMIZERS"]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights with decay, and norm/bias parameters (every tensor with ndim <= 1) without.

    Decaying BN/LayerNorm scales and biases hurts accuracy and has no regularising sense; the usual
    rule (timm, torchvision references) is to exempt every 0-D/1-D parameter.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _sgd(groups, lr, momentum):
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)


def _adamw(groups, lr, momentum):
    return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999))


OPTIMIZERS = {"sgd": _sgd, "adamw": _adamw}
#: Each optimiser as its builder above makes it, in words, from ``momentum``.
_IN_WORDS = {"sgd": lambda m: f"SGD with Nesterov momentum {m:g}" if m > 0 else "SGD without momentum",
             "adamw": lambda m: f"AdamW (betas {m:g}, 0.999)"}


def create_optimizer(model: nn.Module, name: str = "sgd", lr: float = 0.1, momentum: float = 0.9,
                     weight_decay: float = 5e-4) -> torch.optim.Optimizer:
    """SGD with (Nesterov) momentum or AdamW (``momentum`` is beta1), decay off for norm and bias."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](param_groups(model, weight_decay), lr, momentum)


def describe_optimizer(name: str, lr: float, momentum: float, weight_decay: float) -> str:
    """What :func:`create_optimizer` builds from these settings, in words (for reports).

    Example:
        >>> describe_optimizer("sgd", 0.1, 0.9, 5e-4)
        'SGD with Nesterov momentum 0.9, lr 0.1, weight decay 0.0005 (not on norm and bias parameters)'
    """
    if name not in _IN_WORDS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return f"{_IN_WORDS[name](momentum)}, lr {lr:g}, weight decay {weight_decay:g} (not on norm and bias parameters)"


def describe_schedule(warmup_epochs: float) -> str:
    """The training loop's learning-rate schedule (:func:`warmup_cosine` to zero), in words."""
    warm = f"linear warm-up over {warmup_epochs:g} epoch{'' if warmup_epochs == 1 else 's'}, then "
    warm = warm if warmup_epochs > 0 else ""
    return warm + "cosine decay to zero"


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int,
                  min_factor: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from ~0 to the base rate over ``warmup_steps``, then cosine decay to ``min_factor``.

    Stepped once per optimiser step. Its ``state_dict`` is plain JSON (the lambda is rebuilt from
    the arguments, not stored).
    """
    total_steps = max(1, total_steps)
    warmup_steps = min(max(0, warmup_steps), total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
