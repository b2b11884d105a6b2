"""Tensor transforms that take one image (C, H, W) or a batch (N, C, H, W), with per-sample randomness.

Every random draw comes from the ``generator`` passed to the call (default: torch's global one), so a
batch transformed with a seeded generator is reproducible. Random crops and flips are vectorised: one
call per batch, with a different offset or coin for each sample.

Which augmentation suits which data (:func:`default_transforms`):

* Fashion-MNIST: random crop 28 with 2-pixel zero padding, horizontal flip (clothes are left-right
  symmetric as classes: a mirrored shoe is still a shoe; unlike digits, where a flip changes meaning).
* CIFAR-10/100: random crop 32 with 4-pixel padding, horizontal flip (the standard recipe).
* Cluttered Fashion-MNIST: no geometric augmentation. The object's position is already random, and a
  crop or flip would leave the sample's box and mask stale (they are the ground truth the localisation
  metrics score against); only normalisation.
* Photo-cluttered Fashion-MNIST: the same, for the same reason, with its own statistics (the photographs
  make its canvases brighter and less contrasted).
* An image folder: horizontal flip only (sizes are unknown, so no crop; no known statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..names import lookup

__all__ = ["BatchTransform", "Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip", "default_transforms",
           "list_transform_presets"]


class BatchTransform:
    """Base of the transforms here: ``t(x, generator=None)`` on (C, H, W) or (N, C, H, W)."""

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dim() == 3:
            return self.apply(x.unsqueeze(0), generator).squeeze(0)
        if x.dim() != 4:
            raise ValueError(f"{type(self).__name__} expects (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
        return self.apply(x, generator)

    def apply(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Transform a batch (N, C, H, W)."""
        raise NotImplementedError


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class RandomCrop(BatchTransform):
    """Pad, then crop ``size`` at a uniformly random offset, independently for each sample.

    Args:
        size: output (H, W), or one int for a square.
        padding: int (all sides), (horizontal, vertical), or (left, top, right, bottom).
        fill: the value of constant padding.
        padding_mode: ``"constant"``, ``"reflect"`` or ``"replicate"`` (the last two need a float input).
    """

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] = 0, fill: float = 0.0,
                 padding_mode: str = "constant"):
        self.size = _pair(size)
        p = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
        if len(p) == 2:
            p = (p[0], p[1], p[0], p[1])
        if len(p) != 4 or min(p) < 0:
            raise ValueError(f"padding must be an int, 2 or 4 non-negative ints, got {padding!r}")
        self.padding = tuple(int(v) for v in p)  # (left, top, right, bottom)
        if padding_mode not in ("constant", "reflect", "replicate"):
            raise ValueError(f"padding_mode must be constant, reflect or replicate, got {padding_mode!r}")
        self.fill, self.padding_mode = fill, padding_mode

    def apply(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        left, top, right, bottom = self.padding
        if any(self.padding):
            pad = (left, right, top, bottom)
            x = (F.pad(x, pad, value=self.fill) if self.padding_mode == "constant"
                 else F.pad(x, pad, mode=self.padding_mode))
        n, c, hp, wp = x.shape
        h, w = self.size
        if h > hp or w > wp:
            raise ValueError(f"crop {h}x{w} is larger than the padded image {hp}x{wp}")
        oy = torch.randint(0, hp - h + 1, (n,), generator=generator)
        ox = torch.randint(0, wp - w + 1, (n,), generator=generator)
        rows = (oy[:, None] + torch.arange(h))[:, None, :, None].expand(n, c, h, wp)  # (N, C, h, Wp)
        x = x.gather(2, rows)
        cols = (ox[:, None] + torch.arange(w))[:, None, None, :].expand(n, c, h, w)  # (N, C, h, w)
        return x.gather(3, cols)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, padding_mode={self.padding_mode!r})"


class RandomHorizontalFlip(BatchTransform):
    """Mirror each sample left-right with probability ``p`` (p=0: never, p=1: always)."""

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p

    def apply(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        flip = torch.rand(x.shape[0], generator=generator) < self.p  # (N,); rand is in [0, 1)
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize(BatchTransform):
    """``(x - mean) / std`` per channel (one value each, or one per channel)."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]):
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if (self.std <= 0).any():
            raise ValueError(f"std must be positive, got {std!r}")

    def apply(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        c = x.shape[1]
        if self.mean.numel() not in (1, c) or self.std.numel() not in (1, c):
            raise ValueError(f"Normalize has {self.mean.numel()} means / {self.std.numel()} stds for {c} channels")
        shape = (1, -1, 1, 1)
        return (x - self.mean.to(x).view(shape)) / self.std.to(x).view(shape)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Compose(BatchTransform):
    """Apply transforms in order; the generator is passed to those that are :class:`BatchTransform`."""

    def __init__(self, transforms: Sequence[Callable[[Tensor], Tensor]]):
        self.transforms = list(transforms)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for t in self.transforms:
            x = t(x, generator) if isinstance(t, BatchTransform) else t(x)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


# Statistics of the official train splits, as float images in [0, 1].
FASHION_MNIST_STATS = ((0.2860,), (0.3530,))
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
#: the default Cluttered Fashion-MNIST (64x64 canvas, 4 fragments of 9x9, seed 0), train split
CLUTTERED_STATS = ((0.0855,), (0.2338,))
#: the default Photo-cluttered Fashion-MNIST (64x64 canvas, contrast 0.5, downscale 2, seed 0), train split
PHOTO_CLUTTERED_STATS = ((0.2584,), (0.1653,))


def _augmented(crop: int, pad: int, stats: tuple) -> Callable[[bool], Compose]:
    def build(train: bool) -> Compose:
        aug = [RandomCrop(crop, padding=pad), RandomHorizontalFlip(0.5)] if train else []
        return Compose([*aug, Normalize(*stats)])

    return build


_PRESETS: dict[str, Callable[[bool], Compose]] = {
    "fashion-mnist": _augmented(28, 2, FASHION_MNIST_STATS),
    "cifar10": _augmented(32, 4, CIFAR10_STATS),
    "cifar100": _augmented(32, 4, CIFAR100_STATS),
    "cluttered-fashion-mnist": lambda train: Compose([Normalize(*CLUTTERED_STATS)]),
    "photo-cluttered-fashion-mnist": lambda train: Compose([Normalize(*PHOTO_CLUTTERED_STATS)]),
    "image-folder": lambda train: Compose([RandomHorizontalFlip(0.5)] if train else []),
}


def list_transform_presets() -> list[str]:
    """Dataset names with a :func:`default_transforms` preset."""
    return sorted(_PRESETS)


def default_transforms(dataset: str, train: bool) -> Compose:
    """The suitable pipeline for ``dataset`` (see the module docstring): augmentation when ``train``, then
    normalisation with the dataset's statistics.

    Raises:
        ValueError: an unknown dataset name; the message lists the known ones.

    Example:
        >>> t = default_transforms("cifar10", train=True)  # crop 32 pad 4, flip, normalise
        >>> t(torch.rand(8, 3, 32, 32), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([8, 3, 32, 32])
    """
    return lookup(_PRESETS, dataset, "transform preset")(train)
