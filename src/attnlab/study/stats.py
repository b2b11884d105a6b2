"""Uncertainty for the study's figures: bootstrap intervals over images, t intervals over seeds, and the tests a
reviewer asks for: Student's t-test over seeds (its distribution from the regularised incomplete beta function,
no scipy), Holm's correction for comparing several models with one baseline, and Cohen's d_z effect sizes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["Interval", "bootstrap_mean_ci", "paired_bootstrap_ci", "t_interval", "wilson_interval", "T95",
           "OVER_SEEDS", "OVER_IMAGES", "WILSON", "EFFECT_OVER_SEEDS", "betainc", "student_t_p", "t_test_p", "holm",
           "cohens_dz", "effect_size_over_seeds"]

OVER_SEEDS = "Student-t 95% over seeds"
OVER_IMAGES = "bootstrap 95% over images"
WILSON = "Wilson 95% over test images"
EFFECT_OVER_SEEDS = "Cohen's d_z per seed (paired over images), Student-t 95% over seeds"


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


def _beta_continued_fraction(a: float, b: float, x: float, max_terms: int = 500, eps: float = 1e-15) -> float:
    """The continued fraction of I_x(a, b) (Numerical Recipes' ``betacf``), by the modified Lentz method."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, max_terms + 1):
        for aa in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # the even step, then the odd one
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b), for a, b > 0 and x in [0, 1].

    Its continued fraction converges fast for x < (a + 1) / (a + b + 2); beyond, the symmetry
    I_x(a, b) = 1 - I_{1-x}(b, a) is used.

    Raises:
        ValueError: a or b not positive, or x outside [0, 1].
    """
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a, b > 0, got a={a}, b={b}")
    if not 0 <= x <= 1:
        raise ValueError(f"betainc needs x in [0, 1], got {x}")
    if x == 0 or x == 1:
        return float(x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_continued_fraction(b, a, 1 - x) / b


def student_t_p(t: float, df: float) -> float:
    """Two-sided p-value of a Student t statistic: P(|T| >= |t|) with ``df`` degrees of freedom,
    = I_{df / (df + t^2)}(df / 2, 1 / 2). NaN for a NaN t; 0 for an infinite one.

    Raises:
        ValueError: ``df`` not positive.
    """
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isnan(t):
        return float("nan")
    if math.isinf(t):
        return 0.0
    return min(1.0, betainc(df / 2, 0.5, df / (df + t * t)))


def _clean(values: Sequence[float] | Tensor) -> list[float]:
    """Values as floats, NaN left out (a figure undefined for that item)."""
    flat = torch.as_tensor(values, dtype=torch.float64).flatten().tolist()
    return [v for v in flat if not math.isnan(v)]


def _mean_sd(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def t_test_p(values: Sequence[float] | Tensor) -> float:
    """Two-sided one-sample Student t-test of mean zero: the p-value of t = mean / (sd / sqrt(n)), n - 1 degrees
    of freedom (``values``: e.g. one gain over the baseline per seed).

    NaN for fewer than two values (no variance to test against) or when any value is NaN. Values with no
    spread at all have an infinite t: p = 0 when they are all the same non-zero number (every run agrees
    exactly), p = 1 when they are all zero (no difference at all).
    """
    flat = torch.as_tensor(values, dtype=torch.float64).flatten().tolist()
    if len(flat) < 2 or any(math.isnan(v) for v in flat):
        return float("nan")
    m, sd = _mean_sd(flat)
    if sd == 0:
        return 1.0 if m == 0 else 0.0
    return student_t_p(m / (sd / math.sqrt(len(flat))), len(flat) - 1)


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (step-down; Holm 1979): with the m p-values sorted ascending,
    p_adj(i) = max over j <= i of min(1, (m - j + 1) p(j)). Comparing p_adj with alpha keeps the chance of
    any false positive among the m tests at most alpha. The adjusted values are monotone in the raw ones and
    capped at 1. NaN p-values (tests that could not be run) stay NaN and do not count in m.

    Raises:
        ValueError: a p-value outside [0, 1].
    """
    for name, p in pvalues.items():
        if not (math.isnan(p) or 0 <= p <= 1):
            raise ValueError(f"p-values lie in [0, 1], got {p} for {name!r}")
    tested = sorted((p, name) for name, p in pvalues.items() if not math.isnan(p))
    out = {name: float("nan") for name in pvalues}
    running = 0.0
    for i, (p, name) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - i) * p))
        out[name] = running
    return out


def cohens_dz(diffs: Sequence[float] | Tensor) -> float:
    """Cohen's d_z of paired differences: their mean over their standard deviation (n - 1 in the denominator).

    NaN differences (items where the figure is undefined) are left out. NaN for fewer than two differences or
    when every difference is zero; +/-inf when all are the same non-zero number.
    """
    v = _clean(diffs)
    if len(v) < 2:
        return float("nan")
    m, sd = _mean_sd(v)
    if sd == 0:
        return float("nan") if m == 0 else math.copysign(math.inf, m)
    return m / sd


def effect_size_over_seeds(per_seed_diffs: Sequence[Sequence[float] | Tensor]) -> Interval:
    """The effect size over seeds: each seed's Cohen's d_z from its per-image paired differences (N,), then their
    mean with a Student-t 95% interval over seeds (none for one seed).

    Raises:
        ValueError: no seed.
    """
    if not len(per_seed_diffs):
        raise ValueError("effect_size_over_seeds needs the paired differences of at least one seed")
    dzs = [cohens_dz(d) for d in per_seed_diffs]
    return Interval(*t_interval(dzs), n=len(dzs), method=EFFECT_OVER_SEEDS)
