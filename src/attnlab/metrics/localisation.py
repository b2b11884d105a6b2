"""How well saliency maps localise the object: one value per image against a box or a mask.

Ground truth is a box (x0, y0, x1, y1) in pixels with x1, y1 exclusive (the Cluttered Fashion-MNIST
convention), several boxes per image as (N, M, 4) (empty boxes pad), or a mask (N, H, W) bool. Maps
are (N, H, W) at the image size (for a CAM, ``attnlab.cam`` already returns them so).

* :func:`pointing_game`: Zhang et al., "Top-down Neural Attention by Excitation Backprop" (ECCV 2016,
  https://arxiv.org/abs/1608.00507): a hit when the map's maximum lies on the object; the paper allows
  a 15-pixel tolerance at ImageNet/VOC sizes (``tolerance=15``), the default here is 0 for small images.
* :func:`energy_pointing_game`: Wang et al., Score-CAM (https://arxiv.org/abs/1910.01279), Sec. 5.2: the
  fraction of the map's energy (sum of its values) inside the box.
* :func:`box_iou_at_threshold`: the Grad-CAM paper's protocol (Selvaraju et al., Sec. 4.1,
  https://arxiv.org/abs/1610.02391): binarise at 15% of the map's maximum, draw a box around the single
  largest connected segment, IoU with the ground-truth box (localised when IoU >= 0.5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._native import largest_boxes
from ._regions import as_boxes, as_maps, box_iou, boxes_to_masks, check_connectivity, largest_component, mask_to_box

__all__ = ["pointing_game", "energy_pointing_game", "threshold_box", "box_iou_at_threshold", "average"]


def _gt_masks(gt: Tensor, maps: Tensor) -> Tensor:
    """(N, 4) / (N, M, 4) boxes or (N, H, W) masks -> (N, H, W) bool masks at the maps' size."""
    gt = torch.as_tensor(gt, device=maps.device)
    if gt.dtype == torch.bool or (gt.dim() == 3 and gt.shape[-1] != 4) or (gt.dim() == 4 and gt.shape[1] == 1):
        mask = gt[:, 0] if gt.dim() == 4 else gt
        if tuple(mask.shape) != tuple(maps.shape):
            raise ValueError(f"ground-truth masks {tuple(mask.shape)} must match the maps {tuple(maps.shape)}")
        return mask.bool()
    return boxes_to_masks(as_boxes(gt, maps.shape[0]), tuple(maps.shape[-2:]))


def _disk(radius: float, device: torch.device) -> Tensor:
    r = int(radius)
    d = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
    return ((d[:, None] ** 2 + d[None, :] ** 2) <= radius**2).float()  # (2r+1, 2r+1)


def pointing_game(maps: Tensor, gt: Tensor, tolerance: float = 0) -> Tensor:
    """Whether each map's maximum falls on the object (within ``tolerance`` pixels of it).

    Args:
        maps: (N, H, W) saliency.
        gt: boxes (N, 4) / (N, M, 4), or masks (N, H, W) bool.
        tolerance: Euclidean distance in pixels (15 in Zhang et al. at ImageNet/VOC sizes).

    Returns:
        (N,) bool hits. With several maxima the first in row-major order counts (``argmax``).
    """
    maps = as_maps(maps)
    if not tolerance >= 0:  # NaN too
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    mask = _gt_masks(gt, maps)
    if tolerance >= 1:
        k = _disk(tolerance, maps.device)
        mask = F.conv2d(mask[:, None].float(), k[None, None], padding=k.shape[-1] // 2)[:, 0] > 0
    n, h, w = maps.shape
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=maps.device)
    idx = maps.reshape(n, h * w).argmax(1)  # (N,)
    return mask.reshape(n, h * w).gather(1, idx[:, None]).squeeze(1)


def energy_pointing_game(maps: Tensor, gt: Tensor) -> Tensor:
    """Fraction of each map's energy inside the box or mask: sum(map * inside) / sum(map).

    Maps should be non-negative (a CAM in [0, 1] is); an all-zero map scores 0.

    Returns:
        (N,) float in [0, 1].
    """
    maps = as_maps(maps)
    if bool((maps < 0).any()):
        raise ValueError("energy_pointing_game needs non-negative maps (normalise them to [0, 1] first)")
    mask = _gt_masks(gt, maps)
    inside = (maps * mask).sum((1, 2))
    total = maps.sum((1, 2))
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(total))


def threshold_box(maps: Tensor, frac: float = 0.15, connectivity: int = 8) -> Tensor:
    """Box around the largest connected segment of each map at ``map >= frac * max(map)``: (N, H, W) -> (N, 4).

    An all-zero map has every pixel at its (zero) maximum, so its box is the whole image. Ties between largest
    segments go to the one whose last pixel in raster order comes first (:func:`largest_component`'s rule). On
    the CPU a native kernel labels the segments (the same boxes), elsewhere batched union-find in torch.
    """
    maps = as_maps(maps)
    if not 0 <= frac <= 1:
        raise ValueError(f"frac must be in [0, 1], got {frac}")
    check_connectivity(connectivity)
    peak = maps.amax((1, 2), keepdim=True)
    binary = maps >= frac * peak
    box = largest_boxes(binary, connectivity)
    return box if box is not None else mask_to_box(largest_component(binary, connectivity))


def box_iou_at_threshold(maps: Tensor, boxes: Tensor, frac: float = 0.15, connectivity: int = 8) -> Tensor:
    """The Grad-CAM paper's localisation: IoU of :func:`threshold_box` with the ground truth (best of M boxes).

    Args:
        maps: (N, H, W) saliency.
        boxes: (N, 4) or (N, M, 4) ground-truth boxes, x1/y1 exclusive.
        frac: binarisation threshold as a fraction of each map's maximum (0.15 in the paper).
        connectivity: 8 or 4 for the segments.

    Returns:
        (N,) IoU in [0, 1]; ``(iou >= 0.5).float().mean()`` is the paper's localisation accuracy.
    """
    maps = as_maps(maps)
    gt = as_boxes(boxes, maps.shape[0]).to(maps.device)  # (N, M, 4)
    pred = threshold_box(maps, frac, connectivity)  # (N, 4)
    return box_iou(pred[:, None], gt).amax(1).to(maps.dtype)


def average(values: Tensor) -> float:
    """Mean of per-image values (bool hits count as 0/1), ignoring NaN; NaN for an empty tensor."""
    values = torch.as_tensor(values).double()
    return float(values.nanmean()) if values.numel() else float("nan")
