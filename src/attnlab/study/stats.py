"""Uncertainty for the study's figures: bootstrap intervals over images, t intervals over seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["Interval", "bootstrap_mean_ci", "paired_bootstrap_ci", "t_interval", "wilson_interval", "T95",
           "OVER_SEEDS", "OVER_IMAGES", "WILSON"]

OVER_SEEDS = "Student-t 95% over seeds"
OVER_IMAGES = "bootstrap 95% over images"
WILSON = "Wilson 95% over test images"


@dataclass(frozen=True)
class Interval:
    """A figure with its 95% interval.

    Attributes:
        mean: the estimate.
        low, high: the interval's ends (NaN when there is none, e.g. a t-interval over one run).
        n: runs (seeds) behind the figure.
        method: how the interval was made, in words (e.g. ``OVER_SEEDS``), shown beside it.
    """

    mean: float
    low: float
    high: float
    n: int
    method: str

    @property
    def has_bounds(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def to_dict(self) -> dict[str, Any]:
        """``{"mean", "low", "high", "n", "interval"}`` (the method under ``interval``)."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "interval": self.method}

    @classmethod
    def over_seeds(cls, values: list[float]) -> Interval:
        """The mean of one figure per seed, with a Student-t interval (none for one seed)."""
        return cls(*t_interval(values), n=len(values), method=OVER_SEEDS)

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


def wilson_interval(acc: float, n: int) -> tuple[float, float]:
    """(low, high): the 95% Wilson interval of an accuracy ``acc`` over ``n`` test images (NaN for none)."""
    if n == 0:
        return float("nan"), float("nan")
    z = 1.96
    d = 1 + z * z / n
    c = (acc + z * z / (2 * n)) / d
    h = z * ((acc * (1 - acc) / n + z * z / (4 * n * n)) ** 0.5) / d
    return c - h, c + h
