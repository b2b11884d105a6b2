"""Cluttered Fashion-MNIST: one Fashion-MNIST item on a larger canvas among fragments of other items.

After the Cluttered MNIST of Jaderberg, Simonyan, Zisserman and Kavukcuoglu, Spatial Transformer
Networks, NeurIPS 2015, https://arxiv.org/abs/1506.02025 (Appendix A.3): there, each 28x28 digit is
placed at random on a 60x60 canvas with random 6x6 crops of other digits as clutter. Here the canvas
defaults to 64x64 with four 9x9 fragments, and every sample carries its label, box and mask, so
attention maps can be scored against where the object really is.

Conventions (what ``attnlab.metrics`` assumes):

* **Coordinates** are pixels, ``x`` the column and ``y`` the row, origin at the top-left.
* **Box** ``(x0, y0, x1, y1)`` int64: the tight bounding box of the object's mask; ``x1``/``y1`` are
  exclusive, so the object's pixels are ``image[..., y0:y1, x0:x1]`` and the area is
  ``(x1 - x0) * (y1 - y0)``. An item with no pixel over the threshold (none in Fashion-MNIST) gets the
  empty box ``(x, y, x, y)`` at its placement.
* **Mask** (canvas, canvas) bool: the pixels where the placed item's value is ``> mask_threshold``
  (default 0: every non-zero pixel of the item). Only the object: clutter is never in the mask.
* **Clutter mask** (canvas, canvas) bool: the pixels where some fragment's value is ``> mask_threshold``
  (the object mask's rule), minus the object's mask: where clutter lies, never where the object is
  (``clutter_masks & masks`` is all False). ``n_clutter=0`` gives all-False clutter masks.
* **Clutter** is kept out of the object's box by default (``clutter_overlap=False``): each fragment lies
  wholly inside the canvas and does not intersect the box, so the object is intact and every pixel inside
  its box is the object's (the corner is drawn uniformly among the valid ones, in closed form). With
  ``clutter_overlap=True`` fragments may fall anywhere; the mask stays the object's.
* **Composition** is by per-pixel maximum (object first, then every fragment), so clutter never
  darkens or erases the object. Fragments are ``fragment_size`` square crops, at uniformly random
  positions, of items other than the canvas's own object (by index; they may share its class), drawn
  from the same split: train canvases use only train items, test canvases only test items.

Generation is vectorised: the random layout of all canvases is drawn first (a few small integer
tensors), then the canvases are composed in chunks with one ``scatter`` for the objects and one
``scatter_reduce(amax)`` for all fragments (the clutter mask then follows from the canvas: outside the
object's mask, the pixels over the threshold); no Python loop runs per canvas or per fragment. The result
depends only on the source items, the parameters and the generator (not on the chunk size).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .base import Transform
from .canvas import CanvasDataset, pack_masks, unpack_masks
from .fashion_mnist import load_fashion_mnist

__all__ = ["ClutterLayout", "ClutteredFashionMNIST", "ClutteredSamples", "generate_cluttered",
           "item_boxes", "sample_layout"]

#: bump when the layout sampling or the composition changes: invalidates every cache file (2: clutter masks)
GENERATOR_VERSION = 2
_CHUNK = 2048  # canvases composed at once: bounds memory; large enough that per-op overhead is amortised


@dataclass(frozen=True)
class ClutterLayout:
    """Where everything goes; enough to re-render the canvases. ``n`` canvases, ``k`` fragments each.

    All int64; positions are (x, y) of a top-left corner.
    """

    source_index: Tensor  #: (n,) the object's item in the source split
    origin: Tensor  #: (n, 2) the item's (h, w) frame on the canvas
    clutter_index: Tensor  #: (n, k) the item each fragment is cut from (never the object's item)
    clutter_crop: Tensor  #: (n, k, 2) the fragment's corner inside its source item
    clutter_origin: Tensor  #: (n, k, 2) the fragment's corner on the canvas


@dataclass(frozen=True)
class ClutteredSamples:
    """The output of :func:`generate_cluttered`."""

    images: Tensor  #: uint8 (n, 1, C, C)
    labels: Tensor  #: int64 (n,)
    boxes: Tensor  #: int64 (n, 4) = (x0, y0, x1, y1), x1/y1 exclusive
    masks: Tensor  #: bool (n, C, C), the objects' pixels
    clutter_masks: Tensor  #: bool (n, C, C), the fragments' pixels (> mask_threshold) outside the object's mask
    layout: ClutterLayout


def item_boxes(images: Tensor, threshold: int = 0) -> Tensor:
    """Tight boxes of ``images > threshold``: (M, h, w) -> int64 (M, 4) = (x0, y0, x1, y1), exclusive ends.

    An item with no pixel over the threshold gets (0, 0, 0, 0).
    """
    rows = images.amax(2) > threshold  # (M, h): the row holds a mask pixel
    cols = images.amax(1) > threshold  # (M, w)
    h, w = images.shape[1:]
    y0 = rows.to(torch.uint8).argmax(1)  # first True (argmax returns the first maximum)
    y1 = h - rows.flip(1).to(torch.uint8).argmax(1)
    x0 = cols.to(torch.uint8).argmax(1)
    x1 = w - cols.flip(1).to(torch.uint8).argmax(1)
    boxes = torch.stack([x0, y0, x1, y1], 1).to(torch.int64)
    return boxes * rows.any(1, keepdim=True)


def _outside_box(boxes: Tensor, grid: int, frag: int, k: int, generator: torch.Generator) -> Tensor:
    """Uniform fragment corners (n, k, 2) on a ``grid`` x ``grid`` lattice, fragments not touching ``boxes``.

    A fragment at p covers [p, p + frag); it meets a box side [b0, b1) iff p in [b0 - frag + 1, b1). The
    valid corners (the lattice minus that forbidden rectangle) are counted, and the u-th of them in
    row-major order is found in closed form: no rejection loop, one draw per fragment.
    """
    empty = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    ax = (boxes[:, 0] - frag + 1).clamp(0, grid)
    bx = boxes[:, 2].clamp(0, grid)
    ay = (boxes[:, 1] - frag + 1).clamp(0, grid)
    by = boxes[:, 3].clamp(0, grid)
    ay, by = torch.where(empty, 0, ay), torch.where(empty, 0, by)  # no forbidden rows for an empty box
    fx, fy = bx - ax, by - ay  # forbidden columns / rows
    valid = grid * grid - fx * fy  # (n,)
    if bool((valid <= 0).any()):
        raise ValueError("the canvas is too small to keep clutter out of the object's box: use a larger canvas, "
                         "smaller fragments, or clutter_overlap=True")
    ax, bx, ay, by, fx, fy, valid = (t[:, None] for t in (ax, bx, ay, by, fx, fy, valid))  # (n, 1)
    u = (torch.rand(boxes.shape[0], k, generator=generator, dtype=torch.float64) * valid).long()
    u = torch.minimum(u, valid - 1)  # (n, k) index among the valid corners
    top, mid = ay * grid, fy * (grid - fx)  # valid corners in rows above / beside the forbidden rectangle
    width_mid = (grid - fx).clamp(min=1)
    v = u - top
    r = v % width_mid
    y = torch.where(u < top, u // grid,
                    torch.where(u < top + mid, ay + v // width_mid, by + (v - mid) // grid))
    x = torch.where(u < top, u % grid,
                    torch.where(u < top + mid, torch.where(r < ax, r, r + fx), (v - mid) % grid))
    return torch.stack([x, y], -1)


def sample_layout(images: Tensor, n: int, canvas: int, n_clutter: int, fragment_size: int,
                  generator: torch.Generator, clutter_overlap: bool = False,
                  mask_threshold: int = 0) -> tuple[ClutterLayout, Tensor]:
    """Draw the layout of ``n`` canvases from the source items ``images`` uint8 (M, h, w).

    Objects: every item once per pass in random order (``n`` > M makes further passes), at a uniform
    position with the item's whole (h, w) frame inside the canvas. Fragments: see the module docstring.

    Returns:
        The layout, and the objects' boxes int64 (n, 4) on the canvas.
    """
    m_items, h, w = images.shape
    g = generator
    source = torch.cat([torch.randperm(m_items, generator=g) for _ in range(math.ceil(n / m_items))])[:n]
    ox = torch.randint(0, canvas - w + 1, (n,), generator=g)
    oy = torch.randint(0, canvas - h + 1, (n,), generator=g)
    origin = torch.stack([ox, oy], 1)
    boxes = item_boxes(images.index_select(0, source), mask_threshold) + origin.repeat(1, 2)  # (n, 4)
    k = n_clutter
    if k == 0:
        empty = torch.zeros(n, 0, dtype=torch.int64)
        return ClutterLayout(source, origin, empty, torch.zeros(n, 0, 2, dtype=torch.int64),
                             torch.zeros(n, 0, 2, dtype=torch.int64)), boxes
    if m_items < 2:
        raise ValueError("clutter needs at least two source items (fragments come from other items)")
    other = (source[:, None] + 1 + torch.randint(0, m_items - 1, (n, k), generator=g)) % m_items  # never `source`
    crop = torch.stack([torch.randint(0, w - fragment_size + 1, (n, k), generator=g),
                        torch.randint(0, h - fragment_size + 1, (n, k), generator=g)], -1)
    grid = canvas - fragment_size + 1
    if clutter_overlap:
        where = torch.randint(0, grid, (n, k, 2), generator=g)
    else:
        where = _outside_box(boxes, grid, fragment_size, k, g)
    return ClutterLayout(source, origin, other, crop, where), boxes


def _compose(flat: Tensor, item_size: tuple[int, int], layout: ClutterLayout, lo: int, hi: int, canvas: int,
             fragment_size: int, threshold: int, out: Tensor, mask: Tensor, clutter: Tensor) -> None:
    """Compose canvases [lo, hi) into ``out`` uint8 (m, C*C), their object masks into ``mask`` and their clutter
    masks into ``clutter`` (both uint8 (m, C*C), 0 or 1).

    ``flat`` holds the source items as uint8 (M, h*w).
    """
    (h, w), c, f = item_size, canvas, fragment_size
    src = flat.index_select(0, layout.source_index[lo:hi])  # (m, h*w)
    origin = layout.origin[lo:hi]
    frame = (torch.arange(h)[:, None] * c + torch.arange(w)).reshape(-1)  # (h*w,) offsets of the frame on the canvas
    idx = (origin[:, 1] * c + origin[:, 0])[:, None] + frame  # (m, h*w)
    out.zero_().scatter_(1, idx, src)
    mask.zero_().scatter_(1, idx, (src > threshold).view(torch.uint8))
    k = layout.clutter_index.shape[1]
    if not k:
        clutter.zero_()
    else:
        crop, where = layout.clutter_crop[lo:hi], layout.clutter_origin[lo:hi]  # (m, k, 2)
        f_in = (torch.arange(f)[:, None] * w + torch.arange(f)).reshape(-1)  # (f*f,) offsets inside an item
        f_out = (torch.arange(f)[:, None] * c + torch.arange(f)).reshape(-1)  # (f*f,) offsets on the canvas
        start = layout.clutter_index[lo:hi] * (h * w) + crop[..., 1] * w + crop[..., 0]  # (m, k) into flat.view(-1)
        values = torch.take(flat, start[..., None] + f_in).reshape(hi - lo, -1)  # (m, k*f*f)
        scatter = ((where[..., 1] * c + where[..., 0])[..., None] + f_out).reshape(hi - lo, -1)  # (m, k*f*f)
        out.scatter_reduce_(1, scatter, values, reduce="amax")
        # composition by max: outside the object's mask, a pixel is > threshold iff some fragment put one there.
        # Same-shape uint8 comparisons (a scalar or broadcast one is ~20x slower on CPU): out > threshold, then
        # (0/1) > mask, i.e. and not the object's.
        torch.gt(out, clutter.fill_(threshold), out=clutter.view(torch.bool))
        torch.gt(clutter, mask, out=clutter.view(torch.bool))


def check_threshold(mask_threshold: int) -> None:
    """A mask threshold is a whole number in 0..255 (pixels are uint8)."""
    if isinstance(mask_threshold, bool) or not isinstance(mask_threshold, int) or not 0 <= mask_threshold <= 255:
        raise ValueError(f"mask_threshold must be a whole number in 0..255 (pixels are uint8), got {mask_threshold!r}")


def _check_params(images: Tensor, canvas: int, n_clutter: int, fragment_size: int, mask_threshold: int) -> Tensor:
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.dtype != torch.uint8 or images.dim() != 3 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty uint8 (M, h, w) tensor, got {images.dtype} {tuple(images.shape)}")
    h, w = images.shape[1:]
    if canvas < max(h, w):
        raise ValueError(f"canvas {canvas} is smaller than the items ({h}x{w})")
    if n_clutter < 0:
        raise ValueError(f"n_clutter must be >= 0, got {n_clutter}")
    if n_clutter and not 1 <= fragment_size <= min(h, w):
        raise ValueError(f"fragment_size must be in 1..{min(h, w)}, got {fragment_size}")
    check_threshold(mask_threshold)
    return images.contiguous()


def _generate(images: Tensor, labels: Tensor, n: int, canvas: int, n_clutter: int, fragment_size: int,
              mask_threshold: int, clutter_overlap: bool, generator: torch.Generator, pack: bool,
              chunk: int = _CHUNK) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, ClutterLayout]:
    """Images, labels, boxes, object masks, clutter masks and the layout; masks packed (n, ceil(C*C/8)) when
    ``pack``, else bool (n, C, C)."""
    images = _check_params(images, canvas, n_clutter, fragment_size, mask_threshold)
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    layout, boxes = sample_layout(images, n, canvas, n_clutter, fragment_size, generator, clutter_overlap,
                                  mask_threshold)
    flat, cc = images.reshape(images.shape[0], -1), canvas * canvas
    out = torch.empty(n, 1, canvas, canvas, dtype=torch.uint8)
    if pack:
        masks, clutter = (torch.empty(n, (cc + 7) // 8, dtype=torch.uint8) for _ in range(2))
        buffers = torch.empty(2, min(n, chunk), cc, dtype=torch.uint8)  # reused: fresh pages cost more than the work
    else:
        masks, clutter = (torch.empty(n, canvas, canvas, dtype=torch.bool) for _ in range(2))
    for lo in range(0, n, chunk):  # chunks bound the memory; the result does not depend on them
        hi = min(n, lo + chunk)
        m, c = ((buffers[0, : hi - lo], buffers[1, : hi - lo]) if pack else
                (t[lo:hi].view(hi - lo, cc).view(torch.uint8) for t in (masks, clutter)))
        _compose(flat, tuple(images.shape[1:]), layout, lo, hi, canvas, fragment_size, mask_threshold,
                 out[lo:hi].view(hi - lo, cc), m, c)
        if pack:
            masks[lo:hi], clutter[lo:hi] = pack_masks(m), pack_masks(c)
    return out, labels.to(torch.int64)[layout.source_index], boxes, masks, clutter, layout


def generate_cluttered(images: Tensor, labels: Tensor, n: int | None = None, canvas: int = 64, n_clutter: int = 4,
                       fragment_size: int = 9, *, mask_threshold: int = 0, clutter_overlap: bool = False,
                       generator: torch.Generator | None = None) -> ClutteredSamples:
    """Compose ``n`` cluttered canvases from source items (a pure function: no global RNG, no I/O).

    See the module docstring for the box, mask, clutter and composition conventions.

    Args:
        images: source items, uint8 (M, h, w) or (M, 1, h, w); fragments come from these items too.
        labels: (M,) class of each item.
        n: number of canvases (default M: every item once, in random order).
        canvas: side C of the square canvas, >= the item size.
        n_clutter: fragments per canvas.
        fragment_size: side of each square fragment, <= the item size.
        mask_threshold: an item pixel belongs to the mask (and the box) when its value is > this.
        clutter_overlap: let fragments cover the object's box (default: kept outside it).
        generator: the source of randomness (default: a new generator seeded with 0, never the global one).

    Returns:
        :class:`ClutteredSamples`: images uint8 (n, 1, C, C), labels int64 (n,), boxes int64 (n, 4),
        masks and clutter masks bool (n, C, C), and the layout.

    Raises:
        ValueError: inconsistent shapes or parameters, fewer than two items with clutter, or a canvas too small
            to keep clutter out of a box.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> items = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8)
        >>> s = generate_cluttered(items, torch.arange(10), generator=g)
        >>> s.images.shape, s.boxes.shape, s.masks.shape
        (torch.Size([10, 1, 64, 64]), torch.Size([10, 4]), torch.Size([10, 64, 64]))
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    n = images.shape[0] if n is None else n
    out, lab, boxes, masks, clutter, layout = _generate(images, labels, n, canvas, n_clutter, fragment_size,
                                                        mask_threshold, clutter_overlap, generator, pack=False)
    return ClutteredSamples(out, lab, boxes, masks, clutter, layout)


_LAYOUT = ("source_index", "origin", "clutter_index", "clutter_crop", "clutter_origin")


class ClutteredFashionMNIST(CanvasDataset):
    """Cluttered Fashion-MNIST: each item on a ``canvas`` x ``canvas`` canvas with clutter (see the module doc).

    Canvases are generated once and cached in ``cache_dir`` (see :class:`attnlab.data.canvas.CanvasDataset`:
    the file is keyed by every parameter, the generator version, the torch version and the SHA-256 of the two
    source IDX files, written atomically, and re-validated on load). A seed gives the same canvases under one
    torch version (its random generators may change between versions, hence the key).

    Args:
        root: folder with the Fashion-MNIST IDX files (default: ``$ATTNLAB_FASHION_MNIST_DIR``, else
            ``/usr/share/datasets/fashion-mnist``).
        split: ``"train"`` or ``"test"``; objects and clutter come from that official split only.
        canvas: side of the square canvas (default 64).
        n_clutter: fragments per canvas (default 4): the level of clutter. The default canvas and fragment
            size keep any number of fragments outside the object's box (the fragments may overlap each other).
        fragment_size: side of each square fragment, in pixels (default 9).
        seed: the generator is seeded from (seed, split), so train and test layouts differ for one seed.
        size: number of canvases (default: the size of the split, every item once).
        mask_threshold: item pixels > this form the mask and box, and fragment pixels > this the clutter mask
            (default 0: the non-zero pixels).
        clutter_overlap: let clutter fall on the object's box (default False).
        cache: read and write the cache (default True); with False, always generate.
        cache_dir: the cache folder (default: :func:`attnlab.data.base.default_cache_dir`).
        transform: applied to the float image only (keep it geometric-free, or boxes and masks go stale).

    Items are :class:`ClutteredSample` ``(image float (1, C, C), label, box int64 (4,), mask bool (C, C))``.
    ``images`` (N, 1, C, C) uint8, ``labels``, ``boxes`` (N, 4), ``masks`` (N, C, C) and ``clutter_masks``
    (N, C, C) give whole tensors, and ``get_batch(index)`` a batched :class:`ClutteredSample`.

    Example:
        >>> ds = ClutteredFashionMNIST(split="test")  # doctest: +SKIP
        >>> x, y, box, mask = ds.get_batch(torch.arange(64))  # doctest: +SKIP
        >>> clutter = ds.clutter_masks[:64]  # (64, 64, 64) bool, disjoint from mask  # doctest: +SKIP
    """

    name = "cluttered-fashion-mnist"
    generator_version = GENERATOR_VERSION

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", canvas: int = 64,
                 n_clutter: int = 4, fragment_size: int = 9, seed: int = 0, size: int | None = None,
                 mask_threshold: int = 0, clutter_overlap: bool = False, cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, transform: Transform | None = None):
        params = dict(canvas=canvas, n_clutter=n_clutter, fragment_size=fragment_size, seed=seed, size=size,
                      mask_threshold=mask_threshold, clutter_overlap=clutter_overlap)
        super().__init__(root, split, params, cache=cache, cache_dir=cache_dir, transform=transform)
        self.layout = ClutterLayout(*(self.tensors[k] for k in _LAYOUT))

    def build(self, generator: torch.Generator) -> dict[str, Tensor]:
        src, labels = load_fashion_mnist(self.root, self.split)
        p = self.params
        n = src.shape[0] if p["size"] is None else p["size"]
        images, lab, boxes, packed, clutter, layout = _generate(
            src, labels, n, p["canvas"], p["n_clutter"], p["fragment_size"], p["mask_threshold"],
            p["clutter_overlap"], generator, pack=True)
        return dict(images=images, labels=lab, boxes=boxes, masks_packed=packed, clutter_packed=clutter,
                    **asdict(layout))

    def extra_shapes(self, n: int) -> dict[str, tuple[int, ...]]:
        c, k = self.params["canvas"], self.params["n_clutter"]
        return dict(clutter_packed=(n, (c * c + 7) // 8), source_index=(n,), origin=(n, 2), clutter_index=(n, k),
                    clutter_crop=(n, k, 2), clutter_origin=(n, k, 2))

    def get_clutter_masks(self, index: Tensor | list[int] | slice | int) -> Tensor:
        """Clutter masks bool (B, C, C) at ``index``: fragment pixels outside the object (unpacks those rows)."""
        if self._clutter is not None:
            return self._clutter[index]
        return unpack_masks(self.tensors["clutter_packed"][index], self.params["canvas"])
