"""The base of the generated canvas datasets: one Fashion-MNIST item per canvas, with its box, object mask and
clutter mask, generated once and cached.

:class:`ClutteredFashionMNIST` (fragments of other items) and :class:`PhotoClutteredFashionMNIST` (crops of real
photographs) differ only in how a canvas's background is made; what they share lives here: the cache (file
named after a hash of every parameter and the source files' contents, written atomically, validated on
load), the packed masks, and the access methods (``boxes``, ``masks``, ``clutter_masks``, ``get_batch``).

Masks are stored packed, 8 pixels a byte (``numpy.packbits`` along the flattened canvas), and unpacked on use.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import warnings
import zlib
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..fileio import atomic_open
from .base import TensorImageDataset, Transform, check_split, default_cache_dir
from .fashion_mnist import FASHION_MNIST_CLASSES, fashion_mnist_files, fashion_mnist_root

__all__ = ["CanvasDataset", "ClutteredSample", "pack_masks", "unpack_masks"]

_CACHE_FORMAT = 2  # 2: clutter masks beside the object masks
#: the tensors every cache entry holds; a subclass adds its layout's (``extra_shapes``)
_COMMON = ("images", "labels", "boxes", "masks_packed")


class ClutteredSample(NamedTuple):
    """One sample (or, from ``get_batch``, a batch with a leading N on every field)."""

    image: Tensor  #: float32 (1, C, C) in [0, 1] (then the dataset's transform)
    label: int | Tensor  #: class index (int64 (N,) for a batch)
    box: Tensor  #: int64 (4,) = (x0, y0, x1, y1), x1/y1 exclusive
    mask: Tensor  #: bool (C, C), the object's pixels


def pack_masks(masks: Tensor) -> Tensor:
    """Masks bool or uint8 (B, C*C) (any 0/1 values) -> packed uint8 (B, ceil(C*C / 8))."""
    return torch.from_numpy(np.packbits(masks.view(torch.uint8).numpy(), axis=1))


def unpack_masks(packed: Tensor, canvas: int) -> Tensor:
    """Packed masks uint8 (..., ceil(C*C/8)) -> bool (..., C, C)."""
    flat = packed.reshape(-1, packed.shape[-1])
    bits = np.unpackbits(flat.numpy(), axis=1, count=canvas * canvas)
    return torch.from_numpy(bits).view(torch.bool).view(*packed.shape[:-1], canvas, canvas)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def checksum(tensors: dict[str, Tensor]) -> int:
    """CRC-32 of the tensors' bytes, in name order (detects bit rot; the cache key handles staleness)."""
    crc = 0
    for name in sorted(tensors):
        crc = zlib.crc32(tensors[name].contiguous().numpy().reshape(-1).view(np.uint8), crc)
    return crc


def check_size(size: object) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1):
        raise ValueError(f"size (canvases to generate) must be a whole number >= 1, or None for every item of the "
                         f"split once; got {size!r}")


class CanvasDataset(TensorImageDataset):
    """Generated canvases of one Fashion-MNIST split, each with a box, an object mask and a clutter mask, cached.

    A subclass sets :attr:`name` (the cache file's prefix and the seed's salt) and :attr:`generator_version`,
    and implements :meth:`build` (generate every tensor), :meth:`extra_shapes` (its layout tensors' shapes),
    :meth:`get_clutter_masks` and, when its canvases depend on files besides Fashion-MNIST's,
    :meth:`sources`.

    The cache file is named after a hash of ``params``, the generator version, the torch version and the
    SHA-256 of every source file; it is written atomically and re-validated on load (structure, shapes,
    ranges and a CRC-32 of the contents): a corrupt one is regenerated, with a warning.
    """

    name: ClassVar[str]
    generator_version: ClassVar[int]

    def __init__(self, root: str | os.PathLike | None, split: str, params: dict, *, cache: bool,
                 cache_dir: str | os.PathLike | None, transform: Transform | None):
        check_split(split)
        check_size(params.get("size"))
        self.root = fashion_mnist_root(root)
        self.split = split
        self.params = dict(split=split, **params)
        files = list(fashion_mnist_files(self.root, split))  # raises with the install hint when missing
        files += self.sources()
        self.cache_path: Path | None = None
        data = None
        if cache:
            key = self._key(files)
            folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            self.cache_path = folder / f"{self.name}-{split}-{key[:20]}.pt"
            data = self._load(self.cache_path, key)
        self.cache_hit = data is not None
        if data is None:
            data = self.build(torch.Generator().manual_seed(self.seed()))
            if cache:
                self._save(self.cache_path, data, key)
        self.tensors: dict[str, Tensor] = {k: data[k] for k in self._tensor_names()}  #: the cached tensors, by name
        self._masks: Tensor | None = None
        self._clutter: Tensor | None = None
        super().__init__(data["images"], data["labels"], FASHION_MNIST_CLASSES, transform)
        self._boxes = data["boxes"]

    # -- what a subclass provides -------------------------------------------------------------------------
    def sources(self) -> list[Path]:
        """Files besides the Fashion-MNIST split whose contents the canvases depend on (keyed in the cache)."""
        return []

    def key_extras(self) -> dict:
        """Anything else the canvases depend on (e.g. a decoder's version), keyed in the cache."""
        return {}

    def build(self, generator: torch.Generator) -> dict[str, Tensor]:
        """Generate every cached tensor: ``images``, ``labels``, ``boxes``, ``masks_packed`` and the layout's."""
        raise NotImplementedError

    def extra_shapes(self, n: int) -> dict[str, tuple[int, ...]]:
        """The shapes of the tensors :meth:`build` adds to the common four, for ``n`` canvases."""
        raise NotImplementedError

    def get_clutter_masks(self, index: Tensor | list[int] | slice | int) -> Tensor:
        """Clutter masks bool (B, C, C) at ``index``: the pixels covered by clutter, never object pixels."""
        raise NotImplementedError

    # -- generation and cache ---------------------------------------------------------------------------
    def seed(self) -> int:
        """The generator's seed, from (name, split, seed): train and test layouts differ for one seed."""
        digest = hashlib.sha256(f"{self.name}:{self.split}:{self.params['seed']}".encode()).digest()
        return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)

    def _key(self, files: list[Path]) -> str:
        desc = dict(self.params, generator=self.generator_version, torch=torch.__version__.split("+")[0],
                    sources=[file_sha256(p) for p in files], **self.key_extras())
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()

    def _tensor_names(self) -> tuple[str, ...]:
        return _COMMON + tuple(self.extra_shapes(0))

    def _validate(self, data: object, key: str) -> str | None:
        """Why ``data`` is not a valid cache entry for ``key`` (None when it is)."""
        if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
            return "unknown format"
        if data.get("key") != key:
            return "key mismatch"
        names = self._tensor_names()
        if any(not isinstance(data.get(k), Tensor) for k in names):
            return "missing tensors"
        c, n = self.params["canvas"], data["images"].shape[0]
        shapes = dict(images=(n, 1, c, c), labels=(n,), boxes=(n, 4), masks_packed=(n, (c * c + 7) // 8),
                      **self.extra_shapes(n))
        if any(tuple(data[k].shape) != s for k, s in shapes.items()):
            return "shapes"
        if data["images"].dtype != torch.uint8 or data["masks_packed"].dtype != torch.uint8:
            return "dtypes"
        if self.params["size"] is not None and n != self.params["size"]:
            return "size"
        if n and (int(data["labels"].min()) < 0 or int(data["labels"].max()) >= len(FASHION_MNIST_CLASSES)
                  or int(data["boxes"].min()) < 0 or int(data["boxes"].max()) > c):
            return "values out of range"
        if data.get("crc32") != checksum({k: data[k] for k in names}):
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
        warnings.warn(f"cache file {path} is corrupt or stale ({reason[:200]}); regenerating it", stacklevel=4)
        return None

    def _save(self, path: Path, data: dict, key: str) -> None:
        payload = {k: data[k] for k in self._tensor_names()}
        payload.update(format=_CACHE_FORMAT, key=key, crc32=checksum(payload))
        try:
            with atomic_open(path) as f:
                torch.save(payload, f)
        except OSError as e:
            warnings.warn(f"could not write the cache file {path} ({e}); continuing without it", stacklevel=4)

    # -- access -----------------------------------------------------------------------------------------
    @property
    def boxes(self) -> Tensor:
        """All boxes, int64 (N, 4) = (x0, y0, x1, y1), x1/y1 exclusive."""
        return self._boxes

    @property
    def masks(self) -> Tensor:
        """All object masks, bool (N, C, C) (unpacked on first use: N * C * C bytes)."""
        if self._masks is None:
            self._masks = unpack_masks(self.tensors["masks_packed"], self.params["canvas"])
        return self._masks

    @property
    def clutter_masks(self) -> Tensor:
        """All clutter masks, bool (N, C, C): pixels covered by clutter, never object pixels (made on first use)."""
        if self._clutter is None:
            self._clutter = self.get_clutter_masks(slice(None))
        return self._clutter

    def get_masks(self, index: Tensor | list[int] | slice | int) -> Tensor:
        """Object masks bool (B, C, C) at ``index`` (unpacks only those rows)."""
        if self._masks is not None:
            return self._masks[index]
        return unpack_masks(self.tensors["masks_packed"][index], self.params["canvas"])

    def get_batch(self, index: Tensor | list[int] | slice) -> ClutteredSample:  # type: ignore[override]
        """A batched :class:`ClutteredSample`: images (B, 1, C, C) float, labels (B,), boxes (B, 4), masks (B, C, C)."""
        x, y = super().get_batch(index)
        return ClutteredSample(x, y, self._boxes[index], self.get_masks(index))

    def __getitem__(self, i: int) -> ClutteredSample:  # type: ignore[override]
        x, y = super().__getitem__(i)
        return ClutteredSample(x, y, self._boxes[i], self.get_masks(i))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, {', '.join(f'{k}={v}' for k, v in self.params.items())})"
