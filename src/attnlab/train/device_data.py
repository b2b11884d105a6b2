"""The training set kept on the device: batches gathered, augmented and normalised where the model runs.

On a GPU the host pipeline (:class:`~attnlab.train.batches.HostBatches`) gathers, augments and converts every
batch on the CPU and copies it over, step after step; here the set is copied once, as it is stored (uint8 for
image data), and each batch is an index on the device. The augmentation is the transform the host pipeline
would run (``attnlab.data.default_transforms``: random crop with padding, horizontal flip, normalisation),
called on the device batch inside ``with torch.device(device)``, so its random offsets, coins and index tensors
are drawn there, from a generator on the device seeded by :func:`~attnlab.train.batches.augmentation_seed` at
the start of every epoch (a resumed run replays it exactly).

On the CPU the two pipelines draw the same numbers from the same kind of generator and give the same batches,
bit for bit; on a GPU the device's generator draws other numbers than the CPU's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from ..data import BatchTransform, Compose, Normalize, RandomCrop, RandomHorizontalFlip
from .batches import TensorSet, augmentation_seed, to_float
from .distributed import shard_permutation

__all__ = ["DEVICE_TRANSFORMS", "DeviceBatches", "runs_on_device", "transform_on"]

#: The transforms known to draw every random number and index tensor through torch's factory functions with the
#: generator they are given, so that ``with torch.device(...)`` puts them on the device.
DEVICE_TRANSFORMS: tuple[type, ...] = (RandomCrop, RandomHorizontalFlip, Normalize)


def runs_on_device(transform: Callable | None) -> bool:
    """Whether ``transform`` is made only of :data:`DEVICE_TRANSFORMS` (a :class:`Compose` of them, one of them, or
    None), so that the device pipeline runs it as the host pipeline would. A transform of one's own may still
    work there (``data_on_device="on"`` calls it with the batch and a generator on the device)."""
    if transform is None or isinstance(transform, DEVICE_TRANSFORMS):
        return True
    return isinstance(transform, Compose) and all(runs_on_device(t) for t in transform.transforms)


def transform_on(transform: Callable | None, device: torch.device) -> Callable | None:
    """``transform`` with its own tensors (``Normalize``'s mean and std) copied to ``device`` once: a copy of a
    host tensor to a GPU waits for every step queued before it, so no batch may make one. attnlab's transforms
    (and a :class:`Compose` of them) are copied, the original left as it was; any other callable is returned as
    it is."""
    if isinstance(transform, Compose):
        return Compose([transform_on(t, device) for t in transform.transforms])
    if not isinstance(transform, BatchTransform):
        return transform
    moved = copy.copy(transform)
    for name, value in vars(transform).items():
        if isinstance(value, Tensor):
            setattr(moved, name, value.to(device))
    return moved


class DeviceBatches:
    """The training set on ``device``, dealt as :class:`~attnlab.train.batches.HostBatches` deals it.

    Args:
        ts: the training set (images (N, C, H, W) uint8 or float, labels (N,)); copied to ``device`` once, as
            stored.
        transform: augmentation and normalisation of a float batch in [0, 1], called as ``transform(x,
            generator)`` with ``x`` (B, C, H, W) and the generator on the device (None: none).
        device: where the set lives and the batches are made.
        channels_last: hand the batches over in channels_last memory format.
    """

    where = "device"

    def __init__(self, ts: TensorSet, transform: Callable[[Tensor, torch.Generator], Tensor] | None,
                 device: torch.device | str, channels_last: bool = False) -> None:
        self.device = torch.device(device)
        self.images = ts.images.to(self.device)  # (N, C, H, W), its stored dtype
        self.labels = ts.labels.to(self.device)  # (N,) int64
        self.transform, self.channels_last = transform_on(transform, self.device), channels_last
        self.generator = torch.Generator(device=self.device)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def epoch(self, batch_size: int, *, epoch: int, seed: int, rank: int = 0,
              world: int = 1) -> Iterator[tuple[Tensor, Tensor]]:
        """This rank's batches of ``epoch``: the samples and order of
        :func:`~attnlab.train.batches.iterate_batches` for (seed, epoch, rank, world), x (B, C, H, W) float32 and
        y (B,) int64, both on the device; nothing waits for the device.

        Raises:
            ValueError: ``batch_size`` < 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = shard_permutation(len(self), epoch, seed, rank, world).to(self.device)  # (M,), one copy per epoch
        self.generator.manual_seed(augmentation_seed(seed, epoch, rank))
        return self._batches(order, batch_size)

    def _batches(self, order: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        for start in range(0, len(order), batch_size):
            b = order[start:start + batch_size]  # (B,) on the device
            x = to_float(self.images.index_select(0, b))  # (B, C, H, W) float32 in [0, 1]
            if self.transform is not None:
                with torch.device(self.device):  # the transform's random draws and index tensors on the device
                    x = self.transform(x, self.generator)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels.index_select(0, b)
