"""Boxes, masks and connected components as batched tensor code (no Python loop over pixels).

Boxes are (x0, y0, x1, y1) in pixels with x1 and y1 exclusive (the Cluttered Fashion-MNIST convention):
the box covers columns x0 .. x1 - 1 and rows y0 .. y1 - 1, and its area is (x1 - x0) * (y1 - y0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["as_maps", "as_boxes", "box_iou", "boxes_to_masks", "connected_components", "mask_to_box",
           "largest_component", "component_boxes"]


def as_maps(maps: Tensor) -> Tensor:
    """Check saliency maps: (N, H, W) (or (N, 1, H, W)) -> (N, H, W) floating point."""
    if not isinstance(maps, Tensor):
        raise TypeError(f"maps must be a tensor, got {type(maps).__name__}")
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {tuple(maps.shape)}")
    return maps if maps.is_floating_point() else maps.float()


def as_boxes(boxes: Tensor, n: int) -> Tensor:
    """Check ground-truth boxes: (N, 4) or (N, M, 4) (several per image) -> (N, M, 4) long.

    A box with x1 <= x0 or y1 <= y0 is empty (use it to pad images with fewer boxes); it never matches.
    """
    boxes = torch.as_tensor(boxes)
    if boxes.dim() == 2:
        boxes = boxes[:, None]
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != n:
        raise ValueError(f"boxes must be (N, 4) or (N, M, 4) with N={n}, got shape {tuple(boxes.shape)}")
    if boxes.is_floating_point():
        if not torch.equal(boxes, boxes.round()):
            raise ValueError("boxes must be whole pixels (x0, y0, x1, y1), x1/y1 exclusive")
    return boxes.long()


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of boxes (..., 4) and (..., 4), broadcast; exclusive x1/y1; an empty box has IoU 0."""
    a, b = a.double(), b.double()
    ix = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    iy = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    inter = ix * iy
    area_a = (a[..., 2] - a[..., 0]).clamp_min(0) * (a[..., 3] - a[..., 1]).clamp_min(0)
    area_b = (b[..., 2] - b[..., 0]).clamp_min(0) * (b[..., 3] - b[..., 1]).clamp_min(0)
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(union))


def boxes_to_masks(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Union of each image's boxes as a mask: (N, 4) or (N, M, 4) -> (N, H, W) bool."""
    boxes = as_boxes(boxes, boxes.shape[0])
    h, w = size
    ys = torch.arange(h, device=boxes.device)[None, None, :, None]  # (1, 1, H, 1)
    xs = torch.arange(w, device=boxes.device)[None, None, None, :]  # (1, 1, 1, W)
    b = boxes[..., None, None]  # (N, M, 4, 1, 1)
    inside = (xs >= b[:, :, 0]) & (xs < b[:, :, 2]) & (ys >= b[:, :, 1]) & (ys < b[:, :, 3])  # (N, M, H, W)
    return inside.any(1)


def mask_to_box(mask: Tensor) -> Tensor:
    """Tight box around each mask's pixels: (B, H, W) bool -> (B, 4) long; an empty mask gives (0, 0, 0, 0)."""
    b, h, w = mask.shape
    rows, cols = mask.any(2), mask.any(1)  # (B, H), (B, W)
    y0 = rows.int().argmax(1)
    y1 = h - rows.flip(1).int().argmax(1)
    x0 = cols.int().argmax(1)
    x1 = w - cols.flip(1).int().argmax(1)
    box = torch.stack([x0, y0, x1, y1], 1).long()
    return torch.where(rows.any(1)[:, None], box, torch.zeros_like(box))


def connected_components(mask: Tensor, connectivity: int = 8) -> Tensor:
    """Label the connected components of binary masks.

    Label propagation: every foreground pixel starts with its own id (1 + its linear index) and takes the
    largest id among its neighbours (a 3x3 max-pool for 8-connectivity), followed by a pointer jump (each
    pixel takes the label of the pixel its label names), until nothing changes. The loop runs over
    iterations (about log of the component diameter for compact shapes), not pixels.

    Args:
        mask: (B, H, W) bool.
        connectivity: 8 (default, as OpenCV's contours) or 4.

    Returns:
        (B, H, W) long: 0 on the background; every pixel of a component holds the component's largest
        pixel id (1 + linear index), so labels are unique within an image.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    b, h, w = mask.shape
    hw = h * w
    dtype = torch.float32 if hw < 2**24 else torch.float64
    fg = mask.to(dtype)
    ids = torch.arange(1, hw + 1, device=mask.device, dtype=dtype).view(1, h, w)
    lab = ids * fg  # (B, H, W)
    zero = torch.zeros(b, 1, device=mask.device, dtype=dtype)
    while True:
        prev = lab
        if connectivity == 8:
            nb = F.max_pool2d(lab[:, None], 3, stride=1, padding=1)[:, 0]
        else:
            p = F.pad(lab, (1, 1, 1, 1))
            nb = torch.stack([lab, p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]]).amax(0)
        lab = nb * fg
        flat = lab.reshape(b, hw)
        lab = torch.cat([zero, flat], 1).gather(1, flat.long()).view(b, h, w)  # pointer jump
        if torch.equal(lab, prev):
            return lab.long()


def largest_component(mask: Tensor, connectivity: int = 8) -> Tensor:
    """The largest connected component of each mask (ties: the one with the smaller label): (B, H, W) bool."""
    b, h, w = mask.shape
    lab = connected_components(mask, connectivity).view(b, h * w)
    counts = torch.zeros(b, h * w + 1, device=mask.device, dtype=torch.long)
    counts.scatter_add_(1, lab, torch.ones_like(lab))
    counts[:, 0] = 0
    best = counts.argmax(1, keepdim=True)  # (B, 1)
    return ((lab == best) & (best > 0)).view(b, h, w)


def component_boxes(mask: Tensor, connectivity: int = 8) -> tuple[Tensor, Tensor]:
    """Boxes of every connected component, indexed by label.

    Args:
        mask: (B, H, W) bool.

    Returns:
        ``(boxes (B, H*W + 1, 4) long, present (B, H*W + 1) bool)``: slot ``l`` holds the box of the component
        labelled ``l`` (see :func:`connected_components`); ``present`` marks the slots that are components.
    """
    b, h, w = mask.shape
    hw = h * w
    lab = connected_components(mask, connectivity).view(b, hw)
    ys = torch.arange(h, device=mask.device).repeat_interleave(w).expand(b, hw)
    xs = torch.arange(w, device=mask.device).repeat(h).expand(b, hw)
    big = torch.full((b, hw + 1), hw + 1, device=mask.device, dtype=torch.long)
    small = torch.full((b, hw + 1), -1, device=mask.device, dtype=torch.long)
    x0 = big.scatter_reduce(1, lab, xs, "amin")
    y0 = big.scatter_reduce(1, lab, ys, "amin")
    x1 = small.scatter_reduce(1, lab, xs, "amax") + 1
    y1 = small.scatter_reduce(1, lab, ys, "amax") + 1
    present = x1 > 0
    present[:, 0] = False
    return torch.stack([x0, y0, x1, y1], -1), present
