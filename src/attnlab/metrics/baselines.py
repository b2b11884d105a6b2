"""Baseline maps that know nothing about the image, scored beside the real maps so a reader sees chance.

* :func:`uniform_maps`: the same value everywhere. Its energy shares are the regions' areas, its pixel AUC
  is exactly 0.5; its pointing games point at the top-left pixel (the first of equal maxima).
* :func:`centre_prior_maps`: a Gaussian at the canvas centre, the classic centre-bias baseline of saliency
  evaluation: what a map scores by betting that the object sits near the middle.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch import Tensor

__all__ = ["CENTRE_PRIOR_SIGMA", "centre_prior_maps", "uniform_maps"]

#: The centre prior's default standard deviation, as a fraction of the canvas's shorter side: a quarter puts
#: the middle of each edge two sigmas out (value e^-2, about 0.14), so the map falls off across the canvas
#: without being flat (a larger sigma tends to the uniform map) or a point (a smaller one ignores most objects).
CENTRE_PRIOR_SIGMA = 0.25


def _check_size(n: int, h: int, w: int) -> None:
    for name, v, least in (("n", n, 0), ("h", h, 1), ("w", w, 1)):
        if isinstance(v, bool) or not isinstance(v, Integral) or v < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {v!r}")


def uniform_maps(n: int, h: int, w: int, device: torch.device | str | None = None) -> Tensor:
    """``n`` maps of ones: (N, H, W) float32.

    Raises:
        ValueError: ``n`` < 0, or ``h`` / ``w`` < 1.
    """
    _check_size(n, h, w)
    return torch.ones(n, h, w, device=device)


def centre_prior_maps(n: int, h: int, w: int, sigma: float | None = None,
                      device: torch.device | str | None = None) -> Tensor:
    """``n`` copies of a Gaussian at the canvas centre, peak 1: exp(-d^2 / (2 sigma^2)), d the distance in
    pixels from the centre ((W - 1) / 2, (H - 1) / 2).

    Args:
        n, h, w: the maps' count and size.
        sigma: standard deviation in pixels; default ``CENTRE_PRIOR_SIGMA`` times the shorter side.
        device: where to build them.

    Returns:
        (N, H, W) float32 in [0, 1], 1 at the centre.

    Raises:
        ValueError: a bad size, or a sigma that is not a positive finite number.
    """
    _check_size(n, h, w)
    if sigma is None:
        sigma = CENTRE_PRIOR_SIGMA * min(h, w)
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma!r}")
    ys = torch.arange(h, device=device, dtype=torch.float32) - (h - 1) / 2  # (H,)
    xs = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2  # (W,)
    d2 = ys[:, None] ** 2 + xs[None, :] ** 2  # (H, W)
    return torch.exp(-d2 / (2 * float(sigma) ** 2)).expand(n, h, w).contiguous()
