"""The training set kept on the device (DeviceBatches) against the host pipeline, and the pipeline's choice."""

import pytest
import torch

from attnlab.data import Compose, Normalize, RandomCrop, RandomHorizontalFlip, default_transforms
from attnlab.train import TensorSet, iterate_batches
from attnlab.train.batches import HostBatches, augmentation_seed
from attnlab.train.device_data import DeviceBatches, runs_on_device
from attnlab.train.pipeline import batch_source, keeps_data_on_device

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _set(n: int = 37, size: int = 8) -> TensorSet:
    g = torch.Generator().manual_seed(1)
    return TensorSet(torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8), torch.arange(n) % 10)


def _augment(size: int = 8) -> Compose:
    return Compose([RandomCrop(size, padding=2), RandomHorizontalFlip(), Normalize(0.3, 0.2)])


@pytest.mark.parametrize(("rank", "world"), [(0, 1), (0, 3), (1, 3), (2, 3)])
@pytest.mark.parametrize("transform", [None, _augment()], ids=["plain", "augmented"])
def test_device_batches_on_the_cpu_are_the_host_batches_bit_for_bit(rank, world, transform):
    ts = _set()
    for epoch in (0, 1):
        gen = torch.Generator().manual_seed(augmentation_seed(3, epoch, rank))
        host = list(iterate_batches(ts, 5, epoch=epoch, seed=3, rank=rank, world=world, transform=transform,
                                    generator=gen))
        device = list(DeviceBatches(ts, transform, "cpu").epoch(5, epoch=epoch, seed=3, rank=rank, world=world))
        per_rank = -(-37 // world)  # ceil: the set padded by wrapping
        assert len(device) == len(host) == -(-per_rank // 5)
        for (xd, yd), (xh, yh) in zip(device, host, strict=True):
            assert torch.equal(yd, yh) and torch.equal(xd, xh)


def test_host_batches_replay_iterate_batches_with_the_epoch_seed():
    ts, t = _set(), _augment()
    gen = torch.Generator().manual_seed(augmentation_seed(0, 2, 0))
    want = list(iterate_batches(ts, 8, epoch=2, seed=0, transform=t, generator=gen))
    got = list(HostBatches(ts, t, "cpu").epoch(8, epoch=2, seed=0))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, want, strict=True))


def test_the_ranks_partition_the_set_as_today():
    ts = TensorSet(_set(n=23).images, torch.arange(23))  # label = index
    dealt = [torch.cat([y for _, y in DeviceBatches(ts, None, "cpu").epoch(4, epoch=1, seed=5, rank=r, world=4)])
             for r in range(4)]
    assert [len(d) for d in dealt] == [6, 6, 6, 6]  # 23 padded by wrapping to 24
    assert sorted(set(torch.cat(dealt).tolist())) == list(range(23))  # every sample, one of them twice
    host = [torch.cat([y for _, y in iterate_batches(ts, 4, epoch=1, seed=5, rank=r, world=4)]) for r in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(dealt, host, strict=True))


def test_an_epoch_replays_exactly_and_another_epoch_differs():
    batches = DeviceBatches(_set(), _augment(), "cpu")
    first = [x for x, _ in batches.epoch(6, epoch=0, seed=0)]
    again = [x for x, _ in batches.epoch(6, epoch=0, seed=0)]
    other = [x for x, _ in batches.epoch(6, epoch=1, seed=0)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(torch.cat(first), torch.cat(other))


def _positions(n: int = 800, size: int = 8) -> TensorSet:
    """Images whose pixel (r, c) holds 1 + 8 r + c: a crop's offset and a flip can be read off the batch."""
    grid = (1 + torch.arange(size)[:, None] * size + torch.arange(size)).to(torch.uint8)  # (8, 8)
    return TensorSet(grid.expand(n, 1, size, size).clone(), torch.zeros(n, dtype=torch.int64))


def _augmentation_statistics(device: str) -> None:
    ts = _positions()
    crops = torch.cat([x for x, _ in DeviceBatches(ts, Compose([RandomCrop(8, padding=2)]), device).epoch(
        100, epoch=0, seed=0)])  # (800, 1, 8, 8) in [0, 1]
    corner = (crops[:, 0, 2, 2] * 255).round().long() - 1  # pixel (oy, ox) of the image: 8 oy + ox
    oy, ox = corner // 8, corner % 8
    assert oy.min() == 0 and oy.max() == 4 and ox.min() == 0 and ox.max() == 4  # offsets within the padding
    assert len(set((oy * 5 + ox).tolist())) == 25  # every offset drawn
    assert (crops == 0).any(), "some crops reach into the zero padding"
    flips = torch.cat([x for x, _ in DeviceBatches(ts, Compose([RandomHorizontalFlip()]), device).epoch(
        100, epoch=0, seed=0)])
    flipped = flips[:, 0, 0, 0] > flips[:, 0, 0, -1]
    assert 0.43 < flipped.float().mean() < 0.57  # about half (n = 800: 4 standard deviations either side)
    assert torch.equal(flips[flipped], ts.images[:1].float().div(255).flip(-1).expand(int(flipped.sum()), -1, -1,
                                                                                        -1).to(flips.device))


def test_device_augmentation_statistics_are_sane():
    _augmentation_statistics("cpu")


@pytest.mark.gpu
@CUDA
def test_device_augmentation_statistics_are_sane_on_cuda():
    _augmentation_statistics("cuda")


@pytest.mark.gpu
@CUDA
def test_cuda_batches_live_on_the_gpu_as_uint8_and_replay_per_epoch():
    ts = _set(n=300, size=28)
    batches = DeviceBatches(ts, default_transforms("fashion-mnist", train=True), "cuda", channels_last=True)
    assert batches.images.is_cuda and batches.images.dtype == torch.uint8
    first = [(x, y) for x, y in batches.epoch(64, epoch=3, seed=1, rank=1, world=2)]
    again = [(x, y) for x, y in batches.epoch(64, epoch=3, seed=1, rank=1, world=2)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    x, y = first[0]
    assert x.is_cuda and y.is_cuda and x.shape == (64, 1, 28, 28) and x.is_contiguous(memory_format=torch.channels_last)
    host = torch.cat([y for _, y in iterate_batches(ts, 64, epoch=3, seed=1, rank=1, world=2)])
    assert torch.equal(torch.cat([y for _, y in first]).cpu(), host)  # same samples, same order


def test_channels_last_batches():
    x, _ = next(iter(DeviceBatches(_set(), None, "cpu", channels_last=True).epoch(4, epoch=0, seed=0)))
    assert x.is_contiguous(memory_format=torch.channels_last) and x.dtype == torch.float32


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        DeviceBatches(_set(), None, "cpu").epoch(0, epoch=0, seed=0)


def test_attnlab_transforms_run_on_the_device_others_are_left_to_the_host():
    assert runs_on_device(None) and runs_on_device(default_transforms("cifar10", train=True))
    assert runs_on_device(Normalize(0.5, 0.5)) and runs_on_device(Compose([Compose([RandomHorizontalFlip()])]))
    assert not runs_on_device(lambda x, g: x) and not runs_on_device(Compose([RandomCrop(4), abs]))


def test_auto_keeps_the_data_on_the_host_on_a_cpu_and_on_or_off_force_it():
    ts, cpu = _set(), torch.device("cpu")
    assert not keeps_data_on_device("auto", cpu, ts, None)
    assert keeps_data_on_device("on", cpu, ts, lambda x, g: x) and not keeps_data_on_device("off", cpu, ts, None)
    assert batch_source("auto", ts, None, cpu).where == "host" and batch_source("on", ts, None, cpu).where == "device"
    with pytest.raises(ValueError, match="data_on_device must be one of auto, on, off; got 'yes'"):
        keeps_data_on_device("yes", cpu, ts, None)


@pytest.mark.gpu
@CUDA
def test_auto_keeps_the_data_on_a_gpu_when_it_fits_and_the_transform_is_attnlabs():
    ts, gpu = _set(), torch.device("cuda")
    assert keeps_data_on_device("auto", gpu, ts, _augment())
    assert not keeps_data_on_device("auto", gpu, ts, lambda x, g: x)


def test_a_transforms_own_tensors_are_copied_to_the_device_once_and_the_original_is_kept():
    from attnlab.train.device_data import transform_on

    original = _augment()
    moved = transform_on(original, torch.device("meta"))  # a device every machine has
    assert isinstance(moved, Compose) and moved is not original
    assert moved.transforms[2].mean.device.type == "meta" and original.transforms[2].mean.device.type == "cpu"
    assert moved.transforms[0].padding == original.transforms[0].padding
    own = lambda x, g: x  # noqa: E731
    assert transform_on(own, torch.device("meta")) is own and transform_on(None, torch.device("meta")) is None
