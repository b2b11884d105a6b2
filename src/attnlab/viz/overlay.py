"""Heatmap overlays: a saliency map coloured by a matplotlib colormap and blended onto its image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["colorize", "overlay", "require_matplotlib", "to_rgb"]

ArrayLike = Tensor | np.ndarray


def require_matplotlib() -> Any:
    """The ``matplotlib`` module, or an ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("attnlab.viz needs matplotlib: pip install 'attnlab[viz]' (or matplotlib itself)") from err
    return matplotlib


def _tensor(x: ArrayLike) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a tensor or numpy array, got {type(x).__name__}")
    return x.detach().cpu()


def _check_drawable(x: Tensor, what: str) -> None:
    """Refuse an empty picture, or one with NaN/inf (drawn as a flat or blank patch, nothing says why)."""
    if not x.numel():
        raise ValueError(f"{what} is empty: shape {tuple(x.shape)}")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{what} holds {bad} NaN or inf value{'s' if bad > 1 else ''} of {x.numel()}; it cannot be "
                         "drawn faithfully: fix or drop it first")


def _check_colormap(mpl: Any, cmap: str) -> None:
    if cmap not in mpl.colormaps:
        raise ValueError(f"unknown matplotlib colormap {cmap!r} (see matplotlib.colormaps, e.g. 'jet', 'viridis')")


def to_rgb(image: ArrayLike, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    """An image as float RGB (H, W, 3) in [0, 1] for display.

    Args:
        image: (C, H, W) with C in {1, 3}, (H, W, C), or (H, W); uint8 in [0, 255] or floats.
        mean, std: undo a ``Normalize(mean, std)`` first (per channel).

    Floats outside [0, 1] (after ``mean``/``std``) are min-max scaled to [0, 1]; a grey image becomes three
    equal channels.
    """
    x = _tensor(image)
    if x.dim() == 2:
        x = x[None]
    elif x.dim() == 3 and x.shape[0] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(2, 0, 1)  # (H, W, C) -> (C, H, W)
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with C in (1, 3), (H, W, C) or (H, W); got {tuple(x.shape)}")
    _check_drawable(x, "the image")
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    for name, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) != x.shape[0]:
            raise ValueError(f"{name} has {len(values)} values for an image of {x.shape[0]} channels")
    if mean is not None or std is not None:
        m = torch.tensor(mean if mean is not None else [0.0] * x.shape[0]).view(-1, 1, 1)
        s = torch.tensor(std if std is not None else [1.0] * x.shape[0]).view(-1, 1, 1)
        x = x * s + m
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.permute(1, 2, 0).numpy().astype(np.float32)  # (C, H, W) -> (H, W, 3)


def _map_at(cam_map: ArrayLike, size: tuple[int, int]) -> Tensor:
    m = _tensor(cam_map).float()
    while m.dim() > 2 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 2:
        raise ValueError(f"a map must be (H, W), got {tuple(m.shape)}")
    _check_drawable(m, "the map")
    if tuple(m.shape) != tuple(size):
        m = F.interpolate(m[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    if m.numel() and (float(m.min()) < 0 or float(m.max()) > 1):
        lo, hi = m.min(), m.max()
        m = (m - lo) / (hi - lo) if hi > lo else torch.zeros_like(m)
    return m


def colorize(cam_map: ArrayLike, cmap: str = "jet") -> np.ndarray:
    """A map (H, W) in [0, 1] coloured by a matplotlib colormap: float RGB (H, W, 3) in [0, 1]."""
    mpl = require_matplotlib()
    _check_colormap(mpl, cmap)
    m = _map_at(cam_map, tuple(_tensor(cam_map).shape[-2:]))
    return mpl.colormaps[cmap](m.numpy())[..., :3].astype(np.float32)


def overlay(image: ArrayLike, cam_map: ArrayLike, cmap: str = "jet", alpha: float = 0.5,
            mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    """Blend a coloured map onto its image: ``(1 - alpha) * image + alpha * cmap(map)``.

    Args:
        image: (C, H, W), (H, W, C) or (H, W) (see :func:`to_rgb`).
        cam_map: (H', W') in [0, 1] (values outside are min-max scaled); resized bilinearly to the image.
        cmap: a matplotlib colormap name.
        alpha: weight of the heatmap, in [0, 1].
        mean, std: undo the input normalisation of ``image``.

    Returns:
        RGB uint8 array (H, W, 3).
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    mpl = require_matplotlib()
    _check_colormap(mpl, cmap)
    rgb = to_rgb(image, mean, std)
    heat = mpl.colormaps[cmap](_map_at(cam_map, rgb.shape[:2]).numpy())[..., :3]
    out = (1 - alpha) * rgb + alpha * heat
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
