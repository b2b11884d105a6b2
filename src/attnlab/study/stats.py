"""Uncertainty for the study's figures: bootstrap intervals over images, t intervals over seeds."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["bootstrap_mean_ci", "paired_bootstrap_ci", "t_interval", "T95"]

# Two-sided 95% Student-t quantiles by degrees of freedom (1..30), then the normal value.
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def _t95(df: int) -> float:
    return T95[df - 1] if 1 <= df <= len(T95) else 1.960


def bootstrap_mean_ci(values: Tensor, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` (N,) with a 95% percentile-bootstrap interval over items."""
    v = values.double().flatten()
    if v.numel() == 0:
        raise ValueError("no values")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, v.numel(), (n_boot, v.numel()), generator=g)
    means = v[idx].mean(1)
    lo, hi = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return float(v.mean()), lo, hi


def paired_bootstrap_ci(a: Tensor, b: Tensor, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean of a - b, low, high) over the same items, resampling items jointly."""
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return bootstrap_mean_ci(a.double() - b.double(), n_boot, seed)


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) with a 95% Student-t interval over independent runs (seeds); one run has none."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    m = sum(values) / n
    if n == 1:
        return m, float("nan"), float("nan")
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = _t95(n - 1) * sd / math.sqrt(n)
    return m, m - half, m + half
