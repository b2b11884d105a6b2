"""What every attnlab dataset offers, and the in-memory base shared by the tensor-backed ones.

Every dataset exposes ``classes`` (names), ``num_classes``, ``in_chans`` and ``image_size`` (H, W), so a
model can be built from a dataset without special cases. Datasets held in memory (Fashion-MNIST,
Cluttered Fashion-MNIST, CIFAR) also give ``images``/``labels`` tensors and ``get_batch(index)``, so a
training loop can batch by indexing, without a Python call per item.

A dataset whose images carry one located object each (Cluttered Fashion-MNIST, Photo-cluttered
Fashion-MNIST) also gives ``boxes`` int64 (N, 4) = (x0, y0, x1, y1), exclusive ends, ``masks`` bool
(N, H, W) (the object's pixels) and ``clutter_masks`` bool (N, H, W) (the pixels covered by clutter, never
object pixels); on the others all three are None. Such a dataset is registered with ``boxes=True``
(``list_datasets(with_boxes=True)``): the study scores where models look against them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["TensorImageDataset", "Transform", "default_cache_dir"]

#: A transform takes a float image (C, H, W) or batch (N, C, H, W) and returns one of the same kind.
Transform = Callable[[Tensor], Tensor]


def default_cache_dir() -> Path:
    """Where generated data is cached: ``$ATTNLAB_CACHE/data``, else ``$XDG_CACHE_HOME/attnlab/data``,
    else ``~/.cache/attnlab/data``."""
    if os.environ.get("ATTNLAB_CACHE"):
        return Path(os.environ["ATTNLAB_CACHE"]).expanduser() / "data"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "attnlab" / "data"


def check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


class TensorImageDataset(Dataset):
    """A labelled image dataset held in memory as one uint8 tensor.

    Args:
        images: (N, C, H, W) uint8.
        labels: (N,) integer class indices in ``[0, len(classes))``.
        classes: class names, index = label.
        transform: applied to the float image in ``__getitem__`` and to the float batch in ``get_batch``.

    Items are ``(image, label)``: image float32 (C, H, W) in [0, 1] (before ``transform``), label an int.
    """

    def __init__(self, images: Tensor, labels: Tensor, classes: Sequence[str], transform: Transform | None = None):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        self._images = images
        self._labels = labels.to(torch.int64)
        self.classes = list(classes)
        self.transform = transform

    # -- the dataset protocol ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return int(self._images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self._images.shape[2]), int(self._images.shape[3])

    # -- fast tensor access -----------------------------------------------------------------------------
    @property
    def images(self) -> Tensor:
        """All images, uint8 (N, C, H, W) (shared storage: do not modify in place)."""
        return self._images

    @property
    def labels(self) -> Tensor:
        """All labels, int64 (N,)."""
        return self._labels

    @property
    def boxes(self) -> Tensor | None:
        """The objects' boxes int64 (N, 4) on a dataset that has them (see the module docstring); else None."""
        return None

    @property
    def masks(self) -> Tensor | None:
        """The objects' masks bool (N, H, W) on a dataset that has them; else None."""
        return None

    @property
    def clutter_masks(self) -> Tensor | None:
        """The clutter's pixels bool (N, H, W) (never the object's) on a dataset that has them; else None."""
        return None

    def get_batch(self, index: Tensor | Sequence[int] | slice) -> tuple[Tensor, Tensor]:
        """Images float32 (B, C, H, W) in [0, 1] (then ``transform``) and labels int64 (B,) at ``index``."""
        x = self._images[index].float().div_(255)
        if self.transform is not None:
            x = self.transform(x)
        return x, self._labels[index]

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = self._images[i].float().div_(255)  # (C, H, W)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self._labels[i])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={len(self)}, classes={self.num_classes}, in_chans={self.in_chans}, "
                f"image_size={self.image_size})")
