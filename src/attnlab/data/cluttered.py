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
``scatter_reduce(amax)`` for all fragments; no Python loop runs per canvas or per fragment. The result
depends only on the source items, the parameters and the generator (not on the chunk size).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import warnings
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..fileio import atomic_open
from .base import TensorImageDataset, Transform, check_split, default_cache_dir
from .fashion_mnist import FASHION_MNIST_CLASSES, fashion_mnist_files, fashion_mnist_root, load_fashion_mnist

__all__ = ["ClutterLayout", "ClutteredFashionMNIST", "ClutteredSample", "ClutteredSamples", "generate_cluttered",
           "item_boxes", "sample_layout"]

#: bump when the layout sampling or the composition changes: invalidates every cache file
GENERATOR_VERSION = 1
_CACHE_FORMAT = 1
_CHUNK = 2048  # canvases composed at once: bounds memory; large enough that per-op overhead is amortised


class ClutteredSample(NamedTuple):
    """One sample (or, from ``get_batch``, a batch with a leading N on every field)."""

    image: Tensor  #: float32 (1, C, C) in [0, 1] (then the dataset's transform)
    label: int | Tensor  #: class index (int64 (N,) for a batch)
    box: Tensor  #: int64 (4,) = (x0, y0, x1, y1), x1/y1 exclusive
    mask: Tensor  #: bool (C, C), the object's pixels


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
    masks: Tensor  #: bool (n, C, C)
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
             fragment_size: int, threshold: int, out: Tensor, mask: Tensor) -> None:
    """Compose canvases [lo, hi) into ``out`` uint8 (m, C*C) and their object masks into ``mask`` uint8 (m, C*C).

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
    if k:
        crop, where = layout.clutter_crop[lo:hi], layout.clutter_origin[lo:hi]  # (m, k, 2)
        f_in = (torch.arange(f)[:, None] * w + torch.arange(f)).reshape(-1)  # (f*f,) offsets inside an item
        f_out = (torch.arange(f)[:, None] * c + torch.arange(f)).reshape(-1)  # (f*f,) offsets on the canvas
        start = layout.clutter_index[lo:hi] * (h * w) + crop[..., 1] * w + crop[..., 0]  # (m, k) into flat.view(-1)
        values = torch.take(flat, start[..., None] + f_in)  # (m, k, f*f)
        scatter = (where[..., 1] * c + where[..., 0])[..., None] + f_out  # (m, k, f*f)
        out.scatter_reduce_(1, scatter.reshape(hi - lo, -1), values.reshape(hi - lo, -1), reduce="amax")


def _check_params(images: Tensor, canvas: int, n_clutter: int, fragment_size: int) -> Tensor:
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
    return images.contiguous()


def _generate(images: Tensor, labels: Tensor, n: int, canvas: int, n_clutter: int, fragment_size: int,
              mask_threshold: int, clutter_overlap: bool, generator: torch.Generator, pack_masks: bool,
              chunk: int = _CHUNK) -> tuple[Tensor, Tensor, Tensor, Tensor, ClutterLayout]:
    images = _check_params(images, canvas, n_clutter, fragment_size)
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    layout, boxes = sample_layout(images, n, canvas, n_clutter, fragment_size, generator, clutter_overlap,
                                  mask_threshold)
    flat, cc = images.reshape(images.shape[0], -1), canvas * canvas
    out = torch.empty(n, 1, canvas, canvas, dtype=torch.uint8)
    if pack_masks:
        masks = torch.empty(n, (cc + 7) // 8, dtype=torch.uint8)
        buffer = torch.empty(min(n, chunk), cc, dtype=torch.uint8)  # reused: fresh pages cost more than the work
    else:
        masks = torch.empty(n, canvas, canvas, dtype=torch.bool)
    for lo in range(0, n, chunk):  # chunks bound the memory; the result does not depend on them
        hi = min(n, lo + chunk)
        mask = buffer[: hi - lo] if pack_masks else masks[lo:hi].view(hi - lo, cc).view(torch.uint8)
        _compose(flat, tuple(images.shape[1:]), layout, lo, hi, canvas, fragment_size, mask_threshold,
                 out[lo:hi].view(hi - lo, cc), mask)
        if pack_masks:
            masks[lo:hi] = torch.from_numpy(np.packbits(mask.numpy(), axis=1))  # (m, C*C) -> (m, ceil(C*C / 8))
    return out, labels.to(torch.int64)[layout.source_index], boxes, masks, layout


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
        masks bool (n, C, C), and the layout.

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
    out, lab, boxes, masks, layout = _generate(images, labels, n, canvas, n_clutter, fragment_size, mask_threshold,
                                               clutter_overlap, generator, pack_masks=False)
    return ClutteredSamples(out, lab, boxes, masks, layout)


def _unpack(packed: Tensor, canvas: int) -> Tensor:
    """Packed masks uint8 (B, ceil(C*C/8)) -> bool (B, C, C)."""
    bits = np.unpackbits(packed.numpy(), axis=1, count=canvas * canvas)
    return torch.from_numpy(bits).view(torch.bool).view(-1, canvas, canvas)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _checksum(tensors: dict[str, Tensor]) -> int:
    """CRC-32 of the tensors' bytes, in name order (detects bit rot; the cache key handles staleness)."""
    crc = 0
    for name in sorted(tensors):
        crc = zlib.crc32(tensors[name].contiguous().numpy().reshape(-1).view(np.uint8), crc)
    return crc


_TENSORS = ("images", "labels", "boxes", "masks_packed", "source_index", "origin", "clutter_index", "clutter_crop",
            "clutter_origin")


class ClutteredFashionMNIST(TensorImageDataset):
    """Cluttered Fashion-MNIST: each item on a ``canvas`` x ``canvas`` canvas with clutter (see the module doc).

    Canvases are generated once and cached in ``cache_dir`` as a ``.pt`` file named after a hash of every
    parameter, the generator version, the torch version and the SHA-256 of the two source IDX files; the file
    is written atomically (temporary file, then ``os.replace``) and re-validated on load (structure, shapes,
    ranges and a CRC-32 of the contents): a corrupt one is regenerated, with a warning. A seed gives the same
    canvases under one torch version (its random generators may change between versions, hence the key).

    Args:
        root: folder with the Fashion-MNIST IDX files (default: ``$ATTNLAB_FASHION_MNIST_DIR``, else
            ``/usr/share/datasets/fashion-mnist``).
        split: ``"train"`` or ``"test"``; objects and clutter come from that official split only.
        canvas: side of the square canvas (default 64).
        n_clutter: fragments per canvas (default 4).
        fragment_size: side of each square fragment, in pixels (default 9).
        seed: the generator is seeded from (seed, split), so train and test layouts differ for one seed.
        size: number of canvases (default: the size of the split, every item once).
        mask_threshold: item pixels > this form the mask and box (default 0: the non-zero pixels).
        clutter_overlap: let clutter fall on the object's box (default False).
        cache: read and write the cache (default True); with False, always generate.
        cache_dir: the cache folder (default: :func:`attnlab.data.base.default_cache_dir`).
        transform: applied to the float image only (keep it geometric-free, or boxes and masks go stale).

    Items are :class:`ClutteredSample` ``(image float (1, C, C), label, box int64 (4,), mask bool (C, C))``.
    ``images`` (N, 1, C, C) uint8, ``labels``, ``boxes`` (N, 4) and ``masks`` (N, C, C) give whole tensors, and
    ``get_batch(index)`` a batched :class:`ClutteredSample`.

    Example:
        >>> ds = ClutteredFashionMNIST(split="test")  # doctest: +SKIP
        >>> x, y, box, mask = ds.get_batch(torch.arange(64))  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", canvas: int = 64,
                 n_clutter: int = 4, fragment_size: int = 9, seed: int = 0, size: int | None = None,
                 mask_threshold: int = 0, clutter_overlap: bool = False, cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, transform: Transform | None = None):
        check_split(split)
        if size is not None and (isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1):
            raise ValueError(f"size (canvases to generate) must be a whole number >= 1, or None for every item of the "
                             f"split once; got {size!r}")
        self.root = fashion_mnist_root(root)
        self.split = split
        self.params = dict(split=split, canvas=canvas, n_clutter=n_clutter, fragment_size=fragment_size, seed=seed,
                           size=size, mask_threshold=mask_threshold, clutter_overlap=clutter_overlap)
        files = fashion_mnist_files(self.root, split)  # raises with the install hint when missing
        self.cache_path: Path | None = None
        data = None
        if cache:
            key = self._key(files)
            folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            self.cache_path = folder / f"cluttered-fashion-mnist-{split}-{key[:20]}.pt"
            data = self._load(self.cache_path, key)
        self.cache_hit = data is not None
        if data is None:
            data = self._build()
            if cache:
                data["key"] = key
                self._save(self.cache_path, data)
        self._masks_packed = data["masks_packed"]
        self._masks: Tensor | None = None
        self.layout = ClutterLayout(*(data[k] for k in _TENSORS[4:]))
        super().__init__(data["images"], data["labels"], FASHION_MNIST_CLASSES, transform)
        self._boxes = data["boxes"]

    # -- generation and cache ---------------------------------------------------------------------------
    def _key(self, files: tuple[Path, Path]) -> str:
        desc = dict(self.params, generator=GENERATOR_VERSION, torch=torch.__version__.split("+")[0],
                    sources=[_file_sha256(p) for p in files])
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()

    def _seed(self) -> int:
        digest = hashlib.sha256(f"cluttered-fashion-mnist:{self.split}:{self.params['seed']}".encode()).digest()
        return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)

    def _build(self) -> dict:
        src, labels = load_fashion_mnist(self.root, self.split)
        p = self.params
        g = torch.Generator().manual_seed(self._seed())
        n = src.shape[0] if p["size"] is None else p["size"]
        images, lab, boxes, packed, layout = _generate(src, labels, n, p["canvas"], p["n_clutter"],
                                                       p["fragment_size"], p["mask_threshold"],
                                                       p["clutter_overlap"], g, pack_masks=True)
        return dict(images=images, labels=lab, boxes=boxes, masks_packed=packed, **asdict(layout))

    def _validate(self, data: object, key: str) -> str | None:
        """Why ``data`` is not a valid cache entry for ``key`` (None when it is)."""
        if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
            return "unknown format"
        if data.get("key") != key:
            return "key mismatch"
        if any(not isinstance(data.get(k), Tensor) for k in _TENSORS):
            return "missing tensors"
        c, n = self.params["canvas"], data["images"].shape[0]
        k = self.params["n_clutter"]
        shapes = dict(images=(n, 1, c, c), labels=(n,), boxes=(n, 4), masks_packed=(n, (c * c + 7) // 8),
                      source_index=(n,), origin=(n, 2), clutter_index=(n, k), clutter_crop=(n, k, 2),
                      clutter_origin=(n, k, 2))
        if any(tuple(data[k].shape) != s for k, s in shapes.items()):
            return "shapes"
        if data["images"].dtype != torch.uint8 or data["masks_packed"].dtype != torch.uint8:
            return "dtypes"
        if self.params["size"] is not None and n != self.params["size"]:
            return "size"
        if n and (int(data["labels"].min()) < 0 or int(data["labels"].max()) >= len(FASHION_MNIST_CLASSES)
                  or int(data["boxes"].min()) < 0 or int(data["boxes"].max()) > c):
            return "values out of range"
        if data.get("crc32") != _checksum({k: data[k] for k in _TENSORS}):
            return "checksum mismatch"
        return None

    def _load(self, path: Path, key: str) -> dict | None:
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            reason = self._validate(data, key)
        except Exception as e:  # noqa: BLE001 - any unreadable file is regenerated
            reason = f"{type(e).__name__}: {e}"
        if reason is None:
            return data
        warnings.warn(f"cache file {path} is corrupt or stale ({reason[:200]}); regenerating it", stacklevel=3)
        return None

    @staticmethod
    def _save(path: Path, data: dict) -> None:
        payload = {k: data[k] for k in _TENSORS}
        payload.update(format=_CACHE_FORMAT, key=data["key"], crc32=_checksum(payload))
        try:
            with atomic_open(path) as f:
                torch.save(payload, f)
        except OSError as e:
            warnings.warn(f"could not write the cache file {path} ({e}); continuing without it", stacklevel=3)

    # -- access -----------------------------------------------------------------------------------------
    @property
    def boxes(self) -> Tensor:
        """All boxes, int64 (N, 4) = (x0, y0, x1, y1), x1/y1 exclusive."""
        return self._boxes

    @property
    def masks(self) -> Tensor:
        """All object masks, bool (N, C, C) (unpacked on first use: N * C * C bytes)."""
        if self._masks is None:
            self._masks = _unpack(self._masks_packed, self.params["canvas"])
        return self._masks

    def get_masks(self, index: Tensor | list[int] | slice | int) -> Tensor:
        """Object masks bool (B, C, C) at ``index`` (unpacks only those rows)."""
        if self._masks is not None:
            return self._masks[index]
        packed = self._masks_packed[index]
        return _unpack(packed.reshape(-1, packed.shape[-1]), self.params["canvas"]).reshape(
            *packed.shape[:-1], self.params["canvas"], self.params["canvas"])

    def get_batch(self, index: Tensor | list[int] | slice) -> ClutteredSample:  # type: ignore[override]
        """A batched :class:`ClutteredSample`: images (B, 1, C, C) float, labels (B,), boxes (B, 4), masks (B, C, C)."""
        x, y = super().get_batch(index)
        return ClutteredSample(x, y, self._boxes[index], self.get_masks(index))

    def __getitem__(self, i: int) -> ClutteredSample:  # type: ignore[override]
        x, y = super().__getitem__(i)
        return ClutteredSample(x, y, self._boxes[i], self.get_masks(i))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, {', '.join(f'{k}={v}' for k, v in self.params.items())})"
