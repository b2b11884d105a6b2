"""The localisation metrics as they were before the native kernels and the batched rewrite (issue 14): a frozen,
slow reference that the tests compare the library with, and that ``attnlab bench scoring`` times as "old".

A verbatim copy of ``attnlab/metrics/_regions.py``, ``localisation.py`` and ``wsol.py`` at that commit, in one file
(imports joined); do not edit it to follow the library: it is the yardstick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor


def as_maps(maps: Tensor) -> Tensor:
    """Check saliency maps: (N, H, W) (or (N, 1, H, W)) -> (N, H, W) floating point.

    Raises:
        ValueError: another shape, maps without pixels (H or W of 0), or NaN/inf values (every metric of
            such a map would be quietly wrong: NaN wins an argmax, fails every threshold, zeroes an energy).
    """
    if not isinstance(maps, Tensor):
        raise TypeError(f"maps must be a tensor, got {type(maps).__name__}")
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {tuple(maps.shape)}")
    if maps.shape[0] and not maps.shape[1] * maps.shape[2]:
        raise ValueError(f"maps have no pixels: shape {tuple(maps.shape)}")
    maps = maps if maps.is_floating_point() else maps.float()
    check_finite(maps, "the maps")
    return maps


def check_finite(t: Tensor, what: str) -> None:
    """Raise ValueError when ``t`` (N, ...) holds NaN or inf, naming how many and in which images."""
    bad = ~torch.isfinite(t)
    if not bool(bad.any()):
        return
    images = bad.reshape(bad.shape[0], -1).any(1).nonzero().flatten().tolist()
    shown = str(images) if len(images) <= 8 else f"{images[:8]} and {len(images) - 8} more"
    count = int(bad.sum())
    raise ValueError(f"{what} hold {count} NaN or inf value{'s' if count > 1 else ''} (in image"
                     f"{'s' if len(images) > 1 else ''} {shown}); a metric of them would be meaningless: drop or fix "
                     "those images first")


def as_masks(mask: Tensor) -> Tensor:
    """Check binary masks: (B, H, W) -> (B, H, W) (any dtype; non-zero is foreground)."""
    mask = torch.as_tensor(mask)
    if mask.dim() != 3:
        raise ValueError(f"masks must be (B, H, W), got shape {tuple(mask.shape)}")
    return mask


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
    """IoU of boxes (..., 4) and (..., 4), broadcast; exclusive x1/y1; an empty box has IoU 0.

    Raises:
        ValueError: a last dimension other than 4, or shapes that do not broadcast.
    """
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    if a.shape[-1:] != (4,) or b.shape[-1:] != (4,):
        raise ValueError(f"boxes are (..., 4) (x0, y0, x1, y1), got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError as err:
        raise ValueError(f"box shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from err
    ix = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    iy = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    inter = ix * iy
    area_a = (a[..., 2] - a[..., 0]).clamp_min(0) * (a[..., 3] - a[..., 1]).clamp_min(0)
    area_b = (b[..., 2] - b[..., 0]).clamp_min(0) * (b[..., 3] - b[..., 1]).clamp_min(0)
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(union))


def boxes_to_masks(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Union of each image's boxes as a mask: (N, 4) or (N, M, 4) -> (N, H, W) bool."""
    boxes = torch.as_tensor(boxes)
    boxes = as_boxes(boxes, boxes.shape[0] if boxes.dim() else 0)
    h, w = size
    ys = torch.arange(h, device=boxes.device)[None, None, :, None]  # (1, 1, H, 1)
    xs = torch.arange(w, device=boxes.device)[None, None, None, :]  # (1, 1, 1, W)
    b = boxes[..., None, None]  # (N, M, 4, 1, 1)
    inside = (xs >= b[:, :, 0]) & (xs < b[:, :, 2]) & (ys >= b[:, :, 1]) & (ys < b[:, :, 3])  # (N, M, H, W)
    return inside.any(1)


def mask_to_box(mask: Tensor) -> Tensor:
    """Tight box around each mask's pixels: (B, H, W) bool -> (B, 4) long; an empty mask gives (0, 0, 0, 0)."""
    mask = as_masks(mask)
    b, h, w = mask.shape
    rows, cols = mask.any(2), mask.any(1)  # (B, H), (B, W)
    y0 = rows.int().argmax(1)
    y1 = h - rows.flip(1).int().argmax(1)
    x0 = cols.int().argmax(1)
    x1 = w - cols.flip(1).int().argmax(1)
    box = torch.stack([x0, y0, x1, y1], 1).long()
    return torch.where(rows.any(1)[:, None], box, torch.zeros_like(box))


def _find(parent: Tensor, v: Tensor) -> Tensor:
    """Roots of the union-find forest ``parent`` (1-D long, ``parent[x] == x`` at a root) for the nodes ``v``.

    Follows the pointers one gather per level, and after the first level only for the nodes not yet at a
    root (most are, and a few deep ones should not cost a pass over all); writes the roots back into
    ``parent[v]`` (path compression of the queried nodes).
    """
    r = parent.index_select(0, v)
    up = parent.index_select(0, r)
    deep = (up != r).nonzero()[:, 0]
    if deep.numel():
        cur = up.index_select(0, deep)
        while True:
            nxt = parent.index_select(0, cur)
            if torch.equal(nxt, cur):
                break
            cur = nxt
        r.index_copy_(0, deep, cur)
        parent.scatter_(0, v, r)
    return r


def _union(parent: Tensor, p: Tensor, q: Tensor, roots: bool = False) -> Tensor:
    """Join the trees of ``parent`` along the edges ``p[i] -- q[i]``, all at once; returns the roots that were hooked.

    Rounds of: find both ends' roots, hook the smaller root under the larger one (scatter-max, so a root is
    always the largest node of its tree and pointers only grow: a forest), compress the hooked roots by
    pointer doubling, and drop the edges that now lie inside one tree. Each round removes every root that
    has an edge to a larger root, so the rounds are few, not the component's diameter. ``roots``: every
    ``p[i]`` is a root to begin with (saves a find). The returned tensor may repeat a root.
    """
    hooked = []
    while p.numel():
        rp = _find(parent, p) if hooked or not roots else p
        rq = _find(parent, q)
        cross = (rp != rq).nonzero()[:, 0]
        if not cross.numel():
            break
        if cross.numel() < p.numel():
            p, q, rp, rq = (t.index_select(0, cross) for t in (p, q, rp, rq))
        lo, hi = torch.minimum(rp, rq), torch.maximum(rp, rq)
        parent.scatter_reduce_(0, lo, hi, "amax")
        # the hooked roots may form long chains (a row hooking pixel by pixel): pointer doubling over them
        cur = parent.index_select(0, lo)
        while True:
            up = parent.index_select(0, cur)
            if torch.equal(up, cur):
                break
            parent.scatter_(0, lo, up)
            cur = up
        hooked.append(lo)
    return torch.cat(hooked) if hooked else p.new_empty(0)


def _ring_offsets(wp: int) -> list[int]:
    """Flat offsets of the 8 neighbours in a row-major grid of width ``wp``, in order around the pixel
    (N, NE, E, SE, S, SW, W, NW): each is 8-adjacent to the next, and every other one (N, E, S, W) is a
    4-neighbour, the diagonal between two of them 4-adjacent to both."""
    return [-wp, -wp + 1, 1, wp + 1, wp, wp - 1, -1, -wp - 1]


def _links(earlier: Tensor, connectivity: int) -> Tensor:
    """Which neighbours a pixel must be joined to, given which ones are already joined among themselves.

    ``earlier`` (K, 8) bool, neighbours in :func:`_ring_offsets` order: those that already hold labels that
    are correct among themselves (every two adjacent ones joined). Two consecutive ones around the pixel
    are adjacent (8-connectivity; with 4-connectivity, two 4-neighbours with the diagonal between them), so
    one link per such run is enough: the run's first one. The classic raster-scan decision tree is the case
    where ``earlier`` is the row above and the pixel to the left. Returns (K, 8) bool.
    """
    if connectivity == 8:
        keep = earlier & ~earlier.roll(1, 1)
    else:
        keep = earlier & ~(earlier.roll(1, 1) & earlier.roll(2, 1))
        keep[:, 1::2] = False  # diagonals are no 4-neighbours
    keep[:, 0] |= earlier.all(1)  # surrounded: the run is the whole ring
    return keep


def connected_components(mask: Tensor, connectivity: int = 8) -> Tensor:
    """Label the connected components of binary masks.

    Union-find over the foreground pixels of all masks at once (see :func:`_union`): every pixel starts as
    its own tree and is joined to its earlier neighbours in raster order, one per run of them around it
    (the raster-scan decision tree, :func:`_links`: mostly a single link), in a few batched rounds of
    hooking and pointer jumping; each pixel finally takes its tree's root, the component's largest pixel.
    The loops run over rounds and pointer-jump levels, never over pixels.

    Args:
        mask: (B, H, W) bool.
        connectivity: 8 (default, as OpenCV's contours) or 4.

    Returns:
        (B, H, W) long: 0 on the background; every pixel of a component holds the component's largest
        pixel id (1 + linear index), so labels are unique within an image.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    mask = as_masks(mask)
    b, h, w = mask.shape
    if not mask.numel():
        return torch.zeros(b, h, w, dtype=torch.long, device=mask.device)
    hp, wp = h + 2, w + 2
    fg = F.pad(mask.bool(), (1, 1, 1, 1)).reshape(-1)  # a background frame: no neighbour wraps a row or an image
    lo, hi = wp + 1, fg.numel() - wp - 1  # every foreground pixel lies in fg[lo:hi]

    def shifted(off: int) -> Tensor:  # the neighbour at ``off`` of each pixel in fg[lo:hi]
        return fg[lo + off:hi + off]

    here, n, ne, west, nw = shifted(0), shifted(-wp), shifted(-wp + 1), shifted(-1), shifted(-wp - 1)
    if connectivity == 8:  # earlier neighbours: W, NW, N, NE (consecutive around the pixel)
        links = [(-1, west), (-wp - 1, nw & ~west), (-wp, n & ~nw), (-wp + 1, ne & ~n)]
    else:  # W, N: the same component already when NW joins them
        links = [(-1, west), (-wp, n & ~(nw & west))]
    ps, qs = [], []
    for off, keep in links:
        p = (here & keep).nonzero()[:, 0] + lo
        ps.append(p)
        qs.append(p + off)
    parent = torch.arange(fg.numel(), device=mask.device)
    _union(parent, torch.cat(ps), torch.cat(qs), roots=True)
    pix = fg.nonzero()[:, 0]
    root = _find(parent, pix)
    local = root % (hp * wp)  # padded (row, column) of the root; padded order = image order
    lab = (local // wp - 1) * w + local % wp  # (y * w + x) + 1 with x = local % wp - 1
    out = torch.zeros(b * h * w, dtype=torch.long, device=mask.device)
    img, loc = pix // (hp * wp), pix % (hp * wp)
    out[img * (h * w) + (loc // wp - 1) * w + (loc % wp - 1)] = lab
    return out.view(b, h, w)


class NestedComponents:
    """Connected components of every upper level set of integer level maps, by one sweep from the top level down.

    For level maps ``levels`` (B, H, W) with values in 0 .. ``n_levels``, the masks ``levels > k`` for
    k = n_levels - 1, ..., 0 are nested: each adds the pixels at level k + 1 to the previous one, so its
    components are the previous ones, grown and merged, plus new ones. Iterating yields k in that order
    after updating one union-find forest over all images with the new pixels and their edges (see
    :func:`_union`); each component's box and pixel count are kept at its root, the component's largest
    pixel, so a step costs time in the pixels added and the components touched, not in H * W. Pixels are
    indexed in a padded (B, H + 2, W + 2) grid (:meth:`image` gives their image).

    After each step: ``roots`` (long) lists every component of the current mask (by root); ``changed``
    lists the components that grew or appeared at this step (the others are as at the previous step).
    """

    def __init__(self, levels: Tensor, n_levels: int, connectivity: int = 8) -> None:
        b, h, w = levels.shape
        self.shape = (b, h, w)
        self.hp, self.wp = h + 2, w + 2
        self.n_levels = int(n_levels)
        if connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
        self.connectivity = connectivity
        dev = levels.device
        if levels.numel() and not 0 <= int(levels.min()) <= int(levels.max()) <= self.n_levels:
            raise ValueError(f"levels must lie in 0 .. {self.n_levels}")
        small = torch.int16 if self.n_levels < 2**15 else torch.int32  # the gathers of neighbours' levels
        self.lv = lv = F.pad(levels.to(small), (1, 1, 1, 1)).reshape(-1)  # a level-0 frame: never in a mask
        self.ends = torch.bincount(lv.int(), minlength=self.n_levels + 1).cumsum(0).tolist()
        self.order = torch.sort(lv, stable=True).indices  # pixels grouped by level
        n = lv.numel()
        self.parent = torch.arange(n, device=dev)
        local = torch.arange(self.hp * self.wp, dtype=torch.int32, device=dev)
        y, x = local // self.wp - 1, local % self.wp - 1
        # (x0, y0, -x1, -y1) so that merging boxes is a single scatter-min
        self.box = torch.stack([x, y, -(x + 1), -(y + 1)], 1).repeat(b, 1)
        self.area = torch.ones(n, dtype=torch.int32, device=dev)
        self.roots = self.parent.new_empty(0)
        self.changed = self.parent.new_empty(0)
        self._offs = torch.tensor(_ring_offsets(self.wp), device=dev)
        self._backward = self._offs < 0

    def image(self, idx: Tensor) -> Tensor:
        """Image of each padded pixel index."""
        return idx // (self.hp * self.wp)

    def boxes(self, roots: Tensor) -> Tensor:
        """(x0, y0, x1, y1) long, x1/y1 exclusive, of the components with these roots: (K,) -> (K, 4)."""
        return self.box.index_select(0, roots).long() * torch.tensor([1, 1, -1, -1], device=roots.device)

    def __iter__(self):
        for k in range(self.n_levels - 1, -1, -1):
            self._add(k + 1)
            yield k

    def _add(self, v: int) -> None:
        new = self.order[self.ends[v - 1]:self.ends[v]]
        if not new.numel():
            self.changed = new
            return
        nb = (new[:, None] + self._offs).view(-1)
        nlv = self.lv.index_select(0, nb).view(-1, 8)
        # neighbours already joined among themselves: those in the mask before this step, and the new ones
        # before this pixel in raster order (by induction over that order, see _links)
        earlier = (nlv > v) | ((nlv == v) & self._backward)
        edge = _links(earlier, self.connectivity).view(-1).nonzero()[:, 0]
        hooked = _union(self.parent, new.index_select(0, edge // 8), nb.index_select(0, edge), roots=True)
        root = _find(self.parent, new)
        old = hooked.index_select(0, (self.lv.index_select(0, hooked) > v).nonzero()[:, 0]).unique()
        # fold the new pixels and the swallowed components into their roots (box: min; area: sum)
        moved = (root != new).nonzero()[:, 0]
        src = torch.cat([new.index_select(0, moved), old])
        dst = torch.cat([root.index_select(0, moved), _find(self.parent, old)])
        self.box.scatter_reduce_(0, dst[:, None].expand(-1, 4), self.box.index_select(0, src), "amin")
        self.area.scatter_add_(0, dst, self.area.index_select(0, src))
        self.changed = root.unique()
        born = self.changed.index_select(0, (self.lv.index_select(0, self.changed) == v).nonzero()[:, 0])
        alive = self.roots.index_select(0, (self.parent.index_select(0, self.roots) == self.roots).nonzero()[:, 0])
        self.roots = torch.cat([alive, born])


def largest_component(mask: Tensor, connectivity: int = 8) -> Tensor:
    """The largest connected component of each mask (ties: the one with the smaller label): (B, H, W) bool."""
    mask = as_masks(mask)
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
    mask = as_masks(mask)
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

    An all-zero map has every pixel at its (zero) maximum, so its box is the whole image.
    """
    maps = as_maps(maps)
    if not 0 <= frac <= 1:
        raise ValueError(f"frac must be in [0, 1], got {frac}")
    peak = maps.amax((1, 2), keepdim=True)
    binary = maps >= frac * peak
    return mask_to_box(largest_component(binary, connectivity))


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


def default_thresholds(interval: float = 0.01) -> Tensor:
    """CAM thresholds 0, interval, ..., < 1 (float64), as ``np.arange(0, 1, interval)`` in Choe et al.

    Raises:
        ValueError: ``interval`` outside (0, 1].
    """
    if not 0 < interval <= 1:
        raise ValueError(f"interval must be in (0, 1], got {interval}")
    n = int(round(1 / interval))
    return torch.arange(n, dtype=torch.float64) * interval


def _normalise(maps: Tensor) -> Tensor:
    lo = maps.amin((1, 2), keepdim=True)
    m = maps.double() - lo.double()
    hi = m.amax((1, 2), keepdim=True)
    return torch.where(hi > 0, m / hi.clamp_min(1e-300), torch.zeros_like(m))


@dataclass
class MaxBoxAccResult:
    """MaxBoxAccV2 and its parts.

    Attributes:
        value: the mean over IoU criteria of the best box accuracy (in [0, 1]).
        per_iou: IoU criterion -> best box accuracy over thresholds.
        best_threshold: IoU criterion -> the CAM threshold achieving it.
        curve: (T, D) box accuracy at each threshold and IoU criterion.
    """

    value: float
    per_iou: dict[float, float] = field(default_factory=dict)
    best_threshold: dict[float, float] = field(default_factory=dict)
    curve: Tensor | None = field(default=None, repr=False)


class MaxBoxAccV2:
    """Accumulate box hits over a dataset at every CAM threshold and IoU criterion.

    Args:
        thresholds: CAM thresholds (default 0, 0.01, ..., 0.99).
        iou_thresholds: IoU criteria delta (default 0.3, 0.5, 0.7).
        multi_contour: boxes of all segments (V2, default) or only of the largest (MaxBoxAcc, V1).
        connectivity: 8 or 4 for the segments.
        chunk_pixels: upper bound on (images x pixels) swept at once (memory: about 70 bytes each).

    All thresholds are scored in one sweep per batch, from the highest down: the masks are nested, so the
    components at one threshold are those at the previous one, grown and merged (see
    :class:`~attnlab.metrics._regions.NestedComponents`); the work grows with the pixels (plus a few
    operations per threshold), not with pixels x thresholds.

    Example:
        >>> acc = MaxBoxAccV2()
        >>> for maps, boxes in batches:
        ...     acc.update(maps, boxes)
        >>> acc.compute().value
    """

    def __init__(self, thresholds: Sequence[float] | Tensor | None = None,
                 iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7), multi_contour: bool = True,
                 connectivity: int = 8, chunk_pixels: int = 2**24) -> None:
        self.thresholds = default_thresholds() if thresholds is None else torch.as_tensor(thresholds).double()
        if self.thresholds.dim() != 1 or not len(self.thresholds) or not bool(self.thresholds.isfinite().all()):
            raise ValueError("thresholds must be a non-empty 1-D sequence of finite numbers")
        self.iou_thresholds = tuple(float(d) for d in iou_thresholds)
        if not self.iou_thresholds:
            raise ValueError("iou_thresholds must not be empty")
        if not all(0 < d <= 1 for d in self.iou_thresholds):  # an IoU above 1 is never reached: a silent 0
            raise ValueError(f"iou_thresholds are IoU criteria in (0, 1], got {self.iou_thresholds}")
        self.multi_contour = multi_contour
        self.connectivity = connectivity
        self.chunk_pixels = int(chunk_pixels)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.hits = torch.zeros(len(self.thresholds), len(self.iou_thresholds), dtype=torch.long)
        self.count = 0

    def best_ious(self, maps: Tensor, boxes: Tensor) -> Tensor:
        """Best IoU of each image at each threshold: (N, H, W), (N, 4) / (N, M, 4) -> (N, T)."""
        maps = _normalise(as_maps(maps))
        n, h, w = maps.shape
        gt = as_boxes(boxes, n).to(maps.device)  # (N, M, 4)
        thr = self.thresholds.to(maps.device)
        out = torch.empty(n, len(thr), dtype=torch.float64, device=maps.device)
        per_chunk = max(1, self.chunk_pixels // ((h + 2) * (w + 2)))  # images swept at once
        for start in range(0, n, per_chunk):
            out[start:start + per_chunk] = self._sweep(maps[start:start + per_chunk], gt[start:start + per_chunk], thr)
        return out

    def _sweep(self, maps: Tensor, gt: Tensor, thr: Tensor) -> Tensor:
        """Best IoUs (N, T) of normalised maps by one sweep over the nested masks ``map > tau``, highest tau first.

        With the thresholds sorted, ``map > tau_k`` exactly when the map's level (the number of thresholds
        below it) exceeds k, so the masks are the upper level sets of one integer level map and
        :class:`NestedComponents` grows their components from the top threshold down. Only the components
        that changed at a step get new IoUs; every step takes the best over all current components (V2) or
        the IoU of the largest one (V1, ties to the smaller label, as :func:`largest_component`).
        """
        n = maps.shape[0]
        t = len(thr)
        sorted_thr, perm = thr.sort()
        levels = torch.searchsorted(sorted_thr, maps.contiguous())  # number of thresholds < value
        levels = levels.masked_fill(maps.isnan(), 0)
        sweep = NestedComponents(levels, t, self.connectivity)
        iou = torch.zeros(sweep.parent.numel(), dtype=torch.float64, device=maps.device)
        out = torch.empty(n, t, dtype=torch.float64, device=maps.device)
        best = torch.zeros(n, dtype=torch.float64, device=maps.device)
        column = perm.tolist()
        for k in sweep:
            if sweep.changed.numel():
                ch = sweep.changed
                cand = sweep.boxes(ch)  # (K, 4)
                iou.index_copy_(0, ch, box_iou(cand[:, None], gt.index_select(0, sweep.image(ch))).amax(1))
                roots = sweep.roots
                img = sweep.image(roots)
                if self.multi_contour:
                    best = torch.zeros_like(best).scatter_reduce_(0, img, iou.index_select(0, roots), "amax")
                else:
                    area = sweep.area.index_select(0, roots)
                    top = torch.zeros(n, dtype=area.dtype, device=area.device).scatter_reduce_(0, img, area, "amax")
                    big = (area == top.index_select(0, img)).nonzero()[:, 0]
                    first = torch.full((n,), sweep.parent.numel(), dtype=roots.dtype, device=roots.device)
                    first.scatter_reduce_(0, img.index_select(0, big), roots.index_select(0, big), "amin")
                    has = first < sweep.parent.numel()
                    best = torch.where(has, iou.index_select(0, first.clamp_max(sweep.parent.numel() - 1)),
                                       torch.zeros_like(best))
            out[:, column[k]] = best
        return out

    def update(self, maps: Tensor, boxes: Tensor) -> None:
        """Add a batch: maps (N, H, W) and ground-truth boxes (N, 4) or (N, M, 4), x1/y1 exclusive."""
        best = self.best_ious(maps, boxes)  # (N, T)
        delta = torch.tensor(self.iou_thresholds, dtype=best.dtype, device=best.device)
        self.hits += (best[:, :, None] >= delta).sum(0).cpu()
        self.count += best.shape[0]

    def compute(self) -> MaxBoxAccResult:
        """MaxBoxAccV2 over everything accumulated."""
        if self.count == 0:
            raise ValueError("MaxBoxAccV2.compute() with no image: update() it with maps of at least one image first")
        curve = self.hits.double() / self.count  # (T, D)
        best, arg = curve.max(0)
        per = {d: float(b) for d, b in zip(self.iou_thresholds, best, strict=True)}
        thr = {d: float(self.thresholds[i]) for d, i in zip(self.iou_thresholds, arg, strict=True)}
        return MaxBoxAccResult(float(best.mean()), per, thr, curve)


def max_box_acc_v2(maps: Tensor, boxes: Tensor, thresholds: Sequence[float] | Tensor | None = None,
                   iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7), multi_contour: bool = True) -> MaxBoxAccResult:
    """MaxBoxAccV2 of a whole evaluation set at once (see :class:`MaxBoxAccV2`)."""
    acc = MaxBoxAccV2(thresholds, iou_thresholds, multi_contour)
    acc.update(maps, boxes)
    return acc.compute()


class PxAP:
    """Accumulate pixel score histograms over a dataset for the pixel average precision.

    Args:
        thresholds: CAM thresholds (default 0, 0.01, ..., 0.99).

    Example:
        >>> ap = PxAP()
        >>> for maps, masks in batches:
        ...     ap.update(maps, masks)
        >>> ap.compute()
    """

    def __init__(self, thresholds: Sequence[float] | Tensor | None = None) -> None:
        thr = default_thresholds() if thresholds is None else torch.as_tensor(thresholds).double()
        if thr.dim() != 1 or not len(thr) or not bool((thr[1:] > thr[:-1]).all()):
            raise ValueError("thresholds must be a non-empty increasing 1-D sequence")
        # bins [t0, t1), ..., [t_last, 1), [1, 2), [2, inf): as MaskEvaluator's right edges (.., 1, 2, 3)
        self.edges = torch.cat([thr, torch.tensor([1.0, 2.0], dtype=torch.float64)])
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.pos = torch.zeros(len(self.edges), dtype=torch.long)  # positives with score in bin j
        self.neg = torch.zeros(len(self.edges), dtype=torch.long)

    def update(self, maps: Tensor, masks: Tensor, ignore: Tensor | None = None) -> None:
        """Add a batch: maps (N, H, W), ground-truth masks (N, H, W) bool, optional ignore masks (N, H, W) bool."""
        maps = _normalise(as_maps(maps))
        masks = torch.as_tensor(masks, device=maps.device).bool()
        if masks.dim() == 4 and masks.shape[1] == 1:
            masks = masks[:, 0]
        if masks.shape != maps.shape:
            raise ValueError(f"masks {tuple(masks.shape)} must match the maps {tuple(maps.shape)}")
        keep = torch.ones_like(masks) if ignore is None else ~torch.as_tensor(ignore, device=maps.device).bool()
        # bucket j: edges[j] <= score < edges[j + 1]; below edges[0] -> -1 (not counted, as np.histogram)
        bucket = torch.bucketize(maps, self.edges.to(maps.device), right=True) - 1
        valid = keep & (bucket >= 0)
        nb = len(self.edges)
        self.pos += torch.bincount(bucket[valid & masks], minlength=nb).cpu()[:nb]
        self.neg += torch.bincount(bucket[valid & ~masks], minlength=nb).cpu()[:nb]

    def compute(self) -> float:
        """PxAP over everything accumulated."""
        tp = self.pos.flip(0).cumsum(0).double()  # pixels scoring >= edge, highest edge first
        fp = self.neg.flip(0).cumsum(0).double()
        n_pos = self.pos.sum()
        if n_pos <= 0:
            raise ValueError("PxAP needs at least one positive ground-truth pixel (no image given, or every mask "
                             "empty)")
        precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), torch.zeros_like(tp))
        recall = tp / n_pos
        return float((precision[1:] * recall.diff()).sum())


def pxap(maps: Tensor, masks: Tensor, thresholds: Sequence[float] | Tensor | None = None,
         ignore: Tensor | None = None) -> float:
    """PxAP of a whole evaluation set at once (see :class:`PxAP`)."""
    ap = PxAP(thresholds)
    ap.update(maps, masks, ignore)
    return ap.compute()
