"""Photo-cluttered Fashion-MNIST: one Fashion-MNIST item on a random crop of a real photograph.

A second kind of clutter beside :mod:`attnlab.data.cluttered`'s fragments of other garments: the background
is a grayscale crop of one of the sample photographs scikit-image ships inside its package (its folder
``skimage/data``: nothing is downloaded), so every pixel around the object is natural image structure
(edges, texture, other objects), the kind of clutter a network meets outside a toy dataset.

The photographs (:data:`PHOTOGRAPHS`) are chosen by hand: natural photographs and natural textures
(astronaut, brick, camera, chelsea, coffee, coins, grass, gravel, ihc, moon, motorcycle_left, page, rocket,
text). Left out on purpose: the synthetic test patterns and drawings (chessboard, color, logo, phantom,
horse: a black silhouette, not a photograph), images whose crops would be mostly flat or black and so no
clutter at all (cell, clock_motion, hubble_deep_field, retina: a fundus in a black frame), one too small to
split (microaneurysms, 102x102), and a near duplicate (motorcycle_right, the other half of a stereo pair).

Conventions (those of :mod:`attnlab.data.cluttered`, so the metrics and the study treat both alike):

* **Canvas** ``canvas`` x ``canvas`` (default 64), uint8, one channel.
* **Object**: the item's whole 28x28 frame at a uniform position inside the canvas, every item once per
  pass in random order (the same draw as the cluttered dataset's, :func:`attnlab.data.sample_layout`).
* **Mask**: the item's pixels ``> mask_threshold`` (default 0); **box**: the mask's tight box
  (x0, y0, x1, y1), exclusive ends.
* **Composition**: the object's mask pixels replace the photograph; the photograph's contrast is scaled by
  ``contrast`` (default 0.5: values in [0, 128]) so the object, whose pixels keep their full range, stays
  visible and the task learnable. Every pixel outside the mask is the photograph's.
* **Clutter mask**: the photograph's pixels, i.e. every pixel not in the object's mask (the photograph
  fills the canvas): ``clutter_masks == ~masks``.
* **Photographs**: each is read with PIL, converted to grayscale (``"L"``: ITU-R 601-2 luma) and shrunk by
  the integer factor ``downscale`` (default 2: a mean over 2x2 blocks, rounded), so a 64x64 crop holds
  more structure than a patch of one texture.
* **Train / test split**: by disjoint regions of every photograph, so no test crop shares a pixel with a
  train crop. Each photograph is cut across its longer side: the test region is the last
  ``max(L // 4, canvas)`` pixels of that side, the train region the rest. A canvas's photograph is drawn
  uniformly among the photographs, its crop uniformly inside that photograph's region of the split.

Generation is batched: the layout of all canvases is drawn first, then canvases are composed in chunks
with one ``scatter`` for the objects and one ``take`` for all photo crops (the photographs concatenated
flat); a Python loop runs only per photograph, to read it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .base import Transform
from .canvas import CanvasDataset, pack_masks, unpack_masks
from .cluttered import check_threshold, sample_layout
from .errors import DataFileNotFoundError
from .fashion_mnist import load_fashion_mnist

__all__ = ["PHOTOGRAPHS", "PhotoClutteredFashionMNIST", "PhotoClutteredSamples", "PhotoLayout",
           "generate_photo_cluttered", "load_photo", "photo_region", "skimage_data_dir"]

#: the sample photographs used, file names in scikit-image's ``skimage/data`` (see the module docstring)
PHOTOGRAPHS = ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
               "gravel.png", "ihc.png", "moon.png", "motorcycle_left.png", "page.png", "rocket.jpg", "text.png")
INSTALL_HINT = "pip install 'attnlab[photos]'"
#: bump when the layout sampling, the photographs' preparation or the composition changes
GENERATOR_VERSION = 1
_CHUNK = 1024  # canvases composed at once: bounds memory (the gather indices are int64 per pixel)


@dataclass(frozen=True)
class PhotoLayout:
    """Where everything goes; enough to re-render the canvases. All int64; positions are (x, y)."""

    source_index: Tensor  #: (n,) the object's item in the source split
    origin: Tensor  #: (n, 2) the item's (h, w) frame on the canvas
    photo_index: Tensor  #: (n,) the photograph, an index into the photographs given
    photo_crop: Tensor  #: (n, 2) the crop's top-left corner inside the photograph (its split's region)


@dataclass(frozen=True)
class PhotoClutteredSamples:
    """The output of :func:`generate_photo_cluttered`."""

    images: Tensor  #: uint8 (n, 1, C, C)
    labels: Tensor  #: int64 (n,)
    boxes: Tensor  #: int64 (n, 4) = (x0, y0, x1, y1), x1/y1 exclusive
    masks: Tensor  #: bool (n, C, C), the objects' pixels
    clutter_masks: Tensor  #: bool (n, C, C), the photograph's pixels: ``~masks``
    layout: PhotoLayout


def skimage_data_dir() -> Path:
    """scikit-image's folder of sample data (``skimage/data``), found without importing scikit-image.

    Raises:
        DataFileNotFoundError: scikit-image is not installed (the message names the extra to install).
    """
    try:
        spec = importlib.util.find_spec("skimage")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataFileNotFoundError(f"photo-cluttered-fashion-mnist needs the sample photographs scikit-image ships "
                                    f"and scikit-image is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def photo_files(folder: Path | None = None) -> list[Path]:
    """The paths of :data:`PHOTOGRAPHS` in ``folder`` (default: :func:`skimage_data_dir`).

    Raises:
        DataFileNotFoundError: scikit-image is missing, or some photographs are not in its folder.
    """
    folder = skimage_data_dir() if folder is None else folder
    paths = [folder / name for name in PHOTOGRAPHS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataFileNotFoundError(f"scikit-image's sample photographs {', '.join(missing)} are missing from "
                                    f"{folder}; reinstall scikit-image: {INSTALL_HINT}")
    return paths


def _pillow():
    """The PIL package (with ``PIL.Image`` loaded), or the install hint."""
    try:
        import PIL.Image
    except ImportError as e:
        raise DataFileNotFoundError(f"reading the sample photographs needs Pillow: {INSTALL_HINT}") from e
    return PIL


def load_photo(path: Path, downscale: int = 2) -> Tensor:
    """A photograph as grayscale uint8 (H // downscale, W // downscale): PIL's ``"L"``, then the rounded mean
    of every ``downscale`` x ``downscale`` block (the last rows and columns that make no whole block dropped)."""
    with _pillow().Image.open(path) as im:
        gray = np.asarray(im.convert("L"), dtype=np.uint8)  # (H, W)
    f = downscale
    h, w = gray.shape[0] // f, gray.shape[1] // f
    blocks = gray[: h * f, : w * f].reshape(h, f, w, f).sum(axis=(1, 3), dtype=np.int32)  # (h, w) sums of f*f
    return torch.from_numpy(((blocks + f * f // 2) // (f * f)).astype(np.uint8))


def photo_region(photo: Tensor, split: str, canvas: int) -> Tensor:
    """The part of ``photo`` (H, W) that ``split``'s crops come from: the photograph cut across its longer
    side, the last ``max(L // 4, canvas)`` pixels for ``"test"``, the rest for ``"train"`` (a view)."""
    h, w = photo.shape
    long_side = 1 if w >= h else 0
    length = photo.shape[long_side]
    cut = length - max(length // 4, canvas)
    part = slice(cut, length) if split == "test" else slice(0, cut)
    return photo[:, part] if long_side == 1 else photo[part]


def _check(images: Tensor, labels: Tensor, photos: Sequence[Tensor], n: int, canvas: int, contrast: float,
           threshold: int) -> Tensor:
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.dtype != torch.uint8 or images.dim() != 3 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty uint8 (M, h, w) tensor, got {images.dtype} {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if canvas < max(images.shape[1:]):
        raise ValueError(f"canvas {canvas} is smaller than the items ({images.shape[1]}x{images.shape[2]})")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    check_threshold(threshold)
    if not 0 <= contrast <= 1:
        raise ValueError(f"contrast (the photograph's scale) must be in [0, 1], got {contrast}")
    if not photos:
        raise ValueError("photos is empty: give at least one uint8 (H, W) photograph")
    for i, p in enumerate(photos):
        if p.dtype != torch.uint8 or p.dim() != 2 or min(p.shape) < canvas:
            raise ValueError(f"photograph {i} must be uint8 (H, W) with both sides >= the canvas {canvas}, got "
                             f"{p.dtype} {tuple(p.shape)}: use a smaller canvas or a smaller downscale")
    return images.contiguous()


def _sample_crops(sizes: Tensor, n: int, canvas: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A photograph for each canvas, uniform among ``sizes`` (P, 2) = (H, W), and a uniform crop corner inside it:
    -> photo_index (n,), crop (n, 2) = (x, y)."""
    index = torch.randint(0, sizes.shape[0], (n,), generator=generator)
    room = (sizes[index].flip(1) - canvas + 1).to(torch.float64)  # (n, 2) corners per axis, (x, y)
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    return index, torch.minimum((u * room).long(), room.long() - 1)


def _compose(flat_items: Tensor, item_size: tuple[int, int], flat_photos: Tensor, starts: Tensor, widths: Tensor,
             layout: PhotoLayout, lo: int, hi: int, canvas: int, threshold: int, lut: Tensor) -> tuple[Tensor, Tensor]:
    """Canvases [lo, hi) -> (images uint8 (m, C*C), object masks bool (m, C*C)).

    ``flat_items`` uint8 (M, h*w); ``flat_photos`` uint8: every photograph flattened, one after another, the
    p-th from ``starts[p]`` with row length ``widths[p]``; ``lut`` uint8 (256,): the photograph's contrast.
    """
    (h, w), c = item_size, canvas
    src = flat_items.index_select(0, layout.source_index[lo:hi])  # (m, h*w)
    origin = layout.origin[lo:hi]
    frame = (torch.arange(h)[:, None] * c + torch.arange(w)).reshape(-1)  # (h*w,) offsets of the frame on the canvas
    obj = torch.zeros(hi - lo, c * c, dtype=torch.uint8).scatter_(1, (origin[:, 1] * c + origin[:, 0])[:, None] + frame,
                                                                  src)
    mask = obj > threshold
    p, crop = layout.photo_index[lo:hi], layout.photo_crop[lo:hi]
    rows, cols = torch.arange(c).repeat_interleave(c), torch.arange(c).repeat(c)  # (C*C,) each
    width = widths[p][:, None]  # (m, 1)
    pixel = (starts[p] + crop[:, 1] * widths[p] + crop[:, 0])[:, None] + rows * width + cols  # (m, C*C)
    photo = lut[torch.take(flat_photos, pixel).long()]
    return torch.where(mask, obj, photo), mask


def _generate(images: Tensor, labels: Tensor, photos: Sequence[Tensor], n: int, canvas: int, contrast: float,
              mask_threshold: int, generator: torch.Generator, pack: bool, chunk: int = _CHUNK):
    """Images, labels, boxes, object masks (packed (n, ceil(C*C/8)) when ``pack``, else bool (n, C, C)), layout."""
    images = _check(images, labels, photos, n, canvas, contrast, mask_threshold)
    objects, boxes = sample_layout(images, n, canvas, 0, 1, generator, mask_threshold=mask_threshold)
    sizes = torch.tensor([tuple(p.shape) for p in photos], dtype=torch.int64)  # (P, 2) = (H, W)
    photo_index, crop = _sample_crops(sizes, n, canvas, generator)
    layout = PhotoLayout(objects.source_index, objects.origin, photo_index, crop)
    flat_photos = torch.cat([p.reshape(-1) for p in photos])
    starts = torch.cumsum(sizes.prod(1), 0) - sizes.prod(1)  # (P,) where each photograph begins in flat_photos
    lut = torch.round(torch.arange(256, dtype=torch.float64) * contrast).to(torch.uint8)
    flat_items, cc = images.reshape(images.shape[0], -1), canvas * canvas
    out = torch.empty(n, 1, canvas, canvas, dtype=torch.uint8)
    masks = (torch.empty(n, (cc + 7) // 8, dtype=torch.uint8) if pack
             else torch.empty(n, canvas, canvas, dtype=torch.bool))
    for lo in range(0, n, chunk):  # chunks bound the memory; the result does not depend on them
        hi = min(n, lo + chunk)
        img, mask = _compose(flat_items, tuple(images.shape[1:]), flat_photos, starts, sizes[:, 1], layout, lo, hi,
                             canvas, mask_threshold, lut)
        out[lo:hi] = img.view(hi - lo, 1, canvas, canvas)
        masks[lo:hi] = pack_masks(mask) if pack else mask.view(hi - lo, canvas, canvas)
    return out, labels.to(torch.int64)[layout.source_index], boxes, masks, layout


def generate_photo_cluttered(images: Tensor, labels: Tensor, photos: Sequence[Tensor], n: int | None = None,
                             canvas: int = 64, *, contrast: float = 0.5, mask_threshold: int = 0,
                             generator: torch.Generator | None = None) -> PhotoClutteredSamples:
    """Compose ``n`` canvases of items on photo crops (a pure function: no global RNG, no I/O).

    See the module docstring for the conventions.

    Args:
        images: source items, uint8 (M, h, w) or (M, 1, h, w).
        labels: (M,) class of each item.
        photos: the photographs (already restricted to one split's regions), each uint8 (H, W), both sides
            >= ``canvas``.
        n: number of canvases (default M: every item once, in random order).
        canvas: side C of the square canvas, >= the item size.
        contrast: the photograph's values are multiplied by this (in [0, 1]) and rounded.
        mask_threshold: an item pixel belongs to the object (mask, box, and the pixels it replaces) when > this.
        generator: the source of randomness (default: a new generator seeded with 0, never the global one).

    Returns:
        :class:`PhotoClutteredSamples`: images uint8 (n, 1, C, C), labels int64 (n,), boxes int64 (n, 4),
        masks and clutter masks bool (n, C, C) (``clutter_masks == ~masks``), and the layout.

    Raises:
        ValueError: inconsistent shapes or parameters, or a photograph smaller than the canvas.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> items = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8)
        >>> photo = torch.randint(0, 256, (100, 120), dtype=torch.uint8)
        >>> s = generate_photo_cluttered(items, torch.arange(10), [photo], generator=g)
        >>> s.images.shape, bool((s.clutter_masks == ~s.masks).all())
        (torch.Size([10, 1, 64, 64]), True)
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    n = images.shape[0] if n is None else n
    out, lab, boxes, masks, layout = _generate(images, labels, photos, n, canvas, contrast, mask_threshold,
                                               generator, pack=False)
    return PhotoClutteredSamples(out, lab, boxes, masks, ~masks, layout)


_LAYOUT = ("source_index", "origin", "photo_index", "photo_crop")


class PhotoClutteredFashionMNIST(CanvasDataset):
    """Photo-cluttered Fashion-MNIST: each item on a crop of a real photograph (see the module docstring).

    Canvases are generated once and cached in ``cache_dir`` like :class:`attnlab.data.ClutteredFashionMNIST`'s
    (keyed also by the photographs' contents and Pillow's version, which decodes them).

    Args:
        root: folder with the Fashion-MNIST IDX files (default: ``$ATTNLAB_FASHION_MNIST_DIR``, else
            ``/usr/share/datasets/fashion-mnist``).
        split: ``"train"`` or ``"test"``: the items come from that official split, the crops from that split's
            region of every photograph (disjoint from the other split's).
        canvas: side of the square canvas (default 64).
        contrast: the photograph's values are scaled by this, in [0, 1] (default 0.5).
        downscale: every photograph is shrunk by this integer factor before cropping (default 2).
        seed: the generator is seeded from (seed, split).
        size: number of canvases (default: the size of the split, every item once).
        mask_threshold: item pixels > this form the mask and box and replace the photograph (default 0).
        cache: read and write the cache (default True); with False, always generate.
        cache_dir: the cache folder (default: :func:`attnlab.data.base.default_cache_dir`).
        transform: applied to the float image only (keep it geometric-free, or boxes and masks go stale).

    Raises:
        DataFileNotFoundError: (a ``ValueError``) scikit-image or its photographs are missing (the message
            names ``pip install 'attnlab[photos]'``), or Fashion-MNIST is missing.

    Example:
        >>> ds = PhotoClutteredFashionMNIST(split="test")  # doctest: +SKIP
        >>> x, y, box, mask = ds.get_batch(torch.arange(64))  # doctest: +SKIP
        >>> bool((ds.clutter_masks[:64] == ~mask).all())  # doctest: +SKIP
        True
    """

    name = "photo-cluttered-fashion-mnist"
    generator_version = GENERATOR_VERSION

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", canvas: int = 64,
                 contrast: float = 0.5, downscale: int = 2, seed: int = 0, size: int | None = None,
                 mask_threshold: int = 0, cache: bool = True, cache_dir: str | os.PathLike | None = None,
                 transform: Transform | None = None):
        if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
            raise ValueError(f"downscale (the photographs' shrink factor) must be a whole number >= 1, got "
                             f"{downscale!r}")
        self.photo_paths = photo_files()  # before the cache: its key hashes them
        params = dict(canvas=canvas, contrast=float(contrast), downscale=downscale, seed=seed, size=size,
                      mask_threshold=mask_threshold)
        super().__init__(root, split, params, cache=cache, cache_dir=cache_dir, transform=transform)
        self.layout = PhotoLayout(*(self.tensors[k] for k in _LAYOUT))

    def sources(self) -> list[Path]:
        return list(self.photo_paths)

    def key_extras(self) -> dict:
        return {"pillow": _pillow().__version__}

    def photos(self) -> list[Tensor]:
        """This split's region of every photograph, grayscale uint8 (H, W) each, in :data:`PHOTOGRAPHS` order."""
        p = self.params
        regions = []
        for path in self.photo_paths:  # one read per photograph
            region = photo_region(load_photo(path, p["downscale"]), self.split, p["canvas"])
            if min(region.shape) < p["canvas"]:
                raise ValueError(f"the {self.split} region of {path.name} is {tuple(region.shape)} after downscale "
                                 f"{p['downscale']}, smaller than the canvas {p['canvas']}: use a smaller canvas or "
                                 f"downscale")
            regions.append(region.contiguous())
        return regions

    def build(self, generator: torch.Generator) -> dict[str, Tensor]:
        src, labels = load_fashion_mnist(self.root, self.split)
        p = self.params
        n = src.shape[0] if p["size"] is None else p["size"]
        images, lab, boxes, packed, layout = _generate(src, labels, self.photos(), n, p["canvas"], p["contrast"],
                                                       p["mask_threshold"], generator, pack=True)
        return dict(images=images, labels=lab, boxes=boxes, masks_packed=packed, **asdict(layout))

    def extra_shapes(self, n: int) -> dict[str, tuple[int, ...]]:
        return dict(source_index=(n,), origin=(n, 2), photo_index=(n,), photo_crop=(n, 2))

    def get_clutter_masks(self, index: Tensor | list[int] | slice | int) -> Tensor:
        """Clutter masks bool (B, C, C) at ``index``: the photograph's pixels, every pixel outside the object."""
        if self._clutter is not None:
            return self._clutter[index]
        if self._masks is not None:
            return ~self._masks[index]
        return ~unpack_masks(self.tensors["masks_packed"][index], self.params["canvas"])
