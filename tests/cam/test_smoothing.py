"""pytorch-grad-cam's aug_smooth and eigen_smooth on every method: the averaging written out, refusals."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from attnlab.cam import CAM_METHODS, Augmentation, EigenCAM, GradCAM, create_cam, default_augmentations, normalize_maps

ALL = sorted(CAM_METHODS)
LAYER = "features.relu3"
TARGETS = [0, 1, 2, 3]


def _make(name, model, **kw):
    if CAM_METHODS[name].forwards_per_channel:
        kw.setdefault("top_k", 4)
    return create_cam(name, model, None if name == "fullgrad" else LAYER, **kw)


def test_default_augmentations_are_ttach_flip_times_multiply():
    augs = default_augmentations()
    assert [(a.flip, a.multiply, a.scale) for a in augs] == [
        (f, m, 1.0) for f, m in itertools.product((False, True), (0.9, 1.0, 1.1))]
    assert len(default_augmentations(scales=(0.5, 1.0, 2.0))) == 18


def test_aug_smooth_is_the_mean_of_the_mapped_back_maps(small_cnn, batch):
    """Each augmented input explains the plain input's class; flips are undone; the mean is normalised."""
    with GradCAM(small_cnn, LAYER) as plain:
        pred = small_cnn(batch).argmax(1)
        maps, raws = [], []
        for flip, m in itertools.product((False, True), (0.9, 1.0, 1.1)):
            x = (batch.flip(-1) if flip else batch) * m
            res = plain.compute(x, pred)
            maps.append(res.maps.flip(-1) if flip else res.maps)
            raws.append(res.raw[LAYER].flip(-1) if flip else res.raw[LAYER])
    with GradCAM(small_cnn, LAYER, aug_smooth=True) as cam:
        result = cam.compute(batch)
        torch.testing.assert_close(cam(batch, pred), result.maps)  # None: the plain input's prediction
    torch.testing.assert_close(result.maps, normalize_maps(torch.stack(maps).mean(0)), atol=1e-6, rtol=0)
    torch.testing.assert_close(result.raw[LAYER], torch.stack(raws).mean(0), atol=1e-6, rtol=1e-5)
    assert result.classes.tolist() == pred.tolist()
    torch.testing.assert_close(result.output, small_cnn(batch).detach())


def test_spatial_scales_are_resized_back(small_cnn, batch):
    augs = [Augmentation(scale=1.0), Augmentation(flip=True, scale=1.5), Augmentation(scale=0.5)]
    with GradCAM(small_cnn, LAYER) as plain:
        maps, raws = [], []
        for a in augs:
            x = F.interpolate(batch, scale_factor=a.scale, mode="bilinear") if a.scale != 1 else batch
            res = plain.compute(x.flip(-1) if a.flip else x, TARGETS)
            m, r = (res.maps.flip(-1), res.raw[LAYER].flip(-1)) if a.flip else (res.maps, res.raw[LAYER])
            maps.append(F.interpolate(m[:, None], size=(16, 16), mode="bilinear")[:, 0])
            raws.append(F.interpolate(r[:, None], size=(8, 8), mode="bilinear")[:, 0])
    with GradCAM(small_cnn, LAYER, aug_smooth=augs) as cam:
        result = cam.compute(batch, TARGETS)
    torch.testing.assert_close(result.maps, normalize_maps(torch.stack(maps).mean(0)), atol=1e-6, rtol=0)
    torch.testing.assert_close(result.raw[LAYER], torch.stack(raws).mean(0), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_every_method_takes_aug_smooth(name, small_cnn, batch):
    with _make(name, small_cnn, aug_smooth=True) as cam:
        targets = None if cam.class_agnostic else TARGETS
        result = cam.compute(batch, targets)
    assert result.maps.shape == (4, 16, 16) and torch.isfinite(result.maps).all()
    assert result.maps.min() >= 0 and result.maps.max() <= 1
    assert result.classes is None if cam.class_agnostic else result.classes.tolist() == TARGETS


@pytest.mark.parametrize("name", ALL)
def test_every_method_takes_eigen_smooth_or_refuses_it(name, small_cnn, batch):
    if not CAM_METHODS[name].eigen_smooth_applies:
        with pytest.raises(ValueError, match="eigen_smooth does not apply"):
            _make(name, small_cnn, eigen_smooth=True)
        return
    with _make(name, small_cnn, eigen_smooth=True) as smooth, _make(name, small_cnn) as plain:
        maps, ref = smooth(batch, TARGETS), plain(batch, TARGETS)
    assert maps.shape == (4, 16, 16) and torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert not torch.allclose(maps, ref)


def test_class_agnostic_and_callable_targets_under_aug_smooth(small_cnn, batch):
    with EigenCAM(small_cnn, LAYER, aug_smooth=True) as cam:
        assert cam.compute(batch).classes is None
        with pytest.raises(ValueError, match="class-agnostic"):
            cam(batch, 1)
    with GradCAM(small_cnn, LAYER, aug_smooth=True) as cam:
        by_fn = cam.compute(batch, lambda out: out[:, 2])
        assert by_fn.classes is None
        torch.testing.assert_close(by_fn.maps, cam(batch, 2))


def test_bad_smoothing_options(small_cnn):
    with pytest.raises(TypeError):
        GradCAM(small_cnn, LAYER, aug_smooth="yes")
    with pytest.raises(TypeError):
        GradCAM(small_cnn, LAYER, eigen_smooth=1)
    with pytest.raises(ValueError):
        Augmentation(scale=0.0)
    assert "aug_smooth=6, eigen_smooth=True" in repr(GradCAM(small_cnn, LAYER, aug_smooth=True, eigen_smooth=True))
