"""pytorch-grad-cam's two smoothing options, for every CAM method where they apply.

* **Augmentation smoothing** (``aug_smooth``): the map of each augmented copy of the input is mapped back to
  the input's frame and the maps are averaged. pytorch-grad-cam's default set, ttach's
  ``HorizontalFlip() x Multiply([0.9, 1, 1.1])`` (six copies: no flip or a horizontal flip, times the input
  multiplied by 0.9, 1 or 1.1), is :func:`default_augmentations`; spatial rescalings (the input resized by a
  factor, the map resized back) are an option (``default_augmentations(scales=(0.75, 1.0, 1.25))``).
* **Eigen smoothing** (``eigen_smooth``): instead of summing the weighted activations ``w_k A_k`` over the
  channels, project them on their first principal component (pytorch-grad-cam's ``get_2d_projection``:
  positions as samples, channels as features, centred per channel), then ReLU. The component's sign is
  fixed so that the projection correlates positively with the channel sum it replaces (pytorch-grad-cam
  leaves it to LAPACK, which can invert the map).

Both are constructor options of every method (``GradCAM(model, layer, aug_smooth=True, eigen_smooth=True)``);
methods that already are a principal component (Eigen-CAM, Eigen-Grad-CAM, KPCA-CAM) refuse ``eigen_smooth``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import CAMResult, TargetSpec, normalize_maps
from .projection import first_component_projection

__all__ = ["Augmentation", "channel_reduce", "default_augmentations", "reduce_weighted", "smooth_over_augmentations"]


# ----------------------------------------------------------------------------------------------------------------
# Eigen smoothing


def reduce_weighted(weighted: Tensor, eigen: bool = False) -> Tensor:
    """ReLU of the channel sum of weighted activations or, with ``eigen``, of their first principal component.

    (N, K, h, w) -> (N, h, w) >= 0.
    """
    reduced = first_component_projection(weighted) if eigen else weighted.sum(1)
    return reduced.clamp_min_(0)


def channel_reduce(a: Tensor, w: Tensor, eigen: bool = False) -> Tensor:
    """ReLU(sum_k w_k A_k), or the first principal component of w * A with ``eigen``.

    Args:
        a: activations (N, K, h, w).
        w: channel weights (N, K) or per-position weights (N, K, h, w).
        eigen: eigen smoothing.

    Returns:
        (N, h, w) >= 0.
    """
    if w.dim() == 2 and not eigen:
        return torch.einsum("nk,nkhw->nhw", w, a).clamp_min_(0)
    return reduce_weighted(a * (w[:, :, None, None] if w.dim() == 2 else w), eigen)


# ----------------------------------------------------------------------------------------------------------------
# Augmentation smoothing


@dataclass(frozen=True)
class Augmentation:
    """One test-time augmentation and its inverse on maps.

    Attributes:
        flip: flip the input horizontally (the map is flipped back).
        multiply: multiply the input by this factor (ttach's ``Multiply``; the map needs no inverse).
        scale: resize the input bilinearly by this factor (the map is resized back to the input size).
    """

    flip: bool = False
    multiply: float = 1.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.multiply) and math.isfinite(self.scale)) or self.scale <= 0:
            raise ValueError(f"an augmentation needs a finite multiply and a finite scale > 0, got {self}")

    def size(self, size: Sequence[int]) -> tuple[int, int]:
        """The (H', W') the input of size (H, W) is resized to (at least 1 x 1)."""
        return tuple(max(1, round(s * self.scale)) for s in size)  # type: ignore[return-value]

    def apply(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H', W'): resized, flipped, multiplied."""
        if self.scale != 1:
            x = F.interpolate(x, size=self.size(x.shape[-2:]), mode="bilinear", align_corners=False)
        if self.flip:
            x = x.flip(-1)
        return x * self.multiply if self.multiply != 1 else x

    def invert(self, maps: Tensor, size: Sequence[int]) -> Tensor:
        """Maps of the augmented input back in the input's frame: (N, h', w') -> (N, *size)."""
        if self.flip:
            maps = maps.flip(-1)
        if tuple(maps.shape[-2:]) != tuple(size):
            if maps.dtype in (torch.float16, torch.bfloat16):
                maps = maps.float()
            maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
        return maps


def default_augmentations(multiply: Sequence[float] = (0.9, 1.0, 1.1),
                          scales: Sequence[float] = (1.0,), flip: bool = True) -> list[Augmentation]:
    """pytorch-grad-cam's default test-time augmentations, with optional spatial scales.

    The product of the scales, (no flip, horizontal flip) and the intensity factors, in that nesting (the
    default is ttach's ``HorizontalFlip() x Multiply([0.9, 1, 1.1])``: six augmentations).
    """
    flips = (False, True) if flip else (False,)
    return [Augmentation(f, float(m), float(s)) for s in scales for f in flips for m in multiply]


def resolve_augmentations(aug_smooth: bool | Sequence[Augmentation]) -> list[Augmentation]:
    """The augmentations of an ``aug_smooth`` option: [] (off), the defaults (True), or the given ones."""
    if aug_smooth is False or aug_smooth is None:
        return []
    if aug_smooth is True:
        return default_augmentations()
    if isinstance(aug_smooth, Sequence) and aug_smooth and all(isinstance(a, Augmentation) for a in aug_smooth):
        return list(aug_smooth)
    raise TypeError("aug_smooth must be True, False or a non-empty sequence of cam.Augmentation, got "
                    f"{aug_smooth!r}")


def _repeat_targets(targets: Any, times: int) -> Any:
    """Class indices repeated for ``times`` stacked copies of the batch; None or a callable unchanged."""
    if isinstance(targets, Tensor):
        return targets.repeat(times)
    return targets


def smooth_over_augmentations(compute: Callable[[Tensor, TargetSpec], CAMResult], x: Tensor, targets: Any,
                              augmentations: Sequence[Augmentation], output: Any,
                              classes: Tensor | None) -> CAMResult:
    """Average the maps of augmented copies of ``x``, each mapped back to the input's frame.

    The augmentations of one scale are stacked into one batch and computed by one ``compute`` call (one
    forward and one backward for a gradient method). Each augmentation's maps (normalised to [0, 1], as every
    method returns them) are inverted and averaged, and the mean is normalised again; ``raw`` holds each layer's
    raw maps inverted (flipped back, resized to the layer resolution of the first augmentation of scale 1, else
    of the first) and averaged.

    Args:
        compute: the method's plain computation, (x, targets) -> CAMResult.
        x: (N, C, H, W).
        targets: the (N,) class indices to explain (each augmented copy explains its image's class), a
            callable target (applied to the stacked outputs) or None (a class-agnostic method).
        augmentations: the augmentations.
        output, classes: the model's output on ``x`` and the classes explained, reported in the result.

    Returns:
        CAMResult with (N, H, W) maps.
    """
    n, size = x.shape[0], x.shape[-2:]
    maps: list[Tensor] = []
    raws: list[dict[str, Tensor]] = []
    ordered = sorted(range(len(augmentations)), key=lambda i: augmentations[i].scale)
    done: dict[int, tuple[Tensor, dict[str, Tensor]]] = {}
    for _, group in groupby(ordered, key=lambda i: augmentations[i].scale):
        idx = list(group)
        stacked = torch.cat([augmentations[i].apply(x) for i in idx])
        res = compute(stacked, _repeat_targets(targets, len(idx)))
        for j, i in enumerate(idx):
            done[i] = (res.maps[j * n:(j + 1) * n], {k: r[j * n:(j + 1) * n] for k, r in res.raw.items()})
    ref = next((i for i, a in enumerate(augmentations) if a.scale == 1), 0)
    ref_sizes = {k: r.shape[-2:] for k, r in done[ref][1].items()}
    for i, aug in enumerate(augmentations):
        m, raw = done[i]
        maps.append(aug.invert(m, size))
        raws.append({k: aug.invert(r, ref_sizes[k]) for k, r in raw.items()})
    mean_map = normalize_maps(torch.stack(maps).mean(0))
    mean_raw = {k: torch.stack([r[k] for r in raws]).mean(0) for k in ref_sizes}
    return CAMResult(maps=mean_map, raw=mean_raw, output=output, classes=classes)
