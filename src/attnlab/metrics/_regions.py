"""Boxes, masks and connected components as batched tensor code (no Python loop over pixels).

Boxes are (x0, y0, x1, y1) in pixels with x1 and y1 exclusive (the Cluttered Fashion-MNIST convention):
the box covers columns x0 .. x1 - 1 and rows y0 .. y1 - 1, and its area is (x1 - x0) * (y1 - y0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["as_maps", "as_boxes", "as_masks", "box_iou", "boxes_to_masks", "check_connectivity", "check_finite",
           "connected_components",
           "mask_to_box", "largest_component", "component_boxes"]


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
    """Raise ValueError when ``t`` (N, ...) holds NaN or inf, naming how many and in which images.

    A finite sum proves every value finite in one reduction; only a sum that is not (NaN or inf inside, or an
    overflow) takes the element-wise look.
    """
    if t.is_floating_point() and bool(torch.isfinite(t.sum())):
        return
    bad = ~torch.isfinite(t)
    if not bool(bad.any()):
        return
    images = bad.reshape(bad.shape[0], -1).any(1).nonzero().flatten().tolist()
    shown = str(images) if len(images) <= 8 else f"{images[:8]} and {len(images) - 8} more"
    count = int(bad.sum())
    raise ValueError(f"{what} hold {count} NaN or inf value{'s' if count > 1 else ''} (in image"
                     f"{'s' if len(images) > 1 else ''} {shown}); a metric of them would be meaningless: drop or fix "
                     "those images first")


def check_connectivity(connectivity: int) -> None:
    """Raise ValueError unless ``connectivity`` is 4 or 8 (the neighbours that join pixels into one segment)."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")


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
    check_connectivity(connectivity)
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
        check_connectivity(connectivity)
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
