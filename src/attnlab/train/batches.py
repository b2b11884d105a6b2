"""In-memory batching: the datasets attnlab trains on fit in memory, so batches are gathered by
tensor indexing (no per-item Python), sharded per rank, and augmented batch-wise.

Two pipelines feed the training loop, both behind :class:`BatchSource`: :class:`HostBatches` here (gather and
augment on the host, copy each batch to the device) and ``DeviceBatches`` (:mod:`attnlab.train.device_data`: the
set kept on the device). Both deal the same samples in the same order for each (seed, epoch, rank, world).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from .distributed import shard_permutation

__all__ = ["BatchSource", "HostBatches", "TensorSet", "as_tensor_set", "augmentation_seed", "iterate_batches",
           "to_float"]

BatchTransform = Callable[[Tensor, torch.Generator], Tensor]  # (B, C, H, W) float -> same


@dataclass
class TensorSet:
    """A dataset as tensors.

    Attributes:
        images: (N, C, H, W) uint8, or float in [0, 1].
        labels: (N,) int64.
        boxes: the objects' boxes, int64 (N, 4) = (x0, y0, x1, y1) with exclusive ends, for data that has them
            (see ``attnlab.data.list_datasets(with_boxes=True)``); else None.
        masks: the objects' masks, bool (N, H, W), where the data has them; else None.
        clutter_masks: the pixels covered by clutter, bool (N, H, W), never object pixels
            (``clutter_masks & masks`` is all False), where the data has them; else None.
    """

    images: Tensor
    labels: Tensor
    boxes: Tensor | None = None
    masks: Tensor | None = None
    clutter_masks: Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int | None) -> TensorSet:
        """The first ``n`` samples, boxes and masks alike (all of them when ``n`` is None or 0)."""
        if not n:
            return self
        return TensorSet(*(None if t is None else t[:n]
                           for t in (self.images, self.labels, self.boxes, self.masks, self.clutter_masks)))


def as_tensor_set(dataset, *, localisation: bool = False) -> TensorSet:
    """The dataset's ``images``/``labels`` tensors, or its items stacked when it has none.

    Args:
        dataset: any attnlab dataset.
        localisation: also take the dataset's ``boxes`` (N, 4), ``masks`` (N, H, W) and ``clutter_masks``
            (N, H, W) when it has them.

    Raises:
        ValueError: no items, images that are not (N, H, W) or (N, C, H, W), or boxes/masks of another shape.
    """
    images = getattr(dataset, "images", None)
    labels = getattr(dataset, "labels", None)
    if images is None or labels is None:
        items = [dataset[i] for i in range(len(dataset))]
        if not items:
            raise ValueError(f"{type(dataset).__name__} is empty: nothing to train or evaluate on")
        images = torch.stack([torch.as_tensor(it[0]) for it in items])
        labels = torch.as_tensor([int(it[1]) for it in items])
    images = torch.as_tensor(images)
    if images.dim() == 3:
        images = images[:, None]  # (N, H, W) -> (N, 1, H, W)
    if images.dim() != 4:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got {tuple(images.shape)}")
    ts = TensorSet(images, torch.as_tensor(labels, dtype=torch.int64))
    if localisation:
        ts.boxes, ts.masks, ts.clutter_masks = _localisation(dataset, images.shape)
    return ts


def _localisation(dataset, shape: torch.Size) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """The dataset's boxes (N, 4), masks and clutter masks (N, H, W), checked against the images' ``shape``
    (N, C, H, W)."""
    n, _, h, w = shape
    expected = {"boxes": (n, 4), "masks": (n, h, w), "clutter_masks": (n, h, w)}
    found = {name: getattr(dataset, name, None) for name in expected}
    for name, t in found.items():
        if t is not None and tuple(t.shape) != expected[name]:
            raise ValueError(f"{type(dataset).__name__}.{name} must be {expected[name]}, got {tuple(t.shape)}")
    return found["boxes"], found["masks"], found["clutter_masks"]


def to_float(images: Tensor) -> Tensor:
    """Images as float32 in [0, 1]: uint8 (..., H, W) divided by 255, floats as they are."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def iterate_batches(ts: TensorSet, batch_size: int, *, epoch: int, seed: int, rank: int = 0, world: int = 1,
                    shuffle: bool = True, drop_last: bool = False, transform: BatchTransform | None = None,
                    generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                    channels_last: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield transformed (x (B, C, H, W) float32, y (B,)) batches of this rank's shard for ``epoch``.

    ``transform`` (augmentation and normalisation, see ``attnlab.data.default_transforms``) runs on the
    float batch in [0, 1] with ``generator``.

    ``batch_size`` is per rank. The order depends only on (seed, epoch), so a resumed run sees the
    same batches as an uninterrupted one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    idx = shard_permutation(len(ts), epoch, seed, rank, world, shuffle)
    stop = len(idx) - len(idx) % batch_size if drop_last else len(idx)
    for i in range(0, stop, batch_size):
        b = idx[i:i + batch_size]
        x = to_float(ts.images[b])
        if transform is not None:
            x = transform(x, generator)
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, ts.labels[b].to(device, non_blocking=True)


def augmentation_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of the augmentation generator for ``epoch`` (from 0) on ``rank``: every epoch starts its
    generator afresh from it, so a resumed run replays the augmentation of an uninterrupted one exactly."""
    return (seed * 1_000_003 + epoch) * 4099 + rank


class BatchSource(Protocol):
    """Where the training loop takes its batches from: one epoch of this rank's shard at a time."""

    #: "host" or "device": where the batches are gathered and augmented (for the log line).
    where: str

    def epoch(self, batch_size: int, *, epoch: int, seed: int, rank: int = 0,
              world: int = 1) -> Iterator[tuple[Tensor, Tensor]]:
        """(x (B, C, H, W) float32 on the device, y (B,) int64 on the device) batches of ``epoch``."""
        ...


class HostBatches:
    """The training set on the host: each batch is gathered, augmented (with a CPU generator) and normalised by
    ``transform`` there, then copied to ``device``: :func:`iterate_batches` with the generator seeded by
    :func:`augmentation_seed` at the start of every epoch.

    Args:
        ts: the training set (images (N, C, H, W) uint8 or float, labels (N,)).
        transform: augmentation and normalisation on a float batch in [0, 1] (None: none).
        device: where the batches go.
        channels_last: hand the batches over in channels_last memory format.
    """

    where = "host"

    def __init__(self, ts: TensorSet, transform: BatchTransform | None, device: torch.device | str,
                 channels_last: bool = False) -> None:
        self.ts, self.transform, self.device, self.channels_last = ts, transform, torch.device(device), channels_last
        self.generator = torch.Generator()

    def epoch(self, batch_size: int, *, epoch: int, seed: int, rank: int = 0,
              world: int = 1) -> Iterator[tuple[Tensor, Tensor]]:
        """This rank's batches of ``epoch``, as :func:`iterate_batches` deals them."""
        self.generator.manual_seed(augmentation_seed(seed, epoch, rank))
        return iterate_batches(self.ts, batch_size, epoch=epoch, seed=seed, rank=rank, world=world,
                               transform=self.transform, generator=self.generator, device=self.device,
                               channels_last=self.channels_last)
