"""Batch transforms: exactness, per-sample randomness, determinism with a generator, presets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.data import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    default_transforms,
    list_transform_presets,
)


def _batch(n=6, c=2, h=7, w=5):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0))


def test_crop_matches_a_per_sample_reference():
    x = _batch()
    t = RandomCrop((7, 5), padding=2)
    out = t(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    g = torch.Generator().manual_seed(1)  # the same draws, in the order the transform makes them
    oy, ox = torch.randint(0, 5, (6,), generator=g), torch.randint(0, 5, (6,), generator=g)
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(6):
        assert torch.equal(out[i], padded[i, :, oy[i]:oy[i] + 7, ox[i]:ox[i] + 5])
    assert len({(a, b) for a, b in zip(oy.tolist(), ox.tolist(), strict=True)}) > 1  # offsets differ per sample


def test_crop_padding_forms_and_modes():
    x = _batch(n=1, h=4, w=4)
    full = RandomCrop(8, padding=2)(x)  # the whole padded image: the only offset
    assert full.shape == (1, 2, 8, 8) and torch.equal(full, F.pad(x, (2, 2, 2, 2)))
    asym = RandomCrop((5, 7), padding=(1, 0, 2, 1))(x)  # left, top, right, bottom
    assert torch.equal(asym, F.pad(x, (1, 2, 0, 1)))
    hv = RandomCrop((6, 4), padding=(0, 1))(x)
    assert torch.equal(hv, F.pad(x, (0, 0, 1, 1)))
    refl = RandomCrop(6, padding=1, padding_mode="reflect")(x)
    assert torch.equal(refl, F.pad(x, (1, 1, 1, 1), mode="reflect"))
    filled = RandomCrop(6, padding=1, fill=-1.0)(x)
    assert filled[0, 0, 0, 0] == -1
    same = RandomCrop(4)(x)  # no padding, same size: identity
    assert torch.equal(same, x)
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(9, padding=2)(x)
    with pytest.raises(ValueError, match="padding"):
        RandomCrop(4, padding=(1, 2, 3))
    with pytest.raises(ValueError, match="padding_mode"):
        RandomCrop(4, padding_mode="wrap")


def test_flip_probabilities_are_exact():
    x = _batch()
    assert torch.equal(RandomHorizontalFlip(0.0)(x), x)
    assert torch.equal(RandomHorizontalFlip(1.0)(x), x.flip(-1))
    x = _batch(n=32)
    half = RandomHorizontalFlip(0.5)(x, torch.Generator().manual_seed(3))
    flipped = [torch.equal(half[i], x[i].flip(-1)) for i in range(32)]
    assert all(f or torch.equal(half[i], x[i]) for i, f in enumerate(flipped)) and 8 < sum(flipped) < 24
    with pytest.raises(ValueError, match="p must be"):
        RandomHorizontalFlip(1.5)


def test_single_images_and_batched_determinism():
    x = _batch(n=32)
    t = Compose([RandomCrop((7, 5), padding=1), RandomHorizontalFlip()])
    a = t(x, torch.Generator().manual_seed(7))
    b = t(x, torch.Generator().manual_seed(7))
    c = t(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    one = t(x[0])  # (C, H, W) in, (C, H, W) out
    assert one.shape == x[0].shape
    torch.manual_seed(5)
    d = t(x)
    torch.manual_seed(5)
    assert torch.equal(d, t(x))  # the global generator by default
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(N, C, H, W\)"):
        t(x[0, 0])


def test_normalize_and_compose_with_plain_callables():
    x = _batch(c=3)
    n = Normalize((0.1, 0.2, 0.3), (0.5, 0.5, 2.0))
    assert torch.allclose(n(x)[:, 2], (x[:, 2] - 0.3) / 2.0)
    assert torch.allclose(Normalize(0.5, 0.25)(x), (x - 0.5) * 4)
    with pytest.raises(ValueError, match="3 means"):
        n(_batch(c=2))
    with pytest.raises(ValueError, match="positive"):
        Normalize(0, 0)
    assert torch.equal(Compose([lambda v: v * 2, n])(x), n(x * 2))


@pytest.mark.parametrize("name", list_transform_presets())
@pytest.mark.parametrize("train", [True, False])
def test_presets_keep_shape(name, train):
    c, s = {"cifar10": (3, 32), "cifar100": (3, 32), "fashion-mnist": (1, 28)}.get(name, (1, 64))
    x = torch.rand(4, c, s, s)
    out = default_transforms(name, train)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape


def test_preset_contents():
    names = lambda t: [type(s).__name__ for s in t.transforms]  # noqa: E731
    assert names(default_transforms("fashion-mnist", True)) == ["RandomCrop", "RandomHorizontalFlip", "Normalize"]
    assert default_transforms("fashion-mnist", True).transforms[0].padding == (2, 2, 2, 2)
    assert default_transforms("cifar10", True).transforms[0].padding == (4, 4, 4, 4)
    assert names(default_transforms("cifar100", False)) == ["Normalize"]
    assert names(default_transforms("cluttered-fashion-mnist", True)) == ["Normalize"]  # boxes stay valid
    assert names(default_transforms("photo-cluttered-fashion-mnist", True)) == ["Normalize"]
    with pytest.raises(ValueError, match="Known transform presets: .*cifar10"):
        default_transforms("mnist", True)
