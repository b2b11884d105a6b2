"""Deletion and insertion: does the model's score follow the saliency map? Petsiuk et al., "RISE: Randomized
Input Sampling for Explanation of Black-box Models" (BMVC 2018, https://arxiv.org/abs/1806.07421), Sec. 4.1.

Pixels are ranked by decreasing saliency. *Deletion* starts from the image and replaces ``step`` pixels
at a time, most salient first, with a substrate (zeros, as in RISE); *insertion* starts from a blurred
image (RISE: an 11x11 Gaussian, sigma 5, zero padding) and puts the original pixels back in the same
order. After each step the model's probability of the target class is read; the metric is the area
under that curve with the x axis scaled to [0, 1] (trapezoid rule, RISE's ``auc``). Lower deletion and
higher insertion AUC mean a more faithful map. RISE uses ``step = 224`` at 224 x 224 (one row's worth of
pixels per step); the default here is the image width likewise.

Pixels of equal saliency are taken in row-major order. All (image, step) inputs are built with one
``torch.where`` from a per-pixel rank and forwarded in batches of ``batch_size``; there is no loop over
pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._regions import as_maps, check_finite

__all__ = ["causal_curve", "deletion_auc", "insertion_auc", "curve_auc", "gaussian_blur"]

Substrate = str | Callable[[Tensor], Tensor]


def gaussian_blur(images: Tensor, size: int = 11, sigma: float = 5.0) -> Tensor:
    """Per-channel Gaussian blur with zero padding (RISE's insertion substrate): (N, C, H, W) -> same.

    Raises:
        ValueError: images not (N, C, H, W), ``size`` not an odd whole number >= 1, or ``sigma`` not > 0.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd whole number >= 1 (the kernel's side), got {size!r}")
    if not sigma > 0 or not math.isfinite(sigma):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
    d = torch.arange(size, dtype=torch.float64, device=images.device) - (size - 1) / 2
    g = torch.exp(-(d**2) / (2 * sigma**2))
    k = (g[:, None] * g[None, :]) / (g.sum() ** 2)  # (size, size), sums to 1
    c = images.shape[1]
    weight = k.to(images.dtype).expand(c, 1, size, size)
    return F.conv2d(images, weight, padding=size // 2, groups=c)


def _substrate(kind: Substrate, images: Tensor) -> Tensor:
    if callable(kind):
        out = kind(images)
        if not isinstance(out, Tensor) or out.shape != images.shape:
            raise ValueError("a substrate callable must return a tensor shaped like the images")
        return out
    if kind == "zero":
        return torch.zeros_like(images)
    if kind == "blur":
        return gaussian_blur(images)
    if kind == "mean":
        return images.mean((2, 3), keepdim=True).expand_as(images).clone()
    raise ValueError(f"substrate must be 'zero', 'blur', 'mean' or a callable, got {kind!r}")


@contextmanager
def _frozen(model: Callable[..., Any]) -> Iterator[None]:
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.training = False
        yield
    finally:
        for m, flag in zip(modules, modes, strict=True):
            m.training = flag


def _classes(model: Callable[[Tensor], Tensor], images: Tensor, targets: int | Tensor | None) -> Tensor:
    """The class of each image (N,): ``targets`` (one for all, or one each), else the model's prediction."""
    out = model(images)
    n, k = out.shape[0], out.shape[-1]
    if targets is None:
        return out.argmax(1)
    classes = torch.as_tensor(targets, device=images.device)
    if classes.is_floating_point() or classes.dtype == torch.bool:
        raise ValueError(f"targets are class indices (ints), got {classes.dtype}")
    classes = classes.long().reshape(-1)
    if classes.numel() not in (1, n):
        raise ValueError(f"got {classes.numel()} targets for {n} images (give one, or one per image)")
    if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= k):
        raise ValueError(f"target class out of range [0, {k}): {classes.tolist()[:8]}")
    return classes.expand(n)


def curve_auc(curve: Tensor) -> Tensor:
    """Normalised area under each curve (N, S + 1) on x in [0, 1]: RISE's ``auc`` -> (N,)."""
    if curve.shape[-1] < 2:
        raise ValueError("a curve needs at least two points")
    return (curve.sum(-1) - curve[..., 0] / 2 - curve[..., -1] / 2) / (curve.shape[-1] - 1)


def causal_curve(model: Callable[[Tensor], Tensor], images: Tensor, maps: Tensor, mode: str,
                 targets: int | Tensor | None = None, *, step: int | None = None, substrate: Substrate | None = None,
                 batch_size: int = 64, probability: bool = True) -> Tensor:
    """The deletion or insertion curve of each image.

    Args:
        model: returns (N, classes) logits; run in eval mode without autograd (modes restored after).
        images: (N, C, H, W) inputs as the model takes them.
        maps: (N, H, W) saliency at the image size.
        mode: "deletion" or "insertion".
        targets: class per image (int or (N,)); default the model's prediction on the image.
        step: pixels changed per step (default W, RISE's one row's worth).
        substrate: "zero", "blur", "mean" or a callable images -> images; default "zero" for deletion and
            "blur" for insertion (RISE).
        batch_size: modified images per forward pass.
        probability: read the softmax probability (RISE) rather than the logit.

    Returns:
        (N, S + 1) scores, S = ceil(H * W / step): before any change, then after each step.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    maps = as_maps(maps).to(images.device)
    check_finite(images, "the images")
    n, c, h, w = images.shape
    if tuple(maps.shape) != (n, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (N, H, W) = {(n, h, w)} (upsample them first)")
    step = w if step is None else int(step)
    if step < 1 or batch_size < 1:
        raise ValueError("step and batch_size must be >= 1")
    hw = h * w
    n_steps = math.ceil(hw / step)
    if substrate is None:
        substrate = "zero" if mode == "deletion" else "blur"
    with _frozen(model), torch.no_grad():
        other = _substrate(substrate, images)
        start, finish = (images, other) if mode == "deletion" else (other, images)
        classes = _classes(model, images, targets)
        order = torch.argsort(maps.reshape(n, hw), dim=1, descending=True, stable=True)  # (N, HW), salient first
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(hw, device=order.device).expand(n, hw))
        rank = rank.view(n, 1, h, w)
        total = n * (n_steps + 1)
        scores = torch.empty(total, device=images.device)
        for lo in range(0, total, batch_size):
            p = torch.arange(lo, min(lo + batch_size, total), device=images.device)
            img, s = p // (n_steps + 1), p % (n_steps + 1)
            changed = rank[img] < (s * step)[:, None, None, None]  # (B, 1, H, W)
            inp = torch.where(changed, finish[img], start[img])  # (B, C, H, W)
            out = model(inp).float()
            if probability:
                out = out.softmax(1)
            scores[lo:lo + len(p)] = out.gather(1, classes[img][:, None]).squeeze(1)
    return scores.view(n, n_steps + 1)


def deletion_auc(model: Callable[[Tensor], Tensor], images: Tensor, maps: Tensor,
                 targets: int | Tensor | None = None, **kwargs: Any) -> Tensor:
    """Deletion AUC per image (lower is better): ``curve_auc(causal_curve(..., "deletion"))`` -> (N,)."""
    return curve_auc(causal_curve(model, images, maps, "deletion", targets, **kwargs))


def insertion_auc(model: Callable[[Tensor], Tensor], images: Tensor, maps: Tensor,
                  targets: int | Tensor | None = None, **kwargs: Any) -> Tensor:
    """Insertion AUC per image (higher is better): ``curve_auc(causal_curve(..., "insertion"))`` -> (N,)."""
    return curve_auc(causal_curve(model, images, maps, "insertion", targets, **kwargs))
