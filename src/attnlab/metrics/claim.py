"""Where a map's energy goes and how well it ranks the object: measures that ignore a map's offset and scale.

A map that is a constant plus a small signal (a module's sigmoid spatial map sits near 0.5 everywhere) has
an energy pointing game equal to the box's share of the canvas: the raw energy sees the offset, not the map.
The measures here give the same value for ``maps`` and ``a * maps + b`` (any ``a > 0``, any ``b``):

* :func:`minmax_normalise`: each map to [0, 1] (min to 0, max to 1); a constant map becomes all ones.
* :func:`energy_shares`: the shares of the min-max normalised map's energy on the object, on the clutter
  and on the empty background (three numbers summing to 1 per map).
* :func:`clutter_pointing_miss`: the map's maximum lands on clutter (the pointing game's miss onto clutter).
* :func:`pixel_auc`: the AUROC of the map's values as a classifier of object pixels vs the rest (0.5 is
  chance, 1 ranks every object pixel above every other pixel), ties counting half (Mann-Whitney U).

Maps are (N, H, W) floating point, masks (N, H, W) bool (non-zero is inside) at the maps' size. Every function
is batched over N with no Python loop per image, and runs on the maps' device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._regions import as_maps, as_masks

__all__ = ["clutter_pointing_miss", "energy_shares", "minmax_normalise", "pixel_auc", "SHARE_REGIONS"]

#: The regions :func:`energy_shares` splits a map's energy into, in its column order.
SHARE_REGIONS = ("object", "clutter", "background")


def _masks_like(masks: Tensor, maps: Tensor, what: str) -> Tensor:
    """Check ``masks`` (N, H, W) against ``maps`` (N, H, W) -> bool masks on the maps' device."""
    masks = as_masks(masks)
    if tuple(masks.shape) != tuple(maps.shape):
        raise ValueError(f"{what} {tuple(masks.shape)} must match the maps {tuple(maps.shape)}")
    return masks.to(device=maps.device, dtype=torch.bool)


def minmax_normalise(maps: Tensor) -> Tensor:
    """Each map min-max normalised to [0, 1]: (map - min) / (max - min); a constant map becomes all ones.

    A constant map carries no information on where anything is, so it spreads its energy evenly (its shares
    are the regions' areas: what chance looks like), rather than having no energy at all.

    Args:
        maps: (N, H, W) (or (N, 1, H, W)) saliency, any finite values.

    Returns:
        (N, H, W) in [0, 1], in the maps' floating dtype.
    """
    maps = as_maps(maps)
    lo = maps.amin((1, 2), keepdim=True)  # (N, 1, 1)
    span = maps.amax((1, 2), keepdim=True) - lo  # (N, 1, 1)
    scaled = (maps - lo) / span.clamp_min(torch.finfo(maps.dtype).tiny)
    return torch.where(span > 0, scaled.clamp(0, 1), torch.ones_like(maps))


def energy_shares(maps: Tensor, object_masks: Tensor, clutter_masks: Tensor) -> Tensor:
    """Shares of each min-max normalised map's energy on the object, the clutter and the empty background.

    The energy is the sum of :func:`minmax_normalise`'s values (so the shares do not depend on the map's
    offset or scale); the background is every pixel on neither mask. A pixel on both masks counts as object
    (the datasets never put clutter on the object; this keeps the three shares a partition of the energy).

    Args:
        maps: (N, H, W) saliency.
        object_masks: (N, H, W) the object's pixels.
        clutter_masks: (N, H, W) the clutter's pixels.

    Returns:
        (N, 3) shares in the order of ``SHARE_REGIONS`` (object, clutter, background), each row summing to 1.
    """
    maps = minmax_normalise(maps)
    obj = _masks_like(object_masks, maps, "object masks")
    clutter = _masks_like(clutter_masks, maps, "clutter masks") & ~obj
    total = maps.sum((1, 2))  # (N,) >= 1: every normalised map has a pixel at 1
    on_object = (maps * obj).sum((1, 2)) / total
    on_clutter = (maps * clutter).sum((1, 2)) / total
    return torch.stack([on_object, on_clutter, (1 - on_object - on_clutter).clamp_min(0)], 1)


def clutter_pointing_miss(maps: Tensor, clutter_masks: Tensor) -> Tensor:
    """Whether each map's maximum lands on clutter (the pointing game's miss onto the clutter).

    With several maxima the first in row-major order counts (``argmax``, as :func:`pointing_game`); a
    constant map therefore points at the top-left pixel.

    Args:
        maps: (N, H, W) saliency.
        clutter_masks: (N, H, W) the clutter's pixels.

    Returns:
        (N,) bool.
    """
    maps = as_maps(maps)
    clutter = _masks_like(clutter_masks, maps, "clutter masks")
    n, h, w = maps.shape
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=maps.device)
    peak = maps.reshape(n, h * w).argmax(1, keepdim=True)  # (N, 1)
    return clutter.reshape(n, h * w).gather(1, peak).squeeze(1)


def _tie_bounds(sorted_values: Tensor) -> tuple[Tensor, Tensor]:
    """First and last position of each value's run of ties in rows sorted ascending: (N, K) -> 2 x (N, K) integers
    (int32 while positions fit: half the memory traffic of int64, measured 1.7x faster on CPU)."""
    n, k = sorted_values.shape
    dtype = torch.int32 if k < 2**30 else torch.int64
    pos = torch.arange(k, device=sorted_values.device, dtype=dtype).expand(n, k)
    new = torch.ones_like(sorted_values, dtype=torch.bool)
    new[:, 1:] = sorted_values[:, 1:] != sorted_values[:, :-1]  # (N, K) a run starts here
    end = torch.ones_like(new)
    end[:, :-1] = new[:, 1:]  # (N, K) a run ends here
    first = torch.where(new, pos, torch.zeros_like(pos)).cummax(1).values
    last = torch.where(end, pos, torch.full_like(pos, k)).flip(1).cummin(1).values.flip(1)
    return first, last


def _auc_rows(values: Tensor, positive: Tensor) -> Tensor:
    """Twice the Mann-Whitney U of the positives and their count, per row: (M, K) float, (M, K) bool ->
    2 x (M,) int64."""
    values, order = values.sort(1)  # (M, K) ascending
    first, last = _tie_bounds(values)
    twice_rank = first + last + 2  # (M, K): twice the 1-based average rank of each pixel's run of ties
    positive = positive.gather(1, order)  # (M, K) object pixels in sorted order
    p = positive.sum(1)  # (M,)
    return (twice_rank * positive).sum(1, dtype=torch.int64) - p * (p + 1), p


def pixel_auc(maps: Tensor, object_masks: Tensor, chunk_pixels: int = 1 << 24) -> Tensor:
    """AUROC of each map's values as a classifier of the object's pixels against every other pixel.

    The Mann-Whitney form: the probability that a random object pixel has a higher value than a random
    other pixel, ties counting half. Computed from ranks (ties get their run's average rank) after one sort
    per map: AUC = (sum of the object pixels' ranks - P (P + 1) / 2) / (P Q) with P object and Q other pixels,
    summed in integers (twice the ranks), so it is exact up to the final division.

    Args:
        maps: (N, H, W) saliency.
        object_masks: (N, H, W) the object's pixels.
        chunk_pixels: upper bound on the pixels sorted at once (memory: about 30 bytes each); whole maps only.

    Returns:
        (N,) in [0, 1] (the maps' floating dtype, at least float32); NaN where the mask is empty or full
        (no pixel of one class: the AUC is undefined).
    """
    maps = as_maps(maps)
    obj = _masks_like(object_masks, maps, "object masks")
    n, h, w = maps.shape
    flat, positive = maps.reshape(n, h * w), obj.reshape(n, h * w)
    step = max(1, chunk_pixels // (h * w))
    parts = [_auc_rows(flat[i:i + step], positive[i:i + step]) for i in range(0, n, step)]
    twice_u = torch.cat([u for u, _ in parts]) if parts else flat.new_zeros(0, dtype=torch.int64)
    p = torch.cat([c for _, c in parts]) if parts else twice_u
    q = h * w - p
    dtype = torch.promote_types(maps.dtype, torch.float32)
    auc = twice_u.to(dtype) / (2 * p * q).clamp_min(1).to(dtype)
    return torch.where((p > 0) & (q > 0), auc, torch.full_like(auc, float("nan")))
