"""Which pipeline feeds the training loop: the ``data_on_device`` setting resolved for a device and a data set."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .batches import BatchSource, HostBatches, TensorSet
from .device_data import DeviceBatches, runs_on_device

__all__ = ["DATA_ON_DEVICE", "DEVICE_MEMORY_SHARE", "batch_source", "keeps_data_on_device"]

#: The values of ``TrainConfig.data_on_device``.
DATA_ON_DEVICE = ("auto", "on", "off")
#: ``auto`` keeps a training set on a GPU only when it takes at most this share of the memory free there.
DEVICE_MEMORY_SHARE = 0.25


def _fits(ts: TensorSet, device: torch.device) -> bool:
    """Whether ``ts`` takes at most :data:`DEVICE_MEMORY_SHARE` of the memory free on the CUDA ``device``."""
    free, _total = torch.cuda.mem_get_info(device)
    return ts.images.nbytes + ts.labels.nbytes <= DEVICE_MEMORY_SHARE * free


def keeps_data_on_device(setting: str, device: torch.device, ts: TensorSet, transform: Callable | None) -> bool:
    """Whether the training set lives on ``device``: ``on``: yes; ``off``: no; ``auto``: on a CUDA device, when
    the transform is made of attnlab's own (:func:`~attnlab.train.device_data.runs_on_device`) and the set fits
    (:data:`DEVICE_MEMORY_SHARE`), else no (the CPU, where the host pipeline is as fast).

    Raises:
        ValueError: ``setting`` is not one of :data:`DATA_ON_DEVICE`.
    """
    if setting not in DATA_ON_DEVICE:
        raise ValueError(f"data_on_device must be one of {', '.join(DATA_ON_DEVICE)}; got {setting!r}")
    if setting != "auto":
        return setting == "on"
    return device.type == "cuda" and runs_on_device(transform) and _fits(ts, device)


def batch_source(setting: str, ts: TensorSet, transform: Callable | None, device: torch.device | str,
                 channels_last: bool = False) -> BatchSource:
    """The pipeline ``setting`` (``TrainConfig.data_on_device``) picks for the training set ``ts`` on ``device``:
    :class:`~attnlab.train.device_data.DeviceBatches` or :class:`~attnlab.train.batches.HostBatches`."""
    device = torch.device(device)
    kind = DeviceBatches if keeps_data_on_device(setting, device, ts, transform) else HostBatches
    return kind(ts, transform, device, channels_last)
