"""A folder of images, one subfolder per class (``ROOT/<class>/<image>``), as torchvision's ImageFolder.

Decoded without any optional dependency: ``.npy`` arrays (H x W or H x W x C with C in {1, 3}; uint8
0..255, bool, or float 0..1) and binary PGM/PPM (``P5``/``P6``, maxval up to 65535, rescaled to 0..255).
With Pillow installed, ``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``, ``.tif``, ``.tiff`` and ``.webp``
too (a folder holding those without Pillow is an error that says so, rather than a silently smaller dataset).

Classes are the sorted subfolder names; files are sorted within each class; hidden files and files of
other extensions are ignored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .base import Transform
from .errors import DataError, DataFileNotFoundError

__all__ = ["ImageFolder", "convert_channels", "decode_image", "read_npy", "read_pnm"]

NATIVE_EXTENSIONS = (".npy", ".pgm", ".ppm", ".pnm")
PIL_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_PNM_HEADER = re.compile(rb"(P[56])(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)\s")


def _pil_available() -> bool:
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


def read_pnm(path: str | os.PathLike) -> Tensor:
    """A binary PGM (``P5``) or PPM (``P6``) file -> uint8 (C, H, W), C = 1 or 3.

    Raises:
        DataError: not a binary PGM/PPM, a maxval out of 1..65535, or pixel data cut short.
    """
    path = Path(path)
    data = path.read_bytes()
    m = _PNM_HEADER.match(data)
    if m is None:
        raise DataError(f"{path}: not a binary PGM/PPM file (P5/P6 header expected)")
    kind, w, h, maxval = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
    if not 1 <= maxval <= 65535:
        raise DataError(f"{path}: maxval {maxval} out of 1..65535")
    c = 1 if kind == b"P5" else 3
    dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
    need = w * h * c * dtype.itemsize
    raster = data[m.end():m.end() + need]
    if len(raster) < need:
        raise DataError(f"{path}: pixel data cut short ({len(raster)} of {need} bytes)")
    a = np.frombuffer(raster, dtype=dtype).reshape(h, w, c).astype(np.float64 if maxval != 255 else np.uint8)
    if maxval != 255:
        a = np.rint(np.minimum(a, maxval) * (255.0 / maxval)).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))  # (H, W, C) -> (C, H, W)


def read_npy(path: str | os.PathLike) -> Tensor:
    """A ``.npy`` image (H, W) or (H, W, C), C in {1, 3}; uint8, bool or float in [0, 1] -> uint8 (C, H, W).

    Raises:
        DataError: another shape or dtype, float values outside [0, 1], or not a readable ``.npy`` (pickled
            object arrays are refused).
    """
    path = Path(path)
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy array ({e})") from None
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise DataError(f"{path}: expected an (H, W) or (H, W, C) image with C in (1, 3), found shape {a.shape}")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all() or a.min(initial=0) < 0 or a.max(initial=0) > 1:
            raise DataError(f"{path}: float images must hold values in [0, 1]")
        a = np.rint(a * 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise DataError(f"{path}: expected uint8, bool or float pixels, found {a.dtype}")
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))  # (H, W, C) -> (C, H, W)


def _read_pil(path: Path) -> Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB")
            a = np.array(im, dtype=np.uint8)  # a writable copy
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{path}: cannot decode the image ({e})") from None
    a = a[:, :, None] if a.ndim == 2 else a
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def decode_image(path: str | os.PathLike) -> Tensor:
    """Decode one image file -> uint8 (C, H, W), by extension (see the module docstring).

    Raises:
        DataFileNotFoundError: the file is missing. DataError: it cannot be decoded, or it needs Pillow.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"missing {path}")
    ext = path.suffix.lower()
    if ext == ".npy":
        return read_npy(path)
    if ext in (".pgm", ".ppm", ".pnm"):
        return read_pnm(path)
    if ext in PIL_EXTENSIONS:
        if not _pil_available():
            raise DataError(f"{path}: decoding {ext} files needs Pillow (pip install Pillow); without it, use "
                            f".npy or binary .pgm/.ppm files")
        return _read_pil(path)
    raise DataError(f"{path}: unsupported image type {ext!r}")


def convert_channels(x: Tensor, channels: int) -> Tensor:
    """An image with ``channels`` channels: (C, H, W) uint8 -> (channels, H, W) uint8, grey repeated to RGB, RGB
    reduced to grey by ITU-R 601 luma (an image that has them already is returned as it is).

    Raises:
        ValueError: any other conversion (e.g. RGBA to RGB, or to 2 channels): only grey <-> RGB is made.
    """
    if x.shape[0] == channels:
        return x
    if (x.shape[0], channels) not in ((1, 3), (3, 1)):
        raise ValueError(f"cannot convert a {x.shape[0]}-channel image to {channels} channels: only grey (1) and RGB "
                         "(3) convert into each other")
    if channels == 3:
        return x.expand(3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (x.float() * weights).sum(0, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)


class ImageFolder(Dataset):
    """Labelled images from ``root/<class>/<file>``; images are decoded on access.

    Args:
        root: the folder of class subfolders.
        transform: applied to the float image (see :func:`attnlab.data.default_transforms`).
        channels: 1 or 3 to convert every image to that many channels; ``None``: as many as the first image has
            (and every other image is converted to match).

    Items are ``(image float32 (C, H, W) in [0, 1] (then ``transform``), label int)``. ``image_size`` is that of
    the first image (images of other sizes need a transform before batching).

    Raises:
        DataFileNotFoundError: ``root`` is missing, or holds no class folder.
        DataError: a class folder holds no image; Pillow-only files without Pillow. Undecodable files raise
            ``DataError`` naming the file when accessed.
    """

    def __init__(self, root: str | os.PathLike, transform: Transform | None = None, channels: int | None = None):
        self.root = Path(root).expanduser()
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
        if not self.root.is_dir():
            raise DataFileNotFoundError(f"missing image folder {self.root}: expected {self.root}/<class>/<image>")
        class_dirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise DataFileNotFoundError(f"{self.root} holds no class subfolder: expected {self.root}/<class>/<image>")
        known = NATIVE_EXTENSIONS + PIL_EXTENSIONS
        pil = _pil_available()
        self.classes = [p.name for p in class_dirs]
        self.samples: list[tuple[Path, int]] = []
        for label, d in enumerate(class_dirs):
            files = sorted(p for p in d.iterdir()
                           if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in known)
            if not pil and any(p.suffix.lower() in PIL_EXTENSIONS for p in files):
                first = next(p for p in files if p.suffix.lower() in PIL_EXTENSIONS)
                raise DataError(f"{first}: decoding {first.suffix} files needs Pillow (pip install Pillow); without "
                                f"it, use .npy or binary .pgm/.ppm files")
            if not files:
                raise DataError(f"class folder {d} holds no image (extensions read: {', '.join(known)})")
            self.samples += [(p, label) for p in files]
        self.transform = transform
        first = decode_image(self.samples[0][0])
        self._channels = channels or int(first.shape[0])
        self._size = (int(first.shape[1]), int(first.shape[2]))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return self._channels

    @property
    def image_size(self) -> tuple[int, int]:
        return self._size

    @property
    def targets(self) -> list[int]:
        """The label of every sample, in order."""
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label = self.samples[i]
        x = convert_channels(decode_image(path), self._channels).float().div_(255)  # (C, H, W)
        if self.transform is not None:
            x = self.transform(x)
        return x, label

    def __repr__(self) -> str:
        return f"ImageFolder({self.root}, n={len(self)}, classes={self.num_classes}, in_chans={self.in_chans})"
